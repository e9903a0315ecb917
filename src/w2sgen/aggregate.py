"""The one place where runs become the numbers w2sgen shows: per-run gaps and flags, aggregates over
seeds, model pairs and tasks (ratios of means, with intervals), and paired comparisons of methods.
``w2s results`` (table, ``--summary``, json), ``runs.sqlite``, ``w2s report`` and every bench use it.

Rules (issue 14):

* PGR = (mean w2s − mean weak) / (mean ceiling − mean weak): a ratio of means over seeds (and over
  model pairs and tasks: the mean of their means), never a mean of per-run ratios.
* A PGR is shown with its gap (ceiling − weak), the gap's 95% interval and a flag. Flagged — the
  gap is under the threshold (2 points) or its interval includes 0 — means the PGR is null.
  One rule for a run (its interval over test groups, stored in ``run.json`` ``stats``) and for an
  aggregate (its interval over seeds and test groups): :func:`w2sgen.stats.flag_reason`.
* Intervals: ``stats.seed_moments`` + ``stats.ratio_interval`` (Fieller), chosen by simulation
  (``bench/coverage.py``). ΔPGR between methods is paired on the same runs: (mean m − mean ref) /
  (mean ceiling − mean weak).
* Methods that read ground truth (``uses_ground_truth`` in run.json) are marked ``*`` and never
  ranked.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import stats
from .errors import W2SError
from .stats import GAP_THRESHOLD, LEVEL

log = logging.getLogger("w2sgen")

RUN_KEYS = ["task", "weak", "strong", "mode"]
"""A cell: the runs of one (task, weak, strong, mode), one per seed."""
KEYS = [*RUN_KEYS, "method", "seed"]
TABLE_COLUMNS = [*KEYS, "weak_acc", "ceiling_acc", "w2s_acc", "gap_acc", "gap_acc_lo", "gap_acc_hi", "flagged",
                 "pgr_acc", "pgr_acc_lo", "pgr_acc_hi", "weak_auroc", "ceiling_auroc", "w2s_auroc", "majority_acc",
                 "uses_ground_truth", "task_kind"]
"""The per-run results table: one row per (run, method); accuracies are fractions. ``pgr_acc_lo`` /
``pgr_acc_hi``: the run's Fieller interval over its test groups. AUROCs are shown as means only: a
PGR of AUROCs would need its own gap, interval and flag, which w2sgen does not compute.
``task_kind``: ``classification`` or ``generation`` (run.json's ``task_kind``; a run.json without
it is a classification run)."""
NUMERIC = [c for c in TABLE_COLUMNS if c not in (*KEYS, "flagged", "uses_ground_truth", "task_kind")]
SUMMARY_COLUMNS = [*RUN_KEYS, "method", "n_seeds", "test_noise_only", "weak_acc", "ceiling_acc", "w2s_acc", "gap_acc", "gap_acc_lo",
                   "gap_acc_hi", "pgr_acc", "pgr_acc_lo", "pgr_acc_hi", "flagged", "flag_reason", "n_flagged_runs",
                   "w2s_acc_lo", "w2s_acc_hi", "weak_auroc", "ceiling_auroc", "w2s_auroc", "majority_acc",
                   "uses_ground_truth", "task_kind"]
"""``w2s results --summary``: one row per (task, weak, strong, mode, method). ``test_noise_only``: a
model pair has one seed, so the intervals hold the test sample's noise only, not seed-to-seed variance.
``task_kind``: the kinds of the row's runs, comma-separated when an aggregate over tasks mixes them."""
STATS_VERSION = 2
"""2: per-student PGR intervals (``pgr_acc_ci``); older blocks are recomputed from the predictions."""
GT_MARK = "*"
ONE_SEED = "†"
ONE_SEED_NOTE = ("1 seed (in a model pair): the interval holds the test sample's noise only, not the seed-to-seed "
                 "variance of training; run more seeds for an interval over training runs.")
"""Appended to the name of a method that reads ground truth, in every printed table."""


# --------------------------------------------------------------------------- one run


def _hash_ids(ids: Iterable[Any]) -> str:
    h = hashlib.sha256()
    for i in ids:
        h.update(str(i).encode() + b"\x1f")
    return h.hexdigest()[:16]


def gap_stats(y: np.ndarray, groups: np.ndarray, weak: np.ndarray | None, ceiling: np.ndarray | None,
              ids: Sequence[Any], threshold: float = GAP_THRESHOLD, level: float = LEVEL,
              students: dict[str, np.ndarray | None] | None = None) -> dict[str, Any]:
    """A run's ``stats`` block: the test gap ceiling − weak with its interval and the flag, and each
    student's PGR interval (``pgr_acc_ci``: method -> [lo, hi], None when unbounded or unknown).

    y (N,) test labels, groups (N,) their groups (the unit the test set was drawn in), weak,
    ceiling and ``students`` (method -> (N, K)) test probabilities. The intervals come from the
    cluster-robust covariance over groups (``stats.seed_moments`` of one run; t for the gap,
    Fieller for PGR): they cover this run's models on the test distribution. ``majority_acc`` is the
    share of the most frequent class in test (the accuracy of always answering it).
    """
    y = np.asarray(y)
    out: dict[str, Any] = {"version": STATS_VERSION, "level": level, "threshold": threshold,
                           "interval": "cluster-t", "n_test": int(len(y)),
                           "n_groups": int(len(np.unique(np.asarray(groups).astype(str)))) if len(y) else 0,
                           "majority_acc": float(np.bincount(y).max() / len(y)) if len(y) else None,
                           "test_ids": _hash_ids(ids)}
    ci: dict[str, list[float] | None] = {}
    if weak is None or ceiling is None or not len(y):
        gap = stats.Interval(float("nan"), float("nan"), float("nan"))
    else:
        right = np.stack([np.argmax(weak, 1) == y, np.argmax(ceiling, 1) == y], axis=1)  # (N, 2)
        run = stats.group_sums(groups, right)
        gap = stats.contrast_interval(stats.seed_moments(run.acc[None, :], [run]), np.array([-1.0, 1.0]), level)
        ci = _pgr_intervals(y, groups, weak, ceiling, students or {}, level)
    reason = stats.flag_reason(gap, threshold)
    out.update({"gap_acc": gap.value, "gap_acc_lo": gap.lo, "gap_acc_hi": gap.hi, "flagged": reason is not None,
                "flag_reason": reason, "pgr_acc_ci": ci})
    return out


