"""The stage cache on a remote fsspec store: two "nodes" (two local working copies) share one remote.

The remote is ``memory://`` (one store per process, so two StageCaches in one test are two nodes of
one cluster) or ``local://`` (fsspec's local filesystem under a URL, shared with a subprocess).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import fsspec
import pytest

from w2sgen.errors import W2SError
from w2sgen.store.cache import MANIFEST, StageCache, default_cache_dir, stage_key
from w2sgen.store.remote import RemoteStore, local_dir_for

INPUTS = {"stage": "floor", "a": 1}
KEY = stage_key(INPUTS)


@pytest.fixture
def url():
    """A fresh memory:// remote, deleted afterwards."""
    u = f"memory://w2s-test-{uuid.uuid4().hex[:10]}/cache"
    yield u
    fs = fsspec.filesystem("memory")
    root = u.split("://", 1)[1].split("/", 1)[0]
    if fs.exists(f"/{root}"):
        fs.rm(f"/{root}", recursive=True)


def writer(text: str = "preds", calls: list | None = None):
    def build(d: Path) -> None:
        if calls is not None:
            calls.append(1)
        (d / "predictions.parquet").write_text(text)
        (d / "train.json").write_text(json.dumps({"train_wall_s": 1.0}))
    return build


def must_not_build(d: Path) -> None:
    raise AssertionError("this node should have got the entry from the remote")


def remote_files(url: str, key: str = KEY) -> dict[str, bytes]:
    fs, base = fsspec.core.url_to_fs(url)
    d = f"{base}/stages/floor/{key}"
    return {p.rsplit("/", 1)[1]: fs.cat_file(p) for p in fs.find(d)} if fs.exists(d) else {}


def hidden(cache: StageCache) -> list[Path]:
    d = cache.root / "stages" / "floor"
    return [p for p in d.iterdir() if p.name.startswith(".")] if d.is_dir() else []


def test_node_b_gets_the_entry_node_a_built(url, tmp_path):
    a = StageCache(url, local=tmp_path / "a")
    calls: list = []
    entry_a, hit = a.get_or_build("floor", INPUTS, writer(calls=calls))
    assert not hit and calls == [1]
    assert a.root == tmp_path / "a" and a.remote == url and a.location == url
    assert entry_a == tmp_path / "a" / "stages" / "floor" / KEY
    assert set(remote_files(url)) == {"predictions.parquet", "train.json", "inputs.json", MANIFEST}
    assert not a.upload_marker("floor", KEY).exists()

    b = StageCache(url, local=tmp_path / "b")
    assert b.get("floor", "0" * 24) is None  # a key nobody built
    entry_b, hit = b.get_or_build("floor", INPUTS, must_not_build)
    assert hit and entry_b == b.path("floor", KEY) == tmp_path / "b" / "stages" / "floor" / KEY
    assert (entry_b / "predictions.parquet").read_text() == "preds"
    assert (entry_b / MANIFEST).read_bytes() == (entry_a / MANIFEST).read_bytes()
    assert hidden(b) == []
    # now a local hit on B: works with the remote gone
    fsspec.filesystem("memory").rm(url.split("://", 1)[1], recursive=True)
    assert b.get_or_build("floor", INPUTS, must_not_build) == (entry_b, True)


def test_get_downloads_too(url, tmp_path):
    StageCache(url, local=tmp_path / "a").get_or_build("floor", INPUTS, writer())
    b = StageCache(url, local=tmp_path / "b")
    got = b.get("floor", KEY)
    assert got == b.path("floor", KEY) and (got / "predictions.parquet").read_text() == "preds"


def test_remote_entry_without_manifest_is_not_trusted(url, tmp_path):
    StageCache(url, local=tmp_path / "a").get_or_build("floor", INPUTS, writer("from a"))
    fs, base = fsspec.core.url_to_fs(url)
    fs.rm_file(f"{base}/stages/floor/{KEY}/{MANIFEST}")  # an upload that never finished

    b = StageCache(url, local=tmp_path / "b")
    assert b.get("floor", KEY) is None
    calls: list = []
    entry, hit = b.get_or_build("floor", INPUTS, writer("from b", calls))
    assert not hit and calls == [1] and (entry / "predictions.parquet").read_text() == "from b"
    assert remote_files(url)["predictions.parquet"] == b"from b" and MANIFEST in remote_files(url)


