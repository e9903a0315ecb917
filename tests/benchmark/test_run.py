"""``w2s benchmark run`` end to end on a tiny suite: method files loaded from a path (in the driver,
in spawned workers and in Ray tasks), the label firewall, the manifest, the refusal to mix suites,
variants or data, and the leaderboard of the results."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import yaml

from w2sgen.benchmark.leaderboard import collect, format_json, format_table, header, leaderboard
from w2sgen.benchmark.manifest import Manifest
from w2sgen.benchmark.method_file import unload
from w2sgen.benchmark.runner import failure_report, method_dir, run_benchmark
from w2sgen.benchmark.suite import load_suite
from w2sgen.errors import W2SError

FILE_METHODS = ("hard", "peeker", "oracle_peek")


@pytest.fixture(scope="module")
def bench(tmp_path_factory, tiny_suite, kit):
    """One benchmark run of xent, a method file, a peeking file, a declared-oracle file and a
    prompting method the suite's encoder cannot run; in this process (workers=1)."""
    root = tmp_path_factory.mktemp("bench")
    files = {k: kit.write_method(root / f"{k}.py", src)
             for k, src in (("hard", kit.HARD), ("peek", kit.PEEK), ("oracle", kit.ORACLE))}
    suite = load_suite(tiny_suite)
    out = root / "out"
    outcome = run_benchmark(suite, ["xent", str(files["hard"]), str(files["peek"]), str(files["oracle"]), "zero_shot"],
                            out, cache_dir=root / "cache")
    yield {"suite": suite, "out": out, "outcome": outcome, "files": files, "cache": root / "cache", "root": root}
    for name in FILE_METHODS:
        unload(name)


def test_run_writes_one_results_directory_per_method_with_the_suite_hash(bench):
    out, suite = bench["out"], bench["suite"]
    m = Manifest.load(out)
    assert (m.suite, m.version, m.suite_hash, m.variant) == ("tiny", 1, suite.hash, "full")
    assert m.suite_of(out).hash == suite.hash
    assert set(m.methods) == {"xent", "hard", "peeker", "oracle_peek"} and "zero_shot" in m.not_run
    hard = m.methods["hard"]
    assert hard["source"] == str(bench["files"]["hard"].resolve()) and len(hard["sha256"]) == 64
    assert hard["status"] == "done" and len(hard["wall_s"]) == 2
    for name in ("xent", "hard", "oracle_peek"):
        runs = sorted(method_dir(out, name).glob("*/run.json"))
        assert len(runs) == 2  # 1 task x 1 pair x 2 seeds
        recs = [json.loads(p.read_text()) for p in runs]
        assert {r["seed"] for r in recs} == {0, 1} and name in recs[0]["stages"]["students"]
        assert recs[0]["task"]["fingerprint"] == suite.tasks[0].fingerprint


def test_a_peeking_method_file_is_stopped_by_the_firewall_and_named(bench):
    outcome = bench["outcome"]
    assert set(outcome.failed) == {"peeker"}
    report = failure_report(outcome)
    assert "method 'peeker'" in report and str(bench["files"]["peek"].resolve()) in report
    assert "ctx.labels" in report and "label firewall" in report
    assert Manifest.load(bench["out"]).methods["peeker"]["status"] == "failed"


def test_leaderboard_of_the_run_marks_ground_truth_failures_and_na(bench):
    b = leaderboard([bench["out"]])
    rows = {r.method: r for r in b.rows}
    assert set(rows) == {"xent", "hard", "peeker", "oracle_peek", "zero_shot"}
    assert rows["xent"].runs == rows["hard"].runs == rows["oracle_peek"].runs == 2
    assert rows["oracle_peek"].uses_ground_truth and not rows["oracle_peek"].ranked
    assert "ground truth" in rows["oracle_peek"].note
    assert rows["peeker"].runs == 0 and not rows["peeker"].ranked and "ctx.labels" in rows["peeker"].note
    assert not rows["zero_shot"].available and "encoder" in rows["zero_shot"].note
    recs = {r["method"]: r for r in json.loads(format_json(b))}
    assert {r["suite_hash"] for r in recs.values()} == {bench["suite"].hash}
    assert recs["oracle_peek"]["ranked"] is False and recs["oracle_peek"]["rank"] is None
    text = format_table(b)
    assert "oracle_peek*" in text and "n/a:" in text and bench["suite"].short_hash in text