def _pgr_intervals(y: np.ndarray, groups: np.ndarray, weak: np.ndarray, ceiling: np.ndarray,
                   students: dict[str, np.ndarray | None], level: float) -> dict[str, list[float] | None]:
    """Each student's PGR = (w2s − weak)/(ceiling − weak) on one run's test set, Fieller over groups:
    method -> [lo, hi], None when the interval is unbounded or the student has no test predictions."""
    names = [m for m, p in students.items() if p is not None]
    right = np.stack([np.argmax(p, 1) == y for p in (weak, ceiling, *(students[m] for m in names))], axis=1)
    run = stats.group_sums(groups, right)  # (G, 2 + M)
    m = stats.seed_moments(run.acc[None, :], [run])
    e = np.eye(right.shape[1])
    out: dict[str, list[float] | None] = {name: None for name in students}
    for j, name in enumerate(names):
        iv = stats.ratio_interval(m, e[2 + j] - e[0], e[1] - e[0], level)
        out[name] = [iv.lo, iv.hi] if np.isfinite(iv.lo) and np.isfinite(iv.hi) else None
    return out


def constant_class(probs: np.ndarray | None, y: np.ndarray) -> int | None:
    """The class a model predicts for every example, when ``y`` holds two or more classes; else None.

    probs (N, K). A weak model that answers one class everywhere is a degenerate supervisor: its
    students' PGR then measures how far they move off a constant, not weak-to-strong transfer.
    """
    if probs is None or len(probs) == 0 or len(np.unique(y)) < 2:
        return None
    pred = np.argmax(probs, 1)  # (N,)
    return int(pred[0]) if (pred == pred[0]).all() else None


def finish_run(rec: dict[str, Any], task: Any, splits: Any, stages: dict[str, Any],
               threshold: float = GAP_THRESHOLD) -> dict[str, Any]:
    """Called by ``w2sgen.run`` right after ``run_seed``: the run's ``stats`` block (gap, interval,
    flag, majority-class accuracy, each student's PGR interval); adds each stage's test ECE to its
    record, each student's ``pgr_acc_lo`` / ``pgr_acc_hi``, nulls the students' ``pgr_acc`` when the
    run is flagged (:func:`w2sgen.stats.pgr_flag_reason`) and drops ``pgr_auroc`` (a PGR of AUROCs
    has no gap, interval or flag of its own). ``rec`` is run_seed's record, ``stages`` its
    StageResults (``weak``, ``ceiling``, ``student-<method>``)."""
    frame = task.frame
    rows = splits["test"]
    ids = frame["id"].to_numpy()[rows].tolist()
    y = frame["label"].to_numpy()[rows]
    probs = {k: st.probs("test", ids) for k, st in stages.items()}
    k = constant_class(probs.get("weak"), y)
    if k is not None:
        log.warning("the weak model predicts class %d for all %d test examples: a constant supervisor; its "
                    "students' PGR measures moving off a constant (more weak_train examples or steps may help)",
                    k, len(y))
    out = gap_stats(y, frame["group"].astype(str).to_numpy()[rows], probs.get("weak"), probs.get("ceiling"), ids,
                    threshold, students={m: probs.get(f"student-{m}") for m in rec["students"]})
    blocks = {"weak": rec["weak"], "ceiling": rec["ceiling"], **{f"student-{m}": b for m, b in rec["students"].items()}}
    for k, b in blocks.items():
        if probs.get(k) is not None and isinstance(b.get("test"), dict):
            b["test"]["ece"] = stats.ece(y, probs[k])
    gap = stats.Interval(out["gap_acc"], out["gap_acc_lo"], out["gap_acc_hi"])
    for m, b in rec["students"].items():
        b.pop("pgr_auroc", None)
        ci = out["pgr_acc_ci"].get(m) or [float("nan")] * 2
        pgr = stats.Interval(_f(b.get("pgr_acc")), *ci)
        if stats.pgr_flag_reason(gap, pgr, threshold) is not None:
            b["pgr_acc"] = None
            ci = [None, None]
        b["pgr_acc_lo"], b["pgr_acc_hi"] = ci
    return out


# --------------------------------------------------------------------------- test predictions