def test_corrupted_remote_file_is_detected_and_rebuilt(url, tmp_path, caplog):
    StageCache(url, local=tmp_path / "a").get_or_build("floor", INPUTS, writer())
    fs, base = fsspec.core.url_to_fs(url)
    fs.pipe_file(f"{base}/stages/floor/{KEY}/predictions.parquet", b"bit rot")

    b = StageCache(url, local=tmp_path / "b")
    with caplog.at_level(logging.WARNING, logger="w2sgen"):
        assert b.get("floor", KEY) is None
    assert "does not match its manifest" in caplog.text
    assert not b.path("floor", KEY).exists() and hidden(b) == [], "nothing of the bad download is kept"
    calls: list = []
    entry, hit = b.get_or_build("floor", INPUTS, writer(calls=calls))
    assert not hit and calls == [1] and (entry / "predictions.parquet").read_text() == "preds"
    # the rebuild was uploaded again: the remote entry is repaired for every other node
    assert remote_files(url)["predictions.parquet"] == b"preds"
    c = StageCache(url, local=tmp_path / "c")
    assert c.get_or_build("floor", INPUTS, must_not_build)[1] is True


def test_manifest_naming_a_path_outside_the_entry_is_damaged(url, tmp_path):
    a = StageCache(url, local=tmp_path / "a")
    a.get_or_build("floor", INPUTS, writer())
    fs, base = fsspec.core.url_to_fs(url)
    m = f"{base}/stages/floor/{KEY}/{MANIFEST}"
    manifest = json.loads(fs.cat_file(m))
    manifest["files"]["../../../../evil"] = "0" * 64
    fs.pipe_file(m, json.dumps(manifest).encode())
    b = StageCache(url, local=tmp_path / "b")
    assert b.get("floor", KEY) is None
    assert not list(tmp_path.rglob("evil"))


class Recording:
    """An fsspec filesystem wrapper that records writes and can fail after ``fail_after`` puts."""

    def __init__(self, fs, fail_after: int | None = None):
        self.fs, self.fail_after, self.ops = fs, fail_after, []

    def put_file(self, src, dst, **kw):
        if self.fail_after is not None and sum(op == "put" for op, _ in self.ops) >= self.fail_after:
            raise ConnectionError("network down")
        self.ops.append(("put", dst.rsplit("/", 1)[1]))
        return self.fs.put_file(src, dst, **kw)

    def rm_file(self, path):
        self.ops.append(("rm", path.rsplit("/", 1)[1]))
        return self.fs.rm_file(path)

    def __getattr__(self, name):
        return getattr(self.fs, name)


def test_upload_writes_the_manifest_last(url, tmp_path, monkeypatch):
    a = StageCache(url, local=tmp_path / "a")
    rec = Recording(a._store.fs)
    monkeypatch.setattr(a._store, "fs", rec)
    a.get_or_build("floor", INPUTS, writer())
    assert rec.ops[0] == ("rm", MANIFEST), "an old manifest goes first: no reader trusts files being replaced"
    puts = [name for op, name in rec.ops if op == "put"]
    assert sorted(puts[:-1]) == ["inputs.json", "predictions.parquet", "train.json"] and puts[-1] == MANIFEST


def test_upload_killed_midway_is_invisible_then_retried(url, tmp_path, monkeypatch, caplog):
    a = StageCache(url, local=tmp_path / "a")
    rec = Recording(a._store.fs, fail_after=2)  # the network goes down after two of four files
    monkeypatch.setattr(a._store, "fs", rec)
    with caplog.at_level(logging.WARNING, logger="w2sgen"):
        entry, hit = a.get_or_build("floor", INPUTS, writer())
    assert not hit and (entry / "predictions.parquet").read_text() == "preds", "the run goes on"
    assert "cannot upload" in caplog.text and "network down" in caplog.text
    assert len(remote_files(url)) == 2 and MANIFEST not in remote_files(url)
    assert a.upload_marker("floor", KEY).exists()

    b = StageCache(url, local=tmp_path / "b")
    assert b.get("floor", KEY) is None, "half an upload is never trusted"

    rec.fail_after = None  # the network is back: the next hit on A finishes the upload
    assert a.get_or_build("floor", INPUTS, must_not_build) == (entry, True)
    assert not a.upload_marker("floor", KEY).exists() and MANIFEST in remote_files(url)
    c = StageCache(url, local=tmp_path / "c")
    assert c.get_or_build("floor", INPUTS, must_not_build)[1] is True


def test_unreachable_remote_builds_locally(url, tmp_path, monkeypatch, caplog):
    a = StageCache(url, local=tmp_path / "a")

    class Down:
        def __getattr__(self, name):
            def fail(*args, **kwargs):
                raise PermissionError("403 Forbidden")
            return fail

    monkeypatch.setattr(a._store, "fs", Down())
    calls: list = []
    with caplog.at_level(logging.WARNING, logger="w2sgen"):
        entry, hit = a.get_or_build("floor", INPUTS, writer(calls=calls))
    assert not hit and calls == [1] and "cannot download" in caplog.text and "403" in caplog.text
    assert hidden(a) == []


def test_one_node_builds_once_under_its_local_lock(url, tmp_path):
    cache = StageCache(url, local=tmp_path / "a")
    calls: list = []

    def build(d):
        calls.append(1)
        time.sleep(0.3)
        (d / "x.txt").write_text("done")

    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.get_or_build("floor", INPUTS, build)))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(calls) == 1 and sorted(hit for _, hit in results) == [False, True]


