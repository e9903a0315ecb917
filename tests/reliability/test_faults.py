"""Faults during a run: a NaN loss, a full disk, an unwritable results directory, Ctrl-C."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write_toy_task

import w2sgen
from w2sgen.config import ProbeConfig, RunConfig, SplitConfig
from w2sgen.errors import W2SError
from w2sgen.train.losses import xent
from w2sgen.train.probe import train_heads


def nan_at(k: int):
    """xent, except that the loss of step ``k`` is NaN (a NaN-producing batch)."""

    def loss(logits, target, step, total):
        out = xent(logits, target)
        return out * torch.tensor(float("nan")) if step == k else out

    return loss


def small_config(task, weak, strong, out, **kw) -> RunConfig:
    cfg = RunConfig(task=str(task), weak=str(weak), strong=str(strong), out=str(out), methods=["xent"], seeds=[0],
                    splits=SplitConfig(n_weak_train=40, n_transfer=40, n_val=20, n_test=20, min_val=20, min_test=20), **kw)
    cfg.probe.epochs = 10
    return cfg


def leftovers(root: Path) -> list[str]:
    """Temporary or partial files and folders under ``root``."""
    if not root.exists():
        return []
    return [str(p) for p in root.rglob("*") if p.name.startswith(".") or p.name.endswith(".tmp")]


def test_nan_loss_names_stage_and_step():
    x = np.random.default_rng(0).normal(size=(32, 4)).astype(np.float32)
    y = np.eye(2, dtype=np.float32)[np.arange(32) % 2]
    with pytest.raises(W2SError, match=r"stage floor \(weak\): loss is nan at step 7 of 20 .*probe.skip_nonfinite"):
        train_heads(x, y, nan_at(7), ProbeConfig(epochs=5, batch_size=8), 0, desc="floor (weak)")
    res = train_heads(x, y, nan_at(7), ProbeConfig(epochs=5, batch_size=8, skip_nonfinite=True), 0, desc="floor")
    assert res.skipped == [1] * 5 and res.steps == 20 and all(np.isfinite(res.losses).all(axis=1))
    with pytest.raises(W2SError, match="every one of the 20 steps"):
        train_heads(x, y, lambda *a: torch.tensor(float("inf")), ProbeConfig(epochs=5, batch_size=8,
                                                                             skip_nonfinite=True), 0)


def test_nan_in_a_run_stops_the_stage_and_caches_nothing_of_it(tmp_path, tiny_encoders, monkeypatch):
    import w2sgen.protocol as protocol

    weak, strong = tiny_encoders
    toy = write_toy_task(tmp_path / "toy.jsonl")
    cache = tmp_path / "cache"
    monkeypatch.setattr(protocol, "_xent_loss", lambda: nan_at(3))
    with pytest.raises(W2SError, match=r"stage floor \(.*\): loss is nan at step 3"):
        w2sgen.run(small_config(toy, weak, strong, tmp_path / "out"), cache_dir=cache)
    assert not (cache / "stages" / "floor").exists() or not any((cache / "stages" / "floor").iterdir())
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    # with the flag the run completes and records the skipped step
    cfg = small_config(toy, weak, strong, tmp_path / "out")
    cfg.probe.skip_nonfinite = True
    res = w2sgen.run(cfg, cache_dir=cache)
    rec = json.loads((Path(res.runs[0]["_dir"]) / "run.json").read_text())
    assert rec["stages"]["weak"]["train"]["skipped_steps"] == 1
    assert rec["stages"]["ceiling"]["train"]["skipped_steps"] == 1


def enospc(*a, **kw):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(a[-1]) if a else None)


def test_full_disk_while_writing_results(tmp_path, tiny_encoders, monkeypatch):
    import w2sgen.store.results as results

    weak, strong = tiny_encoders
    toy = write_toy_task(tmp_path / "toy.jsonl")
    out, cache = tmp_path / "out", tmp_path / "cache"
    monkeypatch.setattr(results.shutil, "copyfile", enospc)
    with pytest.raises(W2SError, match=r"cannot write the results directory: the disk is full.*--out"):
        w2sgen.run(small_config(toy, weak, strong, out), cache_dir=cache)
    assert out.is_dir() and not any(out.iterdir()), "no partial run folder"
    assert not leftovers(cache), "the stage cache holds complete entries only"
    monkeypatch.undo()
    res = w2sgen.run(small_config(toy, weak, strong, out), cache_dir=cache)  # space is back: nothing retrains
    assert res.runs[0]["stages"]["ceiling"]["cached"] and len(list(out.glob("*/run.json"))) == 1


def test_full_disk_while_writing_the_stage_cache(tmp_path, tiny_encoders, monkeypatch):
    import w2sgen.store.cache as cache_mod

    weak, strong = tiny_encoders
    toy = write_toy_task(tmp_path / "toy.jsonl")
    out, cache = tmp_path / "out", tmp_path / "cache"
    monkeypatch.setattr(cache_mod, "atomic_write_json", enospc)
    with pytest.raises(W2SError, match=r"cannot write the cache directory: the disk is full.*W2S_CACHE_DIR"):
        w2sgen.run(small_config(toy, weak, strong, out), cache_dir=cache)
    stages = cache / "stages"
    assert not stages.exists() or not [p for d in stages.iterdir() for p in d.iterdir()], "no partial entry"
    assert not leftovers(cache)
    assert not out.exists() or not any(out.iterdir())


def test_unwritable_results_dir_fails_before_any_compute(tmp_path, tiny_encoders, monkeypatch):
    import w2sgen.safety as safety
    import w2sgen.train.probe as probe

    weak, strong = tiny_encoders
    toy = write_toy_task(tmp_path / "toy.jsonl")
    calls = []
    monkeypatch.setattr(probe, "train_heads", lambda *a, **kw: calls.append(1))
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(W2SError, match="must be a directory"):
        w2sgen.run(small_config(toy, weak, strong, blocker / "out"), cache_dir=tmp_path / "cache")

    def denied(*a, **kw):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(safety.tempfile, "TemporaryFile", denied)
    with pytest.raises(W2SError, match=r"results directory: permission denied.*--out"):
        w2sgen.run(small_config(toy, weak, strong, tmp_path / "ro"), cache_dir=tmp_path / "cache")
    assert not calls and not (tmp_path / "cache").exists() and not (tmp_path / "ro").exists()


def test_unwritable_results_dir_from_the_cli(tmp_path, tiny_encoders, capsys):
    from w2sgen.cli import main

    weak, strong = tiny_encoders
    toy = write_toy_task(tmp_path / "toy.jsonl")
    (tmp_path / "f").write_text("")
    rc = main(["run", "--task", str(toy), "--weak", str(weak), "--strong", str(strong), "--out",
               str(tmp_path / "f" / "out"), "--cache-dir", str(tmp_path / "c")])
    err = capsys.readouterr().err
    assert rc == 2 and "error: " in err and "results directory" in err and "Traceback" not in err


def test_sigint_stops_cleanly_and_the_rerun_resumes(tmp_path, tiny_encoders):
    weak, strong = tiny_encoders
    toy = write_toy_task(tmp_path / "toy.jsonl")
    cache, out = tmp_path / "cache", tmp_path / "out"
    argv = [sys.executable, "-m", "w2sgen.cli", "run", "--task", str(toy), "--weak", str(weak), "--strong",
            str(strong), "--methods", "xent", "--out", str(out), "--cache-dir", str(cache),
            "--set", "splits.n_weak_train=40", "--set", "splits.n_transfer=40", "--set", "splits.n_val=20",
            "--set", "splits.n_test=20", "--set", "splits.min_val=20", "--set", "splits.min_test=20",
            "--set", "probe.epochs=400"]
    env = dict(os.environ, OMP_NUM_THREADS="1", W2S_PROGRESS="0", HF_HUB_OFFLINE="1")
    env.pop("W2S_DEBUG", None)
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 90
    floor = cache / "stages" / "floor"
    while time.time() < deadline and p.poll() is None:
        if floor.is_dir() and any((e / "manifest.json").is_file() for e in floor.iterdir()):
            break
        time.sleep(0.05)
    assert p.poll() is None, "the run ended before it could be interrupted: " + p.stderr.read()[-2000:]
    p.send_signal(signal.SIGINT)
    stdout, stderr = p.communicate(timeout=60)
    assert p.returncode == 130, stderr[-2000:]
    assert "Traceback" not in stderr and "interrupted" in stderr and "rerun the same command" in stderr
    assert not list(out.glob("*/run.json")), "an interrupted run records nothing"
    assert not [x for x in leftovers(cache) if "stages" in x], "no half-built stage entry"

    r = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=180)
    assert r.returncode == 0, r.stderr[-2000:]
    rec = json.loads(next(out.glob("*/run.json")).read_text())
    assert rec["stages"]["weak"]["cached"] is True, "the completed floor stage is reused"