def test_rerun_resumes_from_the_cache(bench):
    suite, out = bench["suite"], bench["out"]
    before = Manifest.load(out).methods["hard"]["wall_s"]
    outcome = run_benchmark(suite, ["xent", str(bench["files"]["hard"])], out, cache_dir=bench["cache"])
    assert not outcome.failed
    recs = [json.loads(p.read_text()) for p in method_dir(out, "hard").glob("*/run.json")]
    assert len(recs) == 2 and all(r["stages"]["students"]["hard"]["cached"] for r in recs)
    assert Manifest.load(out).methods["hard"]["wall_s"] == before  # a cache hit is not a cost


def test_another_suite_or_variant_never_mixes_into_a_directory(bench, tiny_encoders, kit):
    suite, out, root = bench["suite"], bench["out"], bench["root"]
    other = load_suite(kit.write_suite(root / "tiny3.yaml", kit.tiny_suite_data(root, *tiny_encoders, seeds=(0, 1, 2))))
    assert other.hash != suite.hash
    with pytest.raises(W2SError, match="never mix"):
        run_benchmark(other, ["xent"], out, cache_dir=bench["cache"])
    with pytest.raises(W2SError, match="quick"):
        run_benchmark(suite, ["xent"], out, quick=True, cache_dir=bench["cache"])
    # two directories of different suites: the leaderboard refuses them together
    q = root / "other-out"
    run_benchmark(other, ["xent"], q, cache_dir=bench["cache"])
    with pytest.raises(W2SError, match="never mix"):
        collect([out, q])
    # a run of another suite copied into a method's directory is refused by the leaderboard
    mixed = root / "mixed"
    shutil.copytree(out, mixed)
    src = next(method_dir(q, "xent").glob("*seed2"))
    shutil.copytree(src, method_dir(mixed, "xent") / src.name)
    with pytest.raises(W2SError, match="not a run of suite tiny v1"):
        leaderboard([mixed])


def test_results_of_another_training_protocol_never_mix(bench, monkeypatch):
    import json

    from w2sgen.benchmark.manifest import NAME
    from w2sgen.protocol import PROTOCOL_VERSION

    out, root = bench["out"], bench["root"]
    assert Manifest.load(out).protocol == PROTOCOL_VERSION
    old = root / "old-protocol"
    shutil.copytree(out, old)
    data = json.loads((old / NAME).read_text())
    data["protocol"] = "3"
    (old / NAME).write_text(json.dumps(data))
    with pytest.raises(W2SError, match="old-protocol holds .* protocol 3, not 4: results of two training protocols"):
        collect([out, old])
    with pytest.raises(W2SError, match="two training protocols never mix"):
        run_benchmark(bench["suite"], ["xent"], old, cache_dir=bench["cache"])
    del data["protocol"]  # written before the protocol was recorded
    (old / NAME).write_text(json.dumps(data))
    with pytest.raises(W2SError, match="protocol unrecorded"):
        run_benchmark(bench["suite"], ["xent"], old, cache_dir=bench["cache"])
    assert f"protocol {PROTOCOL_VERSION}" in "\n".join(header(leaderboard([out])))


def test_data_that_differ_from_the_fingerprint_are_refused_naming_the_task_and_source(tmp_path, tiny_encoders, kit):
    suite = load_suite(kit.write_suite(tmp_path / "tiny.yaml", kit.tiny_suite_data(tmp_path, *tiny_encoders)))
    task = tmp_path / "toy.jsonl"
    rows = task.read_text().splitlines()
    row = json.loads(rows[0])
    row["label"] = 1 - row["label"]
    task.write_text("\n".join([json.dumps(row), *rows[1:]]) + "\n")
    with pytest.raises(W2SError) as e:
        run_benchmark(suite, ["xent"], tmp_path / "out", cache_dir=tmp_path / "cache")
    msg = str(e.value)
    assert "task 'toy.jsonl'" in msg and f"the data file {task.resolve()}" in msg and "fingerprint" in msg
    assert not (tmp_path / "out" / "runs").exists()  # refused before any training


def test_splits_that_differ_from_the_suite_are_refused(tmp_path, tiny_encoders, kit):
    f = kit.write_suite(tmp_path / "tiny.yaml", kit.tiny_suite_data(tmp_path, *tiny_encoders))
    data = yaml.safe_load(f.read_text())
    data["tasks"][0]["split_ids"][1] = "0" * 16
    f.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(W2SError, match=r"task 'toy.jsonl' .*the splits of seed 1 hold other examples"):
        run_benchmark(load_suite(f), ["xent"], tmp_path / "out", cache_dir=tmp_path / "cache")


