"""What the claims are computed from: every stage's test predictions, per mode, task and seed.

One :class:`Evidence` per mode holds, for each task and seed, the test examples (labels, groups) and
the predicted class of every stage the runs of that seed trained: the weak floors, the strong
ceilings, the students of each (weak, strong, method), and early stopping's oracle and last
checkpoints (read from the stage cache: the run folder keeps only the kept checkpoint). Runs of one
task and seed share their test set (the splits depend on the task and seed only); a run whose test
set differs is an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import W2SError


def weak_stage(w: str) -> str:
    """The floor of weak model ``w`` (one per task and seed, shared by every pair it supervises)."""
    return f"weak:{w}"


def ceiling_stage(s: str) -> str:
    """The ceiling of strong model ``s`` (trained on ground truth)."""
    return f"ceiling:{s}"


def student_stage(w: str, s: str, method: str) -> str:
    """The student of ``method`` on strong model ``s`` taught by weak model ``w``."""
    return f"student:{w}>{s}:{method}"


def checkpoint_stage(w: str, s: str, which: str) -> str:
    """early_stop's ``oracle`` (best ground-truth val accuracy) or ``last`` checkpoint of (w, s)."""
    return f"early_stop-{which}:{w}>{s}"


@dataclass
class TaskSeed:
    """The test examples of one task and seed and each stage's predicted class on them."""

    labels: np.ndarray
    """(n,) ground-truth classes."""
    groups: np.ndarray
    """(n,) the group each example was drawn with (the unit of the test noise)."""
    preds: dict[str, np.ndarray] = field(default_factory=dict)
    """stage (``weak_stage``, ``ceiling_stage``, ...) -> (n,) predicted class."""
    ids: np.ndarray | None = None
    """(n,) example ids (to check that runs of this task and seed share their test set)."""


@dataclass
class Evidence:
    """One mode's test predictions: ``tasks[task][seed]``, and the ladder they come from."""

    mode: str
    ladder: list[str]
    """Model names, smallest first (the order the user gave; never re-sorted)."""
    params: dict[str, float]
    """Model name -> parameter count."""
    tasks: dict[str, dict[int, TaskSeed]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    """What could not be read (e.g. an early_stop checkpoint missing from the stage cache)."""

    def pairs(self, task: str) -> list[tuple[str, str]]:
        """The (weak, strong) pairs of ``task`` whose weak, ceiling and some student every seed has, in ladder order."""
        seeds = self.tasks.get(task, {})
        out = []
        for i, w in enumerate(self.ladder):
            for s in self.ladder[i + 1:]:
                need = (weak_stage(w), ceiling_stage(s))
                if seeds and all(all(k in ts.preds for k in need) and any(
                        k.startswith(f"student:{w}>{s}:") for k in ts.preds) for ts in seeds.values()):
                    out.append((w, s))
        return out

    def has(self, task: str, stages: list[str]) -> bool:
        """Whether every seed of ``task`` has every one of ``stages``."""
        seeds = self.tasks.get(task, {})
        return bool(seeds) and all(all(k in ts.preds for k in stages) for ts in seeds.values())


def _argmax(probs: np.ndarray) -> np.ndarray:
    return np.asarray(probs).argmax(1).astype(np.int64)


def collect(folders: list[Path], mode: str, ladder: list[str], params: dict[str, float],
            cache_root: str | Path | None = None) -> Evidence:
    """The Evidence of ``mode`` from run ``folders`` (runs of other modes or models are skipped).

    ``cache_root``: the stage cache the runs used (early_stop's oracle and last checkpoints live
    there, in the student's ``arrays.npz``); without it those stages are left out (a note says so).
    """
    import json

    from ..aggregate import load_predictions

    ev = Evidence(mode, list(ladder), dict(params))
    cache = None
    if cache_root is not None:
        from ..store.cache import StageCache

        cache = StageCache(cache_root)
    for run in folders:
        try:
            rec = json.loads((Path(run) / "run.json").read_text())
        except (OSError, ValueError) as e:
            raise W2SError(f"{run}/run.json: unreadable ({e}); delete that run folder and rerun") from None
        if rec.get("mode") != mode:
            continue
        w, s = rec["weak"]["name"], rec["strong"]["name"]
        if w not in ladder or s not in ladder:
            continue
        run = Path(run)
        preds = load_predictions(run, ("test",))
        if preds is None or "test" not in preds.labels:
            raise W2SError(f"{run}: no test predictions with labels; rerun it (same command) to rewrite the folder")
        task, seed = rec["task"]["name"], int(rec["seed"])
        ts = ev.tasks.setdefault(task, {}).get(seed)
        if ts is None:
            ts = TaskSeed(preds.labels["test"], preds.groups["test"], ids=preds.ids["test"])
            ev.tasks[task][seed] = ts
        elif not np.array_equal(ts.ids, preds.ids["test"]):
            raise W2SError(f"{run}: its test set differs from the other runs of {task} seed {seed}; the runs of "
                           "one reproduction must share their split settings (rerun them into a fresh --out)")
        stages = {"weak": weak_stage(w), "ceiling": ceiling_stage(s)}
        stages.update({f"student-{m}": student_stage(w, s, m) for m in rec["stages"]["students"]})
        for name, key in stages.items():
            p = preds.probs.get(name, {}).get("test")
            if p is not None:
                ts.preds[key] = _argmax(p)
        es = rec["stages"]["students"].get("early_stop")
        if es is not None:
            _checkpoints(ev, ts, es, w, s, cache, run)
    return ev


def _checkpoints(ev: Evidence, ts: TaskSeed, block: dict[str, Any], w: str, s: str, cache: Any, run: Path) -> None:
    """early_stop's oracle and last checkpoints' test predictions, from the student's cache entry."""
    an = (block.get("analysis") or {}).get("early_stop")
    if not an:
        ev.notes.append(f"{run.name}: early_stop has no analysis (oracle/last) in run.json")
        return
    entry = cache.get("student", block["key"]) if cache is not None else None
    if entry is None or not (entry / "arrays.npz").is_file():
        ev.notes.append(f"{run.name}: early_stop's checkpoints are not in the stage cache"
                        f"{'' if cache is not None else ' (no cache given)'}; claim 5 leaves this run out")
        return
    with np.load(entry / "arrays.npz") as z:
        test = z["early_stop/probs/test"]  # (T, n, K): each evaluation point's test predictions
    if test.shape[1] != len(ts.labels):
        raise W2SError(f"{entry}: early_stop's test predictions have {test.shape[1]} rows, the run's test set "
                       f"{len(ts.labels)}; the cache entry does not belong to {run}")
    for which in ("oracle", "last"):
        ts.preds[checkpoint_stage(w, s, which)] = _argmax(test[int(an[which]["index"])])