@dataclass
class RunPreds:
    """A run's labelled predictions (read back from its folder)."""

    ids: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]
    groups: dict[str, np.ndarray]
    """split -> (n,) group of each example (its id when labels.parquet has no ``group``)."""
    probs: dict[str, dict[str, np.ndarray]]
    """stage ('weak', 'ceiling', 'student-<method>') -> split -> (n, K), rows in ``ids[split]`` order."""

    def right(self, stages: Sequence[str], split: str = "test") -> np.ndarray | None:
        """(n, len(stages)) correctness on ``split``, or None when a stage lacks predictions there."""
        cols = []
        for s in stages:
            p = self.probs.get(s, {}).get(split)
            if p is None:
                return None
            cols.append(np.argmax(p, 1) == self.labels[split])
        return np.stack(cols, axis=1)

    def grouped(self, stages: Sequence[str], split: str = "test") -> stats.GroupedRun | None:
        r = self.right(stages, split)
        return None if r is None else stats.group_sums(self.groups[split], r)


def _prob_cols(frame: pd.DataFrame) -> np.ndarray:
    cols = sorted((c for c in frame.columns if c.startswith("prob_")), key=lambda c: int(c[5:]))
    return frame[cols].to_numpy(dtype=float)


def load_predictions(run_dir: str | Path, splits: Sequence[str] | None = None) -> RunPreds | None:
    """The run's labelled predictions (of ``splits``; default all), or None when labels or the
    weak/ceiling files are missing.

    Labels (and groups) come from ``labels.parquet``, else from a ``label`` column of the
    predictions; runs written before groups were stored count each example as its own group.
    """
    run_dir = Path(run_dir)
    pred = run_dir / "predictions"
    files = {f.stem: f for f in sorted(pred.glob("*.parquet"))} if pred.is_dir() else {}
    if "weak" not in files or "ceiling" not in files:
        return None
    frames = {k: pd.read_parquet(f) for k, f in files.items()}
    if (run_dir / "labels.parquet").is_file():
        lab = pd.read_parquet(run_dir / "labels.parquet")
    else:
        with_label = [f for f in frames.values() if "label" in f.columns]
        if not with_label:
            return None
        lab = with_label[0][["id", "split", "label"]]
    lab_split = lab["split"].astype(str).to_numpy()
    lab_ids = lab["id"].astype(str).to_numpy(dtype=object)
    lab_groups = (lab["group"] if "group" in lab else lab["id"]).astype(str).to_numpy(dtype=object)
    ids, labels, groups = {}, {}, {}
    for split in dict.fromkeys(lab_split):
        if splits is not None and split not in splits:
            continue
        m = lab_split == split
        ids[split], labels[split], groups[split] = lab_ids[m], lab["label"].to_numpy(dtype=int)[m], lab_groups[m]
    probs: dict[str, dict[str, np.ndarray]] = {}
    for name, f in frames.items():
        f_split = f["split"].astype(str).to_numpy()
        f_ids = f["id"].astype(str).to_numpy(dtype=object)
        p = _prob_cols(f)
        per = {}
        for split, want in ids.items():
            rows = np.flatnonzero(f_split == split)
            pos = pd.Index(f_ids[rows]).get_indexer(want) if len(rows) else np.full(len(want), -1)
            if len(want) and (pos >= 0).all():
                per[split] = p[rows[pos]]
        probs[name] = per
    return RunPreds(ids, labels, groups, probs)


class Predictions:
    """Run folders' predictions, read once each (the aggregates of several tables share them)."""

    def __init__(self, root: str | Path | None, splits: Sequence[str] | None = ("test",)):
        self.root = Path(root) if root is not None else None
        self.splits = splits
        """The splits read (test is all the aggregates need; the report's diagnostics read all: None)."""
        self._cache: dict[str, RunPreds | None] = {}

    def get(self, run_id: str) -> RunPreds | None:
        if self.root is None:
            return None
        if run_id not in self._cache:
            self._cache[run_id] = load_predictions(self.root / run_id, self.splits)
        return self._cache[run_id]

    def grouped(self, run_ids: Sequence[str], stages: Sequence[str]) -> list[stats.GroupedRun] | None:
        """Every run's grouped test correctness of ``stages``, or None when one run lacks them."""
        out = []
        for r in run_ids:
            p = self.get(r)
            g = p.grouped(stages) if p is not None and "test" in p.labels else None
            if g is None:
                return None
            out.append(g)
        return out


def run_stats(rec: dict[str, Any], threshold: float = GAP_THRESHOLD, preds: Predictions | None = None
              ) -> dict[str, Any]:
    """The run's ``stats`` block: stored in run.json, else computed from its predictions (runs
    written before issue 14 or before the block's current version; ``preds`` reads them once).
    Without test labels: an older stored block (its rows have no PGR interval, so no PGR), else the
    gap alone, flagged for lack of an interval."""
    st = rec.get("stats")
    if isinstance(st, dict) and st.get("version") == STATS_VERSION:
        return st
    if not rec.get("_dir"):
        preds = None
    elif preds is not None and preds.root == Path(rec["_dir"]).parent:
        preds = preds.get(Path(rec["_dir"]).name)
    else:
        preds = load_predictions(rec["_dir"], ("test",))
    if preds is not None and "test" in preds.labels:
        t = "test"
        students = {m: preds.probs.get(f"student-{m}", {}).get(t) for m in rec["stages"]["students"]}
        return gap_stats(preds.labels[t], preds.groups[t], preds.probs["weak"].get(t), preds.probs["ceiling"].get(t),
                         preds.ids[t], threshold, students=students)
    if isinstance(st, dict) and st.get("version", 0) >= 1:  # its gap interval, but no PGR intervals
        return st
    w = rec["stages"]["weak"]["test"].get("acc")
    c = rec["stages"]["ceiling"]["test"].get("acc")
    gap = _f(c) - _f(w)
    return {"version": 0, "gap_acc": gap, "gap_acc_lo": None, "gap_acc_hi": None, "majority_acc": None,
            "flagged": True, "flag_reason": "no test labels to bound the gap", "test_ids": None, "pgr_acc_ci": {}}