def _worker_pids(out: Path, name: str) -> set[int]:
    recs = [json.loads(p.read_text()) for p in method_dir(out, name).glob("*/run.json")]
    assert len(recs) == 2 and all(not r["stages"]["students"][name]["cached"] for r in recs)
    return {r["executor"]["pid"] for r in recs}


@pytest.mark.integration  # spawned workers import torch: ~30 s idle, minutes on a loaded machine
def test_a_method_file_runs_in_spawned_workers(tiny_suite, tmp_path, kit):
    hard = kit.write_method(tmp_path / "hard.py", kit.HARD)
    try:
        outcome = run_benchmark(load_suite(tiny_suite), ["xent", str(hard)], tmp_path / "out", workers=2,
                                cache_dir=tmp_path / "cache")
        assert not outcome.failed
        assert os.getpid() not in _worker_pids(tmp_path / "out", "hard")
    finally:
        unload("hard")


@pytest.mark.integration  # a local Ray: ~1 min idle, minutes on a loaded machine
def test_a_method_file_runs_in_ray_tasks(tiny_suite, tmp_path, kit):
    pytest.importorskip("ray")
    import ray

    hard = kit.write_method(tmp_path / "hard.py", kit.HARD)
    try:
        outcome = run_benchmark(load_suite(tiny_suite), ["xent", str(hard)], tmp_path / "out", executor="ray",
                                workers=2, cache_dir=tmp_path / "cache")
        assert not outcome.failed and not ray.is_initialized()
        assert os.getpid() not in _worker_pids(tmp_path / "out", "hard")
        recs = [json.loads(p.read_text()) for p in method_dir(tmp_path / "out", "hard").glob("*/run.json")]
        assert {r["executor"]["kind"] for r in recs} == {"ray"}
    finally:
        unload("hard")


def _fake_sst2_hub(monkeypatch, flip: int | None = None) -> list[str]:
    """``datasets.load_dataset('stanfordnlp/sst2')`` answered from rows made here (the hub's schema:
    idx, sentence, label); ``flip`` turns one training label. Returns the ids asked for."""
    import datasets

    asked: list[str] = []

    def rows(n: int, start: int) -> list[dict]:
        out = [{"idx": i, "sentence": f"{'a good' if i % 2 else 'a bad'} film number {start + i}", "label": i % 2}
               for i in range(n)]
        if flip is not None and start == 0:
            out[flip]["label"] = 1 - out[flip]["label"]
        return out

    def load_dataset(hub_id, *args, **kw):
        asked.append(hub_id)
        return datasets.DatasetDict({"train": datasets.Dataset.from_list(rows(120, 0)),
                                     "validation": datasets.Dataset.from_list(rows(40, 1000))})

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    monkeypatch.setattr("w2sgen.benchmark.content.hub_commit", lambda t: "c0ffee" * 6 + "c0ff")
    return asked


