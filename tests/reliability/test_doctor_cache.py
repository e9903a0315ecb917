"""w2s doctor, w2s cache info and w2s cache prune."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from w2sgen.cli import main
from w2sgen.errors import W2SError
from w2sgen.store.prune import GRACE_S, parse_age, parse_size, plan_prune, scan

DAY = 86400.0


def test_doctor_offline_without_gpu_exits_0_fast(tmp_path):
    env = dict(os.environ, HF_HUB_OFFLINE="1", W2S_CACHE_DIR=str(tmp_path / "c"), CUDA_VISIBLE_DEVICES="")
    t0 = time.time()
    r = subprocess.run([sys.executable, "-m", "w2sgen.cli", "doctor"], capture_output=True, text=True, env=env,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    for needle in ("versions:", "torch", "devices:", "cpu", "hub:", "HF_HUB_OFFLINE", "packaged models:",
                   "minilm-l6", "mpnet-base", "storage:", str(tmp_path / "c"), "warnings:"):
        assert needle in r.stdout, needle
    assert "Traceback" not in r.stderr and time.time() - t0 < 30
    assert not (tmp_path / "c").exists(), "doctor writes nothing"


def test_doctor_hub_check_times_out(monkeypatch):
    """An unreachable hub (here: a blackholed address) is a warning within the time limit."""
    import w2sgen.doctor as doctor

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://10.255.255.1:81")
    t0 = time.time()
    ok, detail = doctor.hub_status(timeout=1.0)
    assert ok is False and "not reachable" in detail and time.time() - t0 < 2.5
    rep = doctor.Report()
    doctor.check_models(rep)
    assert "minilm-l6" in rep.sections["packaged models"]


def make_cache(root: Path, now: float) -> dict[str, Path]:
    """Two features entries and three stage entries of known ages, plus temp leftovers."""
    made = {}

    def entry(path: Path, files: dict[str, str], age: float) -> Path:
        path.mkdir(parents=True)
        for name, text in files.items():
            (path / name).write_text(text)
        for p in [*path.rglob("*"), path]:
            os.utime(p, (now - age, now - age))
        return path

    made["f_old"] = entry(root / "features" / "f0ld", {"meta.json": json.dumps({"model": "m", "layer": 1}),
                                                        "a.npy": "x" * 4000}, 60 * DAY)
    made["f_new"] = entry(root / "features" / "f2ew", {"meta.json": json.dumps({"model": "s", "layer": -1}),
                                                        "b.npy": "x" * 3000}, 2 * DAY)
    made["s_old"] = entry(root / "stages" / "floor" / "k0ld", {"inputs.json": json.dumps({"features": "f0ld"}),
                                                               "p.parquet": "x" * 1000}, 40 * DAY)
    made["s_mid"] = entry(root / "stages" / "ceiling" / "km1d", {"inputs.json": json.dumps({"features": "f2ew"}),
                                                                 "p.parquet": "x" * 1000}, 10 * DAY)
    made["s_now"] = entry(root / "stages" / "student" / "kn0w", {"inputs.json": json.dumps({"features": "f2ew"}),
                                                                 "p.parquet": "x" * 1000}, 60.0)
    made["tmp_young"] = entry(root / "stages" / "floor" / ".k9.abc", {"p.parquet": "half"}, 60.0)
    made["tmp_old"] = entry(root / "stages" / "floor" / ".k8.def", {"p.parquet": "crash"}, 2 * DAY)
    return made


def test_parse_sizes_and_ages():
    assert parse_size("10G") == 10 << 30 and parse_size("500m") == 500 << 20 and parse_size("1024") == 1024
    assert parse_size("1.5KiB") == 1536
    assert parse_age("30d") == 30 * DAY and parse_age("12h") == 12 * 3600 and parse_age("2w") == 14 * DAY
    for bad in ("", "ten", "-1d", "5y"):
        with pytest.raises(W2SError):
            parse_age(bad)
    with pytest.raises(W2SError):
        parse_size("big")


def test_prune_by_age_keeps_young_and_in_use_features(tmp_path):
    now = time.time()
    m = make_cache(tmp_path, now)
    plan = plan_prune(tmp_path, older_than=30 * DAY, now=now)
    gone = {e.path for e in plan.delete}
    # f0ld's own files are 60 days old, but so is its only stage user (40 days): both go
    assert gone == {m["f_old"], m["s_old"], m["tmp_old"]}
    assert m["tmp_young"] not in gone, "a temp dir another process may be writing is left alone"


def test_prune_by_size_removes_least_recently_used(tmp_path):
    now = time.time()
    m = make_cache(tmp_path, now)
    total = sum(e.size for e in scan(tmp_path))
    plan = plan_prune(tmp_path, max_size=total - 4500, now=now)
    gone = {e.path for e in plan.delete}
    assert m["f_old"] in gone and m["s_old"] in gone and m["f_new"] not in gone
    plan = plan_prune(tmp_path, max_size=0, now=now)
    assert m["s_now"] not in {e.path for e in plan.delete}, "used within the grace period"
    assert m["tmp_young"] not in {e.path for e in plan.delete}


def test_prune_unused_by_results_dir(tmp_path):
    now = time.time()
    m = make_cache(tmp_path / "cache", now)
    results = tmp_path / "results" / "run1"
    results.mkdir(parents=True)
    (results / "run.json").write_text(json.dumps({
        "stages": {"weak": {"key": "k0ld", "features": "f0ld"}, "ceiling": {"key": "zzz"}, "students": {}},
        "weak": {"name": "m", "model": "m", "layer": 1}, "strong": {"name": "q", "model": "q", "layer": 0},
    }))
    plan = plan_prune(tmp_path / "cache", unused_by=[tmp_path / "results"], now=now)
    gone = {e.path for e in plan.delete}
    # f2ew is unreferenced, but the stage built a minute ago (a run in progress) uses it: both stay
    assert gone == {m["s_mid"], m["tmp_old"]}
    assert {e.path for e in plan.skipped_recent} == {m["s_now"], m["f_new"]}
    with pytest.raises(W2SError, match="no such results directory"):
        plan_prune(tmp_path / "cache", unused_by=[tmp_path / "nope"])
    with pytest.raises(W2SError, match="--older-than"):
        plan_prune(tmp_path / "cache")


def test_cache_cli_info_and_prune(tmp_path, capsys):
    now = time.time()
    m = make_cache(tmp_path / "c", now)
    assert main(["cache", "info", "--cache-dir", str(tmp_path / "c")]) == 0
    out = capsys.readouterr().out
    assert "stages/floor" in out and "features" in out and "entries" in out
    assert main(["cache", "prune", "--cache-dir", str(tmp_path / "c"), "--older-than", "30d", "--dry-run"]) == 0
    assert m["s_old"].exists() and "would delete" in capsys.readouterr().out
    assert main(["cache", "prune", "--cache-dir", str(tmp_path / "c"), "--older-than", "30d"]) == 0
    assert not m["s_old"].exists() and not m["f_old"].exists() and m["s_mid"].exists() and m["tmp_young"].exists()
    assert not [p for p in (tmp_path / "c").rglob("*pruning*")]
    assert main(["cache", "prune", "--cache-dir", str(tmp_path / "c"), "--max-size", "lots"]) == 2
    assert GRACE_S == 3600


def test_prune_against_a_real_run(tmp_path, tiny_encoders):
    """Every entry a real run uses is referenced by its run.json; a stale entry is not."""
    from conftest import write_toy_task

    import w2sgen
    from w2sgen.config import RunConfig, SplitConfig

    weak, strong = tiny_encoders
    toy = write_toy_task(tmp_path / "toy.jsonl")
    cfg = RunConfig(task=str(toy), weak=str(weak), strong=str(strong), out=str(tmp_path / "out"), methods=["xent"],
                    splits=SplitConfig(n_weak_train=40, n_transfer=40, n_val=20, n_test=20, min_val=20, min_test=20))
    cfg.probe.epochs = 3
    cache = tmp_path / "cache"
    w2sgen.run(cfg, cache_dir=cache)
    stale = cache / "stages" / "floor" / "0123456789abcdef01234567"
    stale.mkdir()
    (stale / "inputs.json").write_text("{}")
    later = time.time() + 2 * GRACE_S
    plan = plan_prune(cache, unused_by=[tmp_path / "out"], now=later)
    assert [e.path for e in plan.delete] == [stale]