def test_two_processes_share_a_local_url_remote(tmp_path):
    """A real second process as node A (``local://`` is fsspec's local filesystem under a URL)."""
    url = f"local://{tmp_path / 'shared'}"
    code = (
        "import sys; from pathlib import Path; from w2sgen.store.cache import StageCache\n"
        "c = StageCache(sys.argv[1], local=sys.argv[2])\n"
        "e, hit = c.get_or_build('floor', {'stage': 'floor', 'a': 1},\n"
        "                        lambda d: (d / 'predictions.parquet').write_text('node a'))\n"
        "assert not hit\n"
    )
    r = subprocess.run([sys.executable, "-c", code, url, str(tmp_path / "a")], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "shared" / "stages" / "floor" / KEY / MANIFEST).is_file()
    b = StageCache(url, local=tmp_path / "b")
    entry, hit = b.get_or_build("floor", INPUTS, must_not_build)
    assert hit and (entry / "predictions.parquet").read_text() == "node a"


def test_file_url_is_a_local_path(tmp_path):
    c = StageCache(f"file://{tmp_path / 'c'}")
    assert c.root == tmp_path / "c" and c.remote is None and c.location == str(tmp_path / "c")
    c.get_or_build("floor", INPUTS, writer())
    assert (tmp_path / "c" / "stages" / "floor" / KEY / MANIFEST).is_file()
    assert StageCache(tmp_path / "d").root == tmp_path / "d"


def test_local_working_copy_location(url, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("W2S_LOCAL_CACHE", raising=False)
    c = StageCache(url)
    assert c.root == local_dir_for(url) and c.root.parent == tmp_path / "home" / ".cache" / "w2sgen" / "remote"
    assert StageCache(url + "-other").root != c.root
    monkeypatch.setenv("W2S_LOCAL_CACHE", str(tmp_path / "scratch"))
    assert StageCache(url).root == tmp_path / "scratch"
    monkeypatch.setenv("W2S_CACHE_DIR", url)  # the default cache may be a URL too
    c = StageCache()
    assert c.remote == url and c.root == tmp_path / "scratch" == default_cache_dir()


@pytest.mark.skipif(importlib.util.find_spec("s3fs") is not None, reason="s3fs is installed")
def test_uninstalled_protocol_is_a_clear_error():
    with pytest.raises(W2SError, match=r"s3://bucket/w2s.*pip install s3fs"):
        StageCache("s3://bucket/w2s")
    with pytest.raises(W2SError, match=r"unknown filesystem protocol 'nosuchfs'"):
        RemoteStore("nosuchfs://bucket/w2s")


@pytest.mark.skipif(importlib.util.find_spec("s3fs") is not None, reason="s3fs is installed")
def test_run_fails_before_any_work_on_an_uninstalled_protocol(tmp_path, tiny_encoders):
    from conftest import write_toy_task

    import w2sgen
    from w2sgen.config import RunConfig

    weak, strong = tiny_encoders
    cfg = RunConfig(task=str(write_toy_task(tmp_path / "toy.jsonl")), weak=str(weak), strong=str(strong),
                    out=str(tmp_path / "out"), methods=["xent"])
    with pytest.raises(W2SError, match="pip install s3fs"):
        w2sgen.run(cfg, cache_dir="s3://bucket/w2s")
    assert not (tmp_path / "out").exists()


def test_a_real_run_on_node_b_is_all_cache_hits(url, tmp_path, tiny_encoders, monkeypatch):
    """api.run with a remote cache: node B reuses every stage node A trained (features are local)."""
    from conftest import write_toy_task

    import w2sgen
    from w2sgen.config import RunConfig, SplitConfig

    weak, strong = tiny_encoders
    toy = write_toy_task(tmp_path / "toy.jsonl")

    def run(node: str):
        monkeypatch.setenv("W2S_LOCAL_CACHE", str(tmp_path / node))
        cfg = RunConfig(task=str(toy), weak=str(weak), strong=str(strong), out=str(tmp_path / f"out-{node}"),
                        methods=["xent"], splits=SplitConfig(n_weak_train=40, n_transfer=40, n_val=20, n_test=20, min_val=20, min_test=20))
        cfg.probe.epochs = 3
        return w2sgen.run(cfg, cache_dir=url).runs[0]["stages"]

    first = run("a")
    assert not first["weak"]["cached"] and not first["ceiling"]["cached"]
    second = run("b")
    blocks = [second["weak"], second["ceiling"], *second["students"].values()]
    assert blocks and all(b["cached"] for b in blocks)
    assert [b["key"] for b in blocks] == [first["weak"]["key"], first["ceiling"]["key"],
                                          *(s["key"] for s in first["students"].values())]
