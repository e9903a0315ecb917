"""The local executor: a sweep's runs in N worker processes (spawn), one GPU each when GPUs exist.

Workers call ``api.run`` on one run each; shared stages are trained once because the stage cache
locks each entry while it is built (``StageCache.lock``) and the second process reads the first's
entry. Every run writes its folder atomically and indexes it in ``OUT/runs.sqlite`` in one
``BEGIN IMMEDIATE`` transaction (local filesystem: SQLite serializes the writers); the parent syncs
the index once more at the end. A killed sweep resumes by running the same command: cached stages
are reused, the rest trained.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import RunConfig, to_dict
from ..errors import W2SError
from .grid import run_label
from .progress import SweepProgress, Tracker

log = logging.getLogger("w2sgen")


@dataclass
class SweepResult:
    """What a sweep did: run folders written, failures, wall time."""

    out: list[Path]
    run_dirs: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    wall_s: float = 0.0


def visible_gpus() -> list[str]:
    """GPU ids to hand out to workers: CUDA_VISIBLE_DEVICES if set, else ``nvidia-smi -L``; none on CPU.

    Does not import torch (the parent never initialises CUDA)."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [g.strip() for g in env.split(",") if g.strip() and g.strip() != "-1"]
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        r = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(r.stdout.splitlines()) if line.startswith("GPU ")]


def _init_worker(gpus: Any, verbose: bool) -> None:
    """Worker start: take one GPU id from the queue (before torch is imported), set up logging."""
    if gpus is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpus.get()
    from ..log import setup_logging

    setup_logging(verbose)


MethodFiles = Sequence[tuple[str, str]]
"""(path, sha256) of each method file a sweep's runs name (``w2sgen.benchmark.method_file``)."""


def load_method_files(method_files: MethodFiles) -> None:
    """Register the method files in this process (a worker, before its run), each with the content
    the driver loaded."""
    if method_files:
        from ..benchmark.method_file import load_method_files as load

        load(method_files)


def _run_one(cfg_dict: dict[str, Any], cache_dir: str | None, method_files: MethodFiles = ()) -> tuple[str, float]:
    """Run one sweep run (in a worker); returns (run folder, seconds)."""
    from .. import api
    from ..config import RunConfig, from_dict

    load_method_files(method_files)
    t0 = time.time()
    res = api.run(from_dict(RunConfig, cfg_dict), cache_dir=cache_dir)
    return res.runs[0]["_dir"], time.time() - t0


Report = Callable[[int, str | None, float, str | None], None]
"""``report(run index, run folder, seconds, error)``: what an executor calls when a run ends."""


def reporter(runs: list[RunConfig], result: SweepResult, tracker: Tracker) -> Report:
    """The run-end callback shared by the executors: records the result, logs, feeds the progress view."""
    n = len(runs)
    done = 0

    def report(i: int, d: str | None, s: float, err: str | None = None) -> None:
        nonlocal done
        done += 1
        label = run_label(runs[i])
        if err is None:
            result.run_dirs.append(d or "")
            tracker.finish(i, f"sweep [{done}/{n}] {label}: done in {s:.1f}s")
        else:
            result.failed.append((label, err))
            tracker.finish(i, f"sweep [{done}/{n}] {label}: failed: {err}", ok=False)

    return report


def raise_failures(result: SweepResult, n: int) -> None:
    """One W2SError listing every failed run (completed stages stay cached, so a rerun resumes)."""
    if result.failed:
        lines = "\n".join(f"  {label}: {err}" for label, err in result.failed)
        raise W2SError(f"{len(result.failed)} of {n} sweep runs failed (completed stages are cached; fix and "
                       f"rerun the same command to resume):\n{lines}")


def run_local(runs: list[RunConfig], *, workers: int = 1, cache_dir: str | Path | None = None,
              verbose: bool = False, progress: SweepProgress | None = None,
              method_files: MethodFiles = ()) -> SweepResult:
    """Run every run of a sweep; ``workers`` > 1 runs them in that many spawned processes.
    ``method_files``: method files the runs name, loaded in each worker before its run.

    A failed run does not stop the others; failures are collected and raised together at the end
    as one W2SError (completed stages stay cached, so a rerun resumes). ``progress`` (built from the
    sweep's plan) is drawn live while the runs go.
    """
    if workers < 1:
        raise W2SError(f"--workers {workers}: give at least 1")
    t0 = time.time()
    cache = str(cache_dir) if cache_dir is not None else None
    outs = sorted({Path(c.out) for c in runs})
    result = SweepResult(outs)
    n = len(runs)
    serial = workers == 1 or n <= 1
    if progress is not None:
        progress.slots = 1 if serial else min(workers, n)
    with Tracker(progress) as tracker:
        report = reporter(runs, result, tracker)
        tracker.fill()
        if serial:
            from ..safety import interrupt_guard

            for i, cfg in enumerate(runs):
                try:
                    with interrupt_guard():
                        d, s = _run_one(to_dict(cfg), cache, method_files)
                    report(i, d, s, None)
                except W2SError as e:
                    report(i, None, 0.0, str(e))
                except Exception as e:  # a bug (in a method file, say): name it, keep going, as the pool does
                    log.warning("run %d failed", i + 1, exc_info=True)
                    report(i, None, 0.0, f"{type(e).__name__}: {e}")
        else:
            _run_pool(runs, workers, cache, verbose, report, method_files)
    sync_outs(outs)
    result.wall_s = time.time() - t0
    raise_failures(result, n)
    return result


def _run_pool(runs: list[RunConfig], workers: int, cache: str | None, verbose: bool, report: Report,
              method_files: MethodFiles = ()) -> None:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    ctx = mp.get_context("spawn")
    gpus = visible_gpus()
    queue = None
    if gpus:
        if workers > len(gpus):
            log.warning("--workers %d > %d GPUs: workers share GPUs round-robin", workers, len(gpus))
        queue = ctx.Manager().Queue()
        for i in range(workers):
            queue.put(gpus[i % len(gpus)])
    with ProcessPoolExecutor(max_workers=min(workers, len(runs)), mp_context=ctx, initializer=_init_worker,
                             initargs=(queue, verbose)) as pool:
        futures = {pool.submit(_run_one, to_dict(cfg), cache, list(method_files)): i for i, cfg in enumerate(runs)}
        for fut in as_completed(futures):
            i = futures[fut]
            try:
                d, s = fut.result()
                report(i, d, s, None)
            except W2SError as e:
                report(i, None, 0.0, str(e))
            except Exception as e:  # a worker died or a bug: name it, keep going
                report(i, None, 0.0, f"{type(e).__name__}: {e}")


def sync_outs(outs: list[Path]) -> None:
    """Bring each results directory's index up to date (the parent is the last writer)."""
    from ..store.db import sync

    for out in outs:
        if out.is_dir():
            sync(out)


def progress_line(result: SweepResult) -> str:
    return (f"sweep: {len(result.run_dirs)} runs done, {len(result.failed)} failed in {result.wall_s:.0f}s; "
            f"results in {', '.join(str(o) for o in result.out)}")