def _f(x: Any) -> float:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else float("nan")


def _pgr(weak: float, w2s: float, ceiling: float) -> float:
    gap = ceiling - weak
    return (w2s - weak) / gap if math.isfinite(gap) and abs(gap) > 1e-12 else float("nan")


def apply_flags(table: pd.DataFrame, threshold: float = GAP_THRESHOLD) -> pd.DataFrame:
    """``flagged``, ``flag_reason`` and ``pgr_acc`` of per-run rows for ``threshold`` (fractions), by
    :func:`w2sgen.stats.pgr_flag_reason`: the stored gap interval and, where the table has them, the
    run's PGR bounds (``pgr_acc_lo`` / ``pgr_acc_hi``, NaN: unbounded) decide; the threshold can
    change. A flagged row's PGR and its bounds are NaN."""
    t = table.copy()
    raw = np.array([_pgr(w, s, c) for w, s, c in zip(t["weak_acc"], t["w2s_acc"], t["ceiling_acc"])], dtype=float)
    bounds = "pgr_acc_lo" in t and "pgr_acc_hi" in t
    lo = t["pgr_acc_lo"].to_numpy(dtype=float) if bounds else np.full(len(t), np.nan)
    hi = t["pgr_acc_hi"].to_numpy(dtype=float) if bounds else np.full(len(t), np.nan)
    reasons = [stats.pgr_flag_reason(stats.Interval(g, glo, ghi), stats.Interval(r, a, b) if bounds else None,
                                     threshold)
               for g, glo, ghi, r, a, b in zip(t["gap_acc"], t["gap_acc_lo"], t["gap_acc_hi"], raw, lo, hi)]
    t["flagged"] = np.array([r is not None for r in reasons], dtype=bool)
    t["flag_reason"] = reasons
    t["pgr_acc"] = np.where(t["flagged"], np.nan, raw)
    if bounds:
        t["pgr_acc_lo"] = np.where(t["flagged"], np.nan, lo)
        t["pgr_acc_hi"] = np.where(t["flagged"], np.nan, hi)
    return t


def runs_table(runs: list[dict[str, Any]], threshold: float = GAP_THRESHOLD, preds: Predictions | None = None
               ) -> pd.DataFrame:
    """One row per (run, method): ``run_id`` + TABLE_COLUMNS (+ ``flag_reason``, test ECEs, the test ids' hash).
    ``preds``: the directory's predictions, shared with later aggregates (old runs need them)."""
    rows = []
    for r in runs:
        st = r["stages"]
        w, c = st["weak"]["test"], st["ceiling"]["test"]
        rs = run_stats(r, threshold, preds)
        for method, b in st["students"].items():
            rows.append({
                "run_id": Path(r["_dir"]).name if r.get("_dir") else None,
                "task": r["task"]["name"], "weak": r["weak"]["name"], "strong": r["strong"]["name"],
                "mode": r["mode"], "method": method, "seed": r["seed"],
                "weak_acc": w.get("acc"), "ceiling_acc": c.get("acc"), "w2s_acc": b["test"].get("acc"),
                "gap_acc": rs.get("gap_acc"), "gap_acc_lo": rs.get("gap_acc_lo"), "gap_acc_hi": rs.get("gap_acc_hi"),
                **dict(zip(("pgr_acc_lo", "pgr_acc_hi"), (rs.get("pgr_acc_ci") or {}).get(method) or (None, None))),
                "weak_auroc": w.get("auroc"), "ceiling_auroc": c.get("auroc"), "w2s_auroc": b["test"].get("auroc"),
                "majority_acc": rs.get("majority_acc"), "uses_ground_truth": bool(b.get("uses_ground_truth", False)),
                "weak_ece": w.get("ece"), "ceiling_ece": c.get("ece"), "w2s_ece": b["test"].get("ece"),
                "test_ids": rs.get("test_ids"), "task_kind": r.get("task_kind", "classification"),
            })
    cols = ["run_id", *TABLE_COLUMNS, "flag_reason", "weak_ece", "ceiling_ece", "w2s_ece", "test_ids"]
    frame = pd.DataFrame(rows, columns=[c for c in cols if c not in ("flagged", "pgr_acc", "flag_reason")])
    for col in [*NUMERIC, "weak_ece", "ceiling_ece", "w2s_ece"]:
        if col in frame:
            frame[col] = pd.to_numeric(frame[col], errors="coerce").astype(float)
    frame["uses_ground_truth"] = frame["uses_ground_truth"].astype(bool)
    frame = apply_flags(frame, threshold)
    return frame[[c for c in cols if c in frame]].sort_values(KEYS, ignore_index=True)


# --------------------------------------------------------------------------- aggregates


