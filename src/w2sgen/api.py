"""The Python API: ``w2sgen.run(config) -> Results`` and ``w2sgen.load_results(dir)``."""

from __future__ import annotations

import logging
import os
import platform
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from .config import RunConfig, from_dict, to_dict

log = logging.getLogger("w2sgen")


@dataclass
class Results:
    """Run records of a results directory, as a tidy table."""

    runs: list[dict[str, Any]]
    out: Path | None = None

    @property
    def table(self) -> pd.DataFrame:
        """One row per (task, weak, strong, mode, method, seed), with the gap, its interval and the flag."""
        from .aggregate import runs_table

        return runs_table(self.runs)

    def summary(self) -> pd.DataFrame:
        """Per (task, weak, strong, mode, method): means over seeds and PGR as a ratio of means, with
        95% intervals and the flag (``w2sgen.aggregate.summarize``)."""
        from .aggregate import Predictions, runs_table, summarize

        preds = Predictions(self.out)
        return summarize(runs_table(self.runs, preds=preds), preds=preds)

    def compare(self, reference: str = "xent") -> pd.DataFrame:
        """Each method against ``reference`` on the same runs, per task (``w2sgen.aggregate.compare``):
        Δ w2s accuracy and ΔPGR with 95% intervals."""
        from .aggregate import Predictions, compare, runs_table

        preds = Predictions(self.out)
        return compare(runs_table(self.runs, preds=preds), reference, by=("task",), preds=preds)

    def query(self, task: str | list[str] | None = None, method: str | list[str] | None = None,
              where: str | None = None) -> pd.DataFrame:
        """The table filtered through the directory's index ``runs.sqlite`` (``where``: SQL)."""
        from .errors import W2SError
        from .store.db import query

        if self.out is None:
            raise W2SError("these results have no directory to query; use load_results(DIR)")
        return query(self.out, task=task, method=method, where=where)

    def __str__(self) -> str:
        from .aggregate import format_summary

        return format_summary(self.summary())


def load_results(out: str | Path) -> Results:
    from .store.results import read_runs

    return Results(read_runs(out), Path(out))


def versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("w2sgen", "torch", "transformers", "numpy", "pandas", "scikit-learn", "datasets"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


def seed_everything(seed: int) -> None:
    """One seed for python, numpy and torch."""
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def run(config: RunConfig | dict[str, Any], *, cache_dir: str | Path | None = None,
        trackers: str | list[str] | None = None, index: bool = True,
        executor_info: dict[str, Any] | None = None) -> Results:
    """Run the protocol for every seed of ``config``; write each run under ``config.out``.

    Each run is also indexed in ``config.out/runs.sqlite``; ``trackers`` (e.g. "tensorboard")
    logs it through accelerate's tracker API. ``index=False`` skips both (a sweep driver indexes
    the folders itself: remote workers never write the SQLite file). ``executor_info`` is recorded
    as the run's ``"executor"`` (where it ran; default: this process, kind "local").
    """
    from .models import resolve_model
    from .protocol import PREDICT_SPLITS, run_seed, side_for
    from .store.cache import StageCache
    from .store.labels import read_labels
    from .store.results import run_dir_name, write_run
    from .tasks import load_task
    from .tasks.splits import SPLITS, make_splits

    cfg = from_dict(RunConfig, config) if isinstance(config, dict) else config
    cfg.validate()
    if trackers:
        from .trackers import parse_trackers

        trackers = parse_trackers(trackers)  # unknown names fail before any work
    from .generation import is_generation_task

    if is_generation_task(cfg.task):  # answers written as text: generation/run.py
        from .generation.run import run as run_generation
        from .generation.run import with_defaults

        cfg = with_defaults(cfg, given=set(config) if isinstance(config, dict) else None)
        return run_generation(cfg, cache_dir=cache_dir, trackers=trackers, index=index, executor_info=executor_info)
    from .methods.compose import parse

    methods = [parse(m, cfg.method_args, cfg.mode).name for m in cfg.methods]  # unknown names fail before any work
    cfg = replace(cfg, methods=methods)
    weak_model = resolve_model(cfg.weak) if not cfg.weak_labels else None
    strong_model = resolve_model(cfg.strong)
    cache = StageCache(cache_dir)
    from .safety import check_writable, writing

    check_writable(cfg.out, "results directory")  # fail before any compute, not after it
    check_writable(cache.root, "cache directory")
    t0 = time.time()
    task = load_task(cfg.task, cfg.data_dir, cfg.text_col, cfg.label_col, cfg.group_col)
    t_task = time.time() - t0
    log.info("task %s: %d examples (%.1fs)", task.name, len(task), t_task)
    given = read_labels(cfg.weak_labels, task.num_classes) if cfg.weak_labels else None

    plan = {seed: make_splits(task, cfg.splits, seed) for seed in cfg.seeds}
    texts = task.frame["text"].tolist()
    strong = side_for(strong_model, cfg.embed.strong_layer, cfg, cache.root, role="strong")
    strong.texts_needed = sorted({texts[i] for sp in plan.values() for s in PREDICT_SPLITS for i in sp[s]})
    weak = None
    if weak_model is not None:
        weak = side_for(weak_model, cfg.embed.weak_layer, cfg, cache.root, role="weak")
        weak.texts_needed = sorted({texts[i] for sp in plan.values() for s in SPLITS for i in sp[s]})

    out = Path(cfg.out)
    records = []
    for seed, splits in plan.items():
        seed_everything(seed)
        t_seed = time.time()
        with writing("cache directory", cache.root):
            rec = run_seed(cfg, seed, task, splits, weak, strong, cache, given)
        stages = rec.pop("_stages")
        from .aggregate import finish_run

        run_stats = finish_run(rec, task, splits, stages)  # the gap, its interval, the flag; nulls a flagged PGR
        record = {
            "config": dict(to_dict(cfg), seeds=[seed]),
            "seed": seed,
            "split_seed": splits.seed,
            "mode": cfg.mode,
            "task": {"name": task.name, "fingerprint": task.fingerprint(), "examples": len(task),
                     "num_classes": task.num_classes, "label_names": task.label_names,
                     "sizes": splits.sizes(), "notes": task.notes, "load_s": round(t_task, 3)},
            "weak": {"name": cfg.weak if weak is None else weak.model.name,
                     **({} if weak is None else {"layer": weak.layer, "pooling": weak.pooling, **weak.meta})},
            "strong": {"name": strong.model.name, "layer": strong.layer, "pooling": strong.pooling, **strong.meta},
            "stages": rec,
            "stats": run_stats,
            "versions": versions(),
            "wall_s": round(time.time() - t_seed, 3),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "executor": executor_info or {"kind": "local", "pid": os.getpid(), "node": platform.node(),
                                         "worker": None},
        }
        if weak is None:
            record["weak"]["name"] = Path(cfg.weak_labels).name if cfg.weak_labels else cfg.weak
        name = run_dir_name(task.name, record["weak"]["name"], strong.model.name, cfg.mode, seed)
        stage_files = {k: cache.path(st.name, st.key) / "predictions.parquet"
                       for k, st in stages.items() if st.name != "given"}
        given_frames = {} if "weak" in stage_files else {"weak": stages["weak"].predictions}
        from .train.distributed import broadcast_from_main, is_main_process

        if is_main_process():  # under a multi-process launch only rank 0 writes the run folder
            d = write_run(out, name, record, stage_files, given_frames)
            _write_labels(d, task, splits)
            from .store.db import index_run

            if index:
                index_run(out, d)
            if index and trackers:
                from .trackers import log_run

                log_run(trackers, out, d)
        d = Path(broadcast_from_main(str(d) if is_main_process() else None))
        log.info("run %s: done in %.1fs", name, record["wall_s"])
        record["_dir"] = str(d)
        records.append(record)
    return Results(records, out)


def _write_labels(d: Path, task, splits) -> None:
    """``<run>/labels.parquet``: id, split, label and group of the predicted splits (for intervals and diagnostics)."""
    from .protocol import PREDICT_SPLITS
    from .store.atomic import atomic_write_bytes

    frame = task.frame
    parts = [pd.DataFrame({"id": frame["id"].iloc[splits[s]].to_numpy(), "split": s,
                           "label": frame["label"].iloc[splits[s]].to_numpy(),
                           "group": frame["group"].astype(str).iloc[splits[s]].to_numpy()}) for s in PREDICT_SPLITS]
    atomic_write_bytes(d / "labels.parquet", pd.concat(parts, ignore_index=True).to_parquet(index=False))
