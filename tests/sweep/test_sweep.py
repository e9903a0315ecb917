"""Sweeps on tiny models: shared stages counted, dry run, 2 workers, and kill -9 then resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import build_tiny_encoder, write_toy_task

from w2sgen.cli import main
from w2sgen.sweep.grid import expand, load_sweep
from w2sgen.sweep.plan import make_plan

# 3 models, pairs i < j (3 pairs) x 2 seeds = 6 runs of 4 stages (floor, ceiling, xent, logconf) = 24;
# unique: floors (weak a|b) x seeds = 4, ceilings (strong b|c) x seeds = 4, students 12 -> 20
RUNS, TOTAL, UNIQUE = 6, 24, 20


@pytest.fixture(scope="module")
def sweep_file(tmp_path_factory, tiny_encoders) -> Path:
    root = tmp_path_factory.mktemp("sweep")
    weak, strong = tiny_encoders
    third = build_tiny_encoder(root / "third", 2)
    task = write_toy_task(root / "toy.jsonl")
    f = root / "sweep.yaml"
    f.write_text(json.dumps({
        "tasks": [str(task)], "models": [str(weak), str(strong), str(third)], "exclude_self": True,
        "methods": ["xent", "logconf"], "seeds": [0, 1], "embed": {"dtype": "fp32"},
        "splits": {"n_weak_train": 40, "n_transfer": 40, "n_val": 20, "n_test": 20, "min_val": 20, "min_test": 20},
        "probe": {"epochs": 4, "lr": 0.01},
    }))  # JSON is YAML
    return f


def manifests(cache: Path) -> int:
    return len(list((cache / "stages").glob("*/*/manifest.json")))


def table(out: Path) -> list[dict]:
    r = subprocess.run([sys.executable, "-m", "w2sgen.cli", "results", str(out), "--format", "json"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.fixture(scope="module")
def reference(sweep_file, tmp_path_factory) -> tuple[Path, Path]:
    """An uninterrupted sweep with 2 worker processes: (out, cache)."""
    root = tmp_path_factory.mktemp("ref")
    out, cache = root / "out", root / "cache"
    assert main(["sweep", str(sweep_file), "--workers", "2", "--out", str(out), "--cache-dir", str(cache)]) == 0
    return out, cache


def test_plan_shares_floors_and_ceilings(sweep_file, tmp_path):
    runs = expand(load_sweep(sweep_file))
    plan = make_plan(runs, tmp_path / "empty-cache")
    assert len(runs) == RUNS and plan.total == TOTAL and plan.unique == UNIQUE < plan.total
    assert plan.counts() == {"floor": {"unique": 4, "cached": 0, "left": 4},
                             "ceiling": {"unique": 4, "cached": 0, "left": 4},
                             "student": {"unique": 12, "cached": 0, "left": 12}}
    floors = [s for s in plan.stages.values() if s.kind == "floor"]
    assert sorted(len(s.runs) for s in floors) == [1, 1, 2, 2]  # weak a serves pairs (a,b) and (a,c)


def test_dry_run_refuses_degenerate_splits(tmp_path, tiny_encoders, capsys):
    """The planner draws the splits, so `w2s sweep --dry-run` (and any sweep) stops on the split guard."""
    weak, strong = tiny_encoders
    f = tmp_path / "sweep.yaml"
    f.write_text(json.dumps({"tasks": [str(write_toy_task(tmp_path / "toy.jsonl"))], "models": [str(weak), str(strong)],
                             "exclude_self": True, "methods": ["xent"], "seeds": [0],
                             "splits": {"n_test": 20, "min_val": 10}}))
    assert main(["sweep", str(f), "--dry-run", "--cache-dir", str(tmp_path / "cache")]) == 2
    err = capsys.readouterr().err
    assert "split 'test' has 20 examples, under splits.min_test=200" in err and "splits.n_test=20 asks for fewer" in err


def test_two_workers_sweep_trains_each_stage_once(reference, sweep_file, capsys):
    out, cache = reference
    assert manifests(cache) == UNIQUE  # shared stages trained once, across processes (file locks)
    recs = [json.loads(f.read_text()) for f in out.glob("*/run.json")]
    assert len(recs) == RUNS
    blocks = [b for r in recs for b in [r["stages"]["weak"], r["stages"]["ceiling"], *r["stages"]["students"].values()]]
    assert len(blocks) == TOTAL and sum(not b["cached"] for b in blocks) == UNIQUE  # each built by one process
    rows = table(out)
    assert len(rows) == RUNS * 2 and all(0 <= r["w2s_acc"] <= 1 for r in rows)
    # the planner's keys are run_seed's keys: after the sweep every planned stage is cached
    plan = make_plan(expand(load_sweep(sweep_file), out=str(out)), cache)
    assert plan.cached == plan.unique == UNIQUE
    assert all(s.key is not None for s in plan.stages.values())


def test_dry_run_prints_the_plan(reference, sweep_file, tmp_path, capsys):
    assert main(["sweep", str(sweep_file), "--dry-run", "--cache-dir", str(tmp_path / "c"),
                 "--out", str(tmp_path / "o")]) == 0
    text = capsys.readouterr().out
    assert f"runs: {RUNS}" in text
    assert f"stages: {TOTAL} over runs, {UNIQUE} unique (shared: {TOTAL - UNIQUE}), 0 cached, {UNIQUE} left" in text
    assert "no time estimate" in text
    assert not (tmp_path / "o").exists() and not (tmp_path / "c" / "stages").exists()  # nothing ran
    _, cache = reference
    assert main(["sweep", str(sweep_file), "--dry-run", "--cache-dir", str(cache)]) == 0
    text = capsys.readouterr().out
    assert f"{UNIQUE} unique (shared: {TOTAL - UNIQUE}), {UNIQUE} cached, 0 left" in text
    assert "work left: none" in text


def test_ray_address_without_ray_executor_is_refused_clearly(sweep_file, capsys):
    assert main(["sweep", str(sweep_file), "--ray-address", "auto"]) == 2
    assert "--ray-address auto: it applies to the Ray executor; add --executor ray" in capsys.readouterr().err


def test_kill_9_then_resume_equals_uninterrupted(reference, sweep_file, tmp_path, capsys):
    out, cache = tmp_path / "out", tmp_path / "cache"
    cmd = [sys.executable, "-m", "w2sgen.cli", "sweep", str(sweep_file), "--out", str(out), "--cache-dir", str(cache)]
    env = dict(os.environ, W2S_PROGRESS="0")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        deadline = time.time() + 120
        while manifests(cache) < 3 and proc.poll() is None and time.time() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None, "the sweep ended before it could be killed"
        assert manifests(cache) >= 3, "no stage finished within 120 s"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    done_before = manifests(cache)
    assert done_before < UNIQUE
    assert main(["sweep", str(sweep_file), "--dry-run", "--out", str(out), "--cache-dir", str(cache)]) == 0
    plan_text = capsys.readouterr().out
    assert f"{done_before} cached, {UNIQUE - done_before} left" in plan_text
    assert f"work left: {UNIQUE - done_before} stages, about" in plan_text  # estimated from train.json times
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert manifests(cache) == UNIQUE
    recs = [json.loads(f.read_text()) for f in out.glob("*/run.json")]
    reused = sum(b["cached"] for rec in recs for b in
                 [rec["stages"]["weak"], rec["stages"]["ceiling"], *rec["stages"]["students"].values()])
    assert reused >= done_before  # finished stages were reused, not retrained
    got = pd.DataFrame(table(out)).sort_values(["task", "weak", "strong", "mode", "method", "seed"], ignore_index=True)
    want = pd.DataFrame(table(reference[0])).sort_values(["task", "weak", "strong", "mode", "method", "seed"],
                                                         ignore_index=True)
    pd.testing.assert_frame_equal(got, want, check_exact=True)