@dataclass
class Cell:
    """The runs of one (task, weak, strong, mode) that carry every stage asked for, as moments."""

    moments: stats.Moments
    run_ids: list[str]
    grouped: bool
    """Whether the test noise was measured from the runs' predictions (else seeds alone)."""
    task: str = ""
    seeds: tuple[Any, ...] = ()
    """The seeds of the runs used, in order (the rows of ``acc``)."""
    acc: np.ndarray | None = None
    """(S, K) each seed's accuracies."""
    runs: list[stats.GroupedRun] | None = None
    """Each seed's grouped test correctness (None: not ``grouped``)."""


def cell_moments(rows: pd.DataFrame, columns: Sequence[str], stages: Sequence[str],
                 preds: Predictions | None) -> Cell:
    """The mean over seeds of ``columns`` (accuracies, one per stage name in ``stages``) of the
    rows of one cell (one row per seed), with the covariance of ``stats.seed_moments``."""
    rows = rows.sort_values("seed")
    acc = rows[list(columns)].to_numpy(dtype=float)
    ok = np.isfinite(acc).all(1)
    rows, acc = rows[ok], acc[ok]
    ids = [str(r) for r in rows["run_id"]] if "run_id" in rows else []
    grouped = preds.grouped(ids, stages) if preds is not None and ids and len(ids) == len(rows) else None
    if grouped is not None:  # the predictions' accuracies (identical to run.json's for a complete run)
        acc = np.stack([g.acc for g in grouped])
    task = str(rows["task"].iloc[0]) if len(rows) else ""
    return Cell(stats.seed_moments(acc, grouped), ids, grouped is not None, task, tuple(rows["seed"].tolist()), acc,
                grouped)


E3 = np.eye(3)
PGR_NUM, GAP = E3[2] - E3[0], E3[1] - E3[0]  # over (weak, ceiling, w2s)


def _cells(g: pd.DataFrame, columns: Sequence[str], stages: Sequence[str], preds: Predictions | None
           ) -> tuple[list[Cell], list[pd.DataFrame]]:
    """The cells of ``g`` (one per task, weak, strong, mode) as moments of ``columns``, and the rows
    each used (seeds with every column finite)."""
    cells, used = [], []
    for _, u in g.groupby(RUN_KEYS, sort=True):
        c = cell_moments(u, columns, stages, preds)
        if c.moments.n_seeds:
            cells.append(c)
            used.append(u[np.isfinite(u[list(columns)].to_numpy(dtype=float)).all(1)])
    return cells, used


def _pool(cells: list[Cell]) -> stats.Moments:
    """The mean over tasks of each task's mean over its cells (model pairs), each weighted equally.

    The cells of a task are correlated (within a seed they score the same test examples, and pairs
    with the same weak model share its floor): with the same seeds they are averaged seed by seed
    before the covariance is estimated (``stats.pool_seeds``); with different seeds their
    covariances are combined by the bound that holds whatever the correlation
    (``stats.combine(dependent=True)``). Tasks are independent (their own data and test sets)."""
    tasks: dict[str, list[Cell]] = {}
    for c in cells:
        tasks.setdefault(c.task, []).append(c)
    per_task = [_pool_task(cs) for cs in tasks.values()]
    return per_task[0] if len(per_task) == 1 else stats.combine(per_task)


def _pool_task(cells: list[Cell]) -> stats.Moments:
    """The mean of one task's cells with a covariance that holds across them (see ``_pool``)."""
    if len(cells) == 1:
        return cells[0].moments
    if all(c.seeds == cells[0].seeds and c.acc is not None for c in cells):
        runs = [c.runs for c in cells] if all(c.runs is not None for c in cells) else None
        return stats.pool_seeds([c.acc for c in cells], runs)
    return stats.combine([c.moments for c in cells], dependent=True)


def mark(method: str, gt: bool) -> str:
    """A method's name as printed: ``*`` appended when it reads ground truth."""
    return f"{method}{GT_MARK}" if gt else method