def test_a_hub_task_records_its_content_on_the_first_run_and_later_runs_are_checked(tmp_path, tiny_encoders, kit,
                                                                                   monkeypatch):
    """A suite task with no fingerprint (a hub task nobody could load where the suite was written): the
    first run into a directory records its fingerprint, split hashes and hub commit; a later run of the
    same content resumes; other content is refused before training, naming the task and its source;
    and the leaderboard refuses two directories whose first runs saw different content."""
    data = kit.tiny_suite_data(tmp_path, *tiny_encoders)
    data["tasks"] = [{"task": "sst2", "source": "hub", "splits": dict(kit.TINY_SPLITS),
                      "hub": {"id": "stanfordnlp/sst2", "config": None, "revision": None}}]
    data["quick"]["tasks"] = ["sst2"]
    suite = load_suite(kit.write_suite(tmp_path / "hub.yaml", data, freeze=False))
    assert suite.tasks[0].fingerprint is None
    asked = _fake_sst2_hub(monkeypatch)
    out, cache = tmp_path / "out", tmp_path / "cache"
    assert not run_benchmark(suite, ["xent"], out, cache_dir=cache).failed
    assert asked and set(asked) == {"stanfordnlp/sst2"}
    rec = Manifest.load(out).recorded["sst2"]
    runs = [json.loads(p.read_text()) for p in method_dir(out, "xent").glob("*/run.json")]
    assert len(runs) == 2 and {r["task"]["fingerprint"] for r in runs} == {rec["fingerprint"]}
    assert set(rec["split_ids"]) == {0, 1} and rec["examples"] == 160 and rec["hub_commit"].startswith("c0ffee")
    assert "the Hugging Face hub: stanfordnlp/sst2" in rec["source"]
    assert not run_benchmark(suite, ["xent"], out, cache_dir=cache).failed  # the same content: resumed
    assert Manifest.load(out).recorded["sst2"] == rec

    _fake_sst2_hub(monkeypatch, flip=3)  # the hub's content changed since the first run
    with pytest.raises(W2SError) as e:
        run_benchmark(suite, ["xent", "logconf"], out, cache_dir=cache)
    msg = str(e.value)
    assert "task 'sst2'" in msg and "the Hugging Face hub: stanfordnlp/sst2" in msg
    assert "this results directory's first run" in msg
    assert not method_dir(out, "logconf").exists()  # refused before any training
    other = tmp_path / "other"
    assert not run_benchmark(suite, ["xent"], other, cache_dir=cache).failed  # a new directory records anew
    assert Manifest.load(other).recorded["sst2"]["fingerprint"] != rec["fingerprint"]
    with pytest.raises(W2SError, match="first run recorded other content for task 'sst2'"):
        collect([out, other])
    _fake_sst2_hub(monkeypatch)  # the first content again, into a third directory
    again = tmp_path / "again"
    assert not run_benchmark(suite, ["xent"], again, cache_dir=cache).failed
    heads = [header(leaderboard([d])) for d in (out, other, again)]  # one suite hash, two contents: the boards say so
    digests = [next(line.split()[1] for line in h if line.startswith("content ")) for h in heads]
    assert digests[0] == digests[2] != digests[1]  # the digest follows the content, not the directory
    assert all("(sst2)" in line for h in heads for line in h if line.startswith("content "))


BUGGY = '''
from dataclasses import dataclass

from w2sgen.methods.base import Method


@dataclass
class BuggyConfig:
    pass


def _make(cfg):
    def loss(logits, weak, step, total, window=None):
        raise ValueError("an ordinary bug in a method file")

    return loss


METHOD = Method(name="buggy", description="raises in its loss", config_cls=BuggyConfig, make_loss=_make)
'''


def test_a_method_file_with_a_bug_fails_alone(tiny_suite, tmp_path, kit):
    """A method file that raises an ordinary exception (not a W2SError) fails its own runs; the methods
    after it still run, and the manifest records the failure with the exception's name."""
    buggy = kit.write_method(tmp_path / "buggy.py", BUGGY)
    hard = kit.write_method(tmp_path / "hard.py", kit.HARD)
    try:
        outcome = run_benchmark(load_suite(tiny_suite), ["xent", str(buggy), str(hard)], tmp_path / "out",
                                cache_dir=tmp_path / "cache")
    finally:
        unload("buggy")
        unload("hard")
    assert set(outcome.failed) == {"buggy"} and "ValueError: an ordinary bug" in outcome.failed["buggy"]
    m = Manifest.load(tmp_path / "out")
    assert m.methods["buggy"]["status"] == "failed" and m.methods["hard"]["status"] == "done"
    assert len(list(method_dir(tmp_path / "out", "hard").glob("*/run.json"))) == 2


@pytest.mark.integration  # finetunes tiny causal LMs: ~20 s here
def test_a_finetune_mode_suite_runs_on_tiny_decoders(tmp_path, tiny_decoders, kit):
    """paper-nlp-v1's shape (finetune mode, a decoder ladder) end to end, on tiny local causal LMs."""
    data = kit.tiny_suite_data(tmp_path, *tiny_decoders, seeds=(0,))
    data.update(name="tiny-ft", mode="finetune",
                settings={"finetune": {"max_steps": 2, "batch_size": 8, "lr": 1e-3, "dtype": "fp32"}})
    suite = load_suite(kit.write_suite(tmp_path / "ft.yaml", data))
    out = tmp_path / "out"
    assert not run_benchmark(suite, ["xent", "logconf"], out, cache_dir=tmp_path / "cache").failed
    runs = [json.loads(p.read_text()) for p in method_dir(out, "logconf").glob("*/run.json")]
    assert len(runs) == 1 and runs[0]["mode"] == "finetune" and runs[0]["config"]["finetune"]["max_steps"] == 2
    assert {"xent", "logconf"} <= set(runs[0]["stages"]["students"])
    board = leaderboard([out])
    assert "finetune mode" in header(board)[0] and {r.method for r in board.rows} == {"xent", "logconf"}