def summarize(table: pd.DataFrame, by: Sequence[str] = RUN_KEYS, preds: Predictions | None = None,
              threshold: float = GAP_THRESHOLD, level: float = LEVEL) -> pd.DataFrame:
    """One row per (``by``, method): means and the ratio-of-means PGR with 95% intervals.

    Within a row, each cell (task, weak, strong, mode) gives the mean over its seeds; several cells
    (``by`` coarser than a cell, e.g. ("task",) or ()) are averaged, the cells of a task with equal
    weight (their covariance estimated jointly, ``_pool``), then the tasks with equal weight
    (independent: ``stats.combine``). PGR = (w2s − weak)/(ceiling − weak) of those means with
    Fieller's interval; flagged (PGR and its bounds NaN) by ``stats.pgr_flag_reason``: the gap's
    interval includes 0, the gap is under ``threshold``, or the PGR interval is unbounded. The gap
    (``gap_interval``) is over the runs this method's aggregate uses, the seeds where its accuracies
    are finite: methods with the same runs show the same gap and flag, a method missing a run may
    not. ``preds`` (the runs' predictions) adds the test noise measured over groups; without it the
    seeds alone measure it. ``test_noise_only``: some cell has one seed. A row whose method has no
    run with every accuracy is flagged with that reason.
    """
    by = list(by)
    rows = []
    if not len(table):
        return pd.DataFrame(columns=[*by, *SUMMARY_COLUMNS[len(RUN_KEYS):]])
    keyed = table.assign(_all="all") if not by else table
    for key, g in keyed.groupby([*(by or ["_all"]), "method"], sort=True):
        key = key if isinstance(key, tuple) else (key,)
        method = key[-1]
        stages = ["weak", "ceiling", f"student-{method}"]
        cells, used = _cells(g, ["weak_acc", "ceiling_acc", "w2s_acc"], stages, preds)
        row: dict[str, Any] = dict(zip(by, key[:-1])) if by else {}
        row.update({"method": method, "n_seeds": int(sum(c.moments.n_seeds for c in cells)),
                    "n_cells": len(cells), "n_flagged_runs": int(g["flagged"].sum()) if "flagged" in g else 0,
                    "test_noise_only": any(c.moments.n_seeds < 2 for c in cells),
                    "uses_ground_truth": bool(g["uses_ground_truth"].any()) if "uses_ground_truth" in g else False})
        if "task_kind" in g:
            row["task_kind"] = ",".join(sorted(set(g["task_kind"].fillna("classification").astype(str))))
        for col in ("weak_auroc", "ceiling_auroc", "w2s_auroc", "majority_acc", "weak_ece", "ceiling_ece", "w2s_ece"):
            if col in g:
                row[col] = float(np.nanmean(g.groupby(RUN_KEYS)[col].mean())) if g[col].notna().any() else float("nan")
        if not cells:  # no run has every accuracy: nothing to show, and the reason says so
            nan = float("nan")
            row.update({c: nan for c in ("weak_acc", "ceiling_acc", "w2s_acc", "gap_acc", "gap_acc_lo", "gap_acc_hi",
                                         "pgr_acc", "pgr_acc_lo", "pgr_acc_hi")})
            row.update({"flagged": True, "flag_reason": "no run with weak, ceiling and w2s accuracies"})
            rows.append(row)
            continue
        m = _pool(cells)
        row.update(ratio_row(m, PGR_NUM, GAP, threshold, level, prefix="pgr_acc", gap=gap_interval(used, preds, level)))
        for name, c in (("weak_acc", E3[0]), ("ceiling_acc", E3[1]), ("w2s_acc", E3[2])):
            iv = stats.contrast_interval(m, c, level)
            row.update({name: iv.value, f"{name}_lo": iv.lo, f"{name}_hi": iv.hi})
        row["grouped"] = all(c.grouped for c in cells)
        rows.append(row)
    out = pd.DataFrame(rows)
    cols = [*by, *[c for c in SUMMARY_COLUMNS[len(RUN_KEYS):] if c in out], *[c for c in out if c not in SUMMARY_COLUMNS
                                                                             and c not in by]]
    return out[cols]


def gap_interval(units: list[pd.DataFrame], preds: Predictions | None, level: float = LEVEL) -> stats.Interval:
    """The gap ceiling − weak of ``units`` (cells' rows), pooled as the aggregates pool, from the weak
    and ceiling accuracies alone: methods whose aggregates use the same runs show the same gap and
    flag (``units`` holds the runs a method's aggregate uses, so a method that lacks a run's
    accuracy can show a different gap)."""
    cells = [cell_moments(u, ["weak_acc", "ceiling_acc"], ["weak", "ceiling"], preds) for u in units]
    cells = [c for c in cells if c.moments.n_seeds]
    if not cells:
        return stats.Interval(float("nan"), float("nan"), float("nan"))
    return stats.contrast_interval(_pool(cells), np.array([-1.0, 1.0]), level)


def ratio_row(m: stats.Moments, num: np.ndarray, den: np.ndarray, threshold: float, level: float,
              prefix: str, gap: stats.Interval | None = None) -> dict[str, Any]:
    """The gap (den·mean, or ``gap`` when given) with its interval and flag, and the ratio num/den
    with its Fieller interval (NaN with its bounds when flagged)."""
    gap = gap if gap is not None else stats.contrast_interval(m, den, level)
    r = stats.ratio_interval(m, num, den, level)
    reason = stats.pgr_flag_reason(gap, r, threshold)
    flagged = reason is not None
    nan = float("nan")
    return {"gap_acc": gap.value, "gap_acc_lo": gap.lo, "gap_acc_hi": gap.hi, "flagged": flagged,
            "flag_reason": reason, prefix: nan if flagged else r.value, f"{prefix}_lo": nan if flagged else r.lo,
            f"{prefix}_hi": nan if flagged else r.hi}


E4 = np.eye(4)  # (weak, ceiling, reference, method)


def compare(table: pd.DataFrame, reference: str = "xent", by: Sequence[str] = RUN_KEYS,
            preds: Predictions | None = None, threshold: float = GAP_THRESHOLD, level: float = LEVEL
            ) -> pd.DataFrame:
    """Each method against ``reference`` on the same runs, one row per (``by``, method).

    ΔPGR = (mean m − mean ref) / (mean ceiling − mean weak) over the runs that have both (Fieller
    interval; NaN when the gap is flagged) and Δacc = mean m − mean ref (t interval), means over
    seeds, then over the cells of a task and over tasks, each with equal weight. ``significant``: +1 / −1 when the
    interval of Δacc lies above / below 0, else 0.
    """
    by = list(by)
    rows = []
    if not len(table) or reference not in set(table["method"]):
        return pd.DataFrame(columns=[*by, "method", "reference", "runs", "delta_pgr", "delta_pgr_lo",
                                     "delta_pgr_hi", "delta_acc", "delta_acc_lo", "delta_acc_hi", "flagged",
                                     "significant", "uses_ground_truth"])
    keyed = table.assign(_all="all") if not by else table
    for key, g in keyed.groupby(by or ["_all"], sort=True):
        key = key if isinstance(key, tuple) else (key,)
        ref = g[g["method"] == reference]
        for method, gm in g[g["method"] != reference].groupby("method", sort=True):
            stages = ["weak", "ceiling", f"student-{reference}", f"student-{method}"]
            paired = gm.merge(ref[[*RUN_KEYS, "seed", "w2s_acc"]].rename(columns={"w2s_acc": "ref_acc"}),
                              on=[*RUN_KEYS, "seed"])
            cells, used = _cells(paired, ["weak_acc", "ceiling_acc", "ref_acc", "w2s_acc"], stages, preds)
            row: dict[str, Any] = dict(zip(by, key)) if by else {}
            row.update({"method": method, "reference": reference, "runs": int(sum(c.moments.n_seeds for c in cells)),
                        "uses_ground_truth": bool(gm["uses_ground_truth"].any()) if "uses_ground_truth" in gm
                        else False})
            if cells:
                m = _pool(cells)
                row.update(ratio_row(m, E4[3] - E4[2], E4[1] - E4[0], threshold, level, prefix="delta_pgr",
                                     gap=gap_interval(used, preds, level)))
                d = stats.contrast_interval(m, E4[3] - E4[2], level)
                row.update({"delta_acc": d.value, "delta_acc_lo": d.lo, "delta_acc_hi": d.hi,
                            "significant": int(d.lo > 0) - int(d.hi < 0) if np.isfinite(d.lo) else 0})
            rows.append(row)
    return pd.DataFrame(rows)


def ranking(cmp: pd.DataFrame, summary: pd.DataFrame, by: str = "task") -> pd.DataFrame:
    """Per method: over the rows of ``by`` (tasks), how often its Δacc interval against the
    reference lies above (won) / below (lost) 0, and how often its PGR (unflagged) is the highest
    (best). Methods that read ground truth are left out (they are not weak-to-strong)."""
    fair = summary[~summary["uses_ground_truth"].astype(bool)] if "uses_ground_truth" in summary else summary
    fair = fair[np.isfinite(fair["pgr_acc"].astype(float))] if len(fair) else fair
    best = fair.loc[fair.groupby(by)["pgr_acc"].idxmax()] if len(fair) else fair
    c = cmp[~cmp["uses_ground_truth"].astype(bool)] if len(cmp) else cmp
    rows = []
    for m in sorted(set(fair["method"]) | set(c["method"]) if len(c) else set(fair["method"])):
        gm = c[c["method"] == m] if len(c) else c
        rows.append({"method": m, "tasks": int(gm[by].nunique()) if len(gm) else 0,
                     "won": int((gm["significant"] > 0).sum()) if len(gm) else 0,
                     "lost": int((gm["significant"] < 0).sum()) if len(gm) else 0,
                     "best": int((best["method"] == m).sum()) if len(best) else 0})
    return pd.DataFrame(rows, columns=["method", "tasks", "won", "lost", "best"])


def run_intervals(preds: RunPreds, methods: Sequence[str], reference: str = "xent",
                  level: float = LEVEL) -> dict[str, dict[str, float]]:
    """Intervals over test groups of one run, per method: w2s accuracy and ΔPGR against ``reference``
    (when the run has it; Fieller); for the report's runs table (PGR's own: ``runs_table``)."""
    stages = ["weak", "ceiling", *[f"student-{m}" for m in methods]]
    run = preds.grouped(stages)
    if run is None:
        return {}
    m = stats.seed_moments(run.acc[None, :], [run])
    e = np.eye(len(stages))
    gap = e[1] - e[0]
    out = {}
    for j, name in enumerate(methods):
        c = e[2 + j]
        acc = stats.contrast_interval(m, c, level)
        row = {"w2s_acc_lo": acc.lo, "w2s_acc_hi": acc.hi}
        if reference in methods and name != reference:
            d = stats.ratio_interval(m, c - e[2 + list(methods).index(reference)], gap, level)
            row.update({"delta_pgr": d.value, "delta_lo": d.lo, "delta_hi": d.hi})
        out[name] = row
    for name, c in (("weak", e[0]), ("ceiling", e[1])):
        iv = stats.contrast_interval(m, c, level)
        for r in out.values():
            r.update({f"{name}_acc_lo": iv.lo, f"{name}_acc_hi": iv.hi})
    return out


# --------------------------------------------------------------------------- the old rule, for comparison


def mean_of_ratios(table: pd.DataFrame, by: Sequence[str] = RUN_KEYS, reference: str = "xent", n_boot: int = 2000,
                   seed: int = 0) -> pd.DataFrame:
    """The aggregation w2sgen used before issue 14, kept only to show what changed: per (``by``,
    method) the mean over runs of each run's own ratio (w2s − weak)/(ceiling − weak), flagged or
    not, with a percentile bootstrap over runs; and the mean of per-run ratio differences with the
    reference. Not for conclusions."""
    t = table.assign(raw_pgr=[_pgr(w, s, c) for w, s, c in zip(table["weak_acc"], table["w2s_acc"],
                                                                table["ceiling_acc"])])
    ref = t[t["method"] == reference][[*RUN_KEYS, "seed", "raw_pgr"]].rename(columns={"raw_pgr": "ref_pgr"})
    t = t.merge(ref, on=[*RUN_KEYS, "seed"], how="left")
    rows = []
    for key, g in t.groupby([*by, "method"], sort=True):
        key = key if isinstance(key, tuple) else (key,)
        p = stats.bootstrap(g["raw_pgr"].to_numpy(), "mean", n_boot, seed)
        d = stats.bootstrap((g["raw_pgr"] - g["ref_pgr"]).to_numpy(), "mean", n_boot, seed)
        rows.append({**dict(zip([*by, "method"], key)), "old_pgr": p.value, "old_pgr_lo": p.lo, "old_pgr_hi": p.hi,
                     "old_delta_pgr": d.value, "old_delta_lo": d.lo, "old_delta_hi": d.hi})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- text


def _pct(x: Any) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{100 * x:5.1f}"


def _iv(v: Any, lo: Any, hi: Any, pct: bool = True) -> str:
    if v is None or not np.isfinite(v):
        return "–"
    f = (lambda x: f"{100 * x:.1f}") if pct else (lambda x: f"{x:.2f}")
    b = f" [{f(lo)}, {f(hi)}]" if lo is not None and np.isfinite(lo) and np.isfinite(hi) else " [?]"
    return f(v) + b


def format_summary(summary: pd.DataFrame, threshold: float = GAP_THRESHOLD) -> str:
    """The summary table as text: accuracies in %, the gap and PGR with their 95% intervals, a flag.

    PGR is the ratio of the means over seeds; a flagged row shows no PGR ("flagged: <reason>").
    """
    if not len(summary):
        return "(no runs)"
    head = (f"{'task':<14} {'weak':<12} {'strong':<12} {'method':<16} {'seeds':>5} {'weak':>6} {'ceil':>6} "
            f"{'w2s':>6}  {'gap pts [95%]':<20} {'PGR [95%]':<22}")
    lines = [head, "-" * len(head)]
    gt = one_seed = False
    for r in summary.to_dict("records"):
        one = bool(r.get("test_noise_only"))
        one_seed |= one
        gt_row = bool(r.get("uses_ground_truth"))
        gt |= gt_row
        pgr = f"flagged: {r['flag_reason']}" if r.get("flagged") else _iv(r["pgr_acc"], r["pgr_acc_lo"],
                                                                          r["pgr_acc_hi"], pct=False)
        lines.append(f"{str(r['task']):<14} {str(r['weak']):<12} {str(r['strong']):<12} "
                     f"{mark(str(r['method']), gt_row):<16} {str(int(r['n_seeds'])) + ONE_SEED * one:>5} "
                     f"{_pct(r['weak_acc']):>6} "
                     f"{_pct(r['ceiling_acc']):>6} {_pct(r['w2s_acc']):>6}  "
                     f"{_iv(r['gap_acc'], r['gap_acc_lo'], r['gap_acc_hi']):<20} {pgr}")
    lines.append(f"PGR = (mean w2s − mean weak) / (mean ceiling − mean weak) over seeds; 95% intervals "
                 f"({stats.INTERVAL_METHOD}, bench/coverage.py). Flagged: the gap is under {100 * threshold:g} "
                 "points or its interval includes 0 (no PGR shown).")
    if one_seed:
        lines.append(f"{ONE_SEED} {ONE_SEED_NOTE}")
    if gt:
        lines.append(f"{GT_MARK} reads ground truth (not a weak-to-strong method; never ranked).")
    return "\n".join(lines)


def format_compare(cmp: pd.DataFrame) -> str:
    """:func:`compare`'s rows as text: each method against the reference on the same runs, Δ w2s accuracy
    in points and ΔPGR, each with its 95% interval, and whether the Δacc interval excludes 0."""
    if not len(cmp):
        return "(no paired runs)"
    lines = []
    for r in cmp.to_dict("records"):
        where = f"{r['task']}: " if "task" in r else ""
        if not np.isfinite(r.get("delta_acc", float("nan"))):
            lines.append(f"{where}{r['method']} − {r['reference']}: no paired runs")
            continue
        verdict = {1: "above", -1: "below"}.get(int(r["significant"]), "not told apart from")
        dpgr = (f"flagged: {r['flag_reason']}" if r.get("flagged") else
                _iv(r["delta_pgr"], r["delta_pgr_lo"], r["delta_pgr_hi"], pct=False))
        gap = _iv(r.get("gap_acc"), r.get("gap_acc_lo"), r.get("gap_acc_hi"))
        lines.append(f"{where}{r['method']} − {r['reference']} on the same {int(r['runs'])} runs: "
                     f"Δ w2s {_iv(r['delta_acc'], r['delta_acc_lo'], r['delta_acc_hi'])} pts, ΔPGR {dpgr} "
                     f"(gap {gap} pts): {r['method']} is {verdict} {r['reference']} at 95%")
    return "\n".join(lines)


def check_threshold(points: float) -> float:
    """``--gap-threshold`` in points -> a fraction (W2SError for a negative or absurd value)."""
    if not (isinstance(points, (int, float)) and 0 <= points < 100):
        raise W2SError(f"--gap-threshold {points}: use accuracy points between 0 and 100 (default 2)")
    return float(points) / 100
