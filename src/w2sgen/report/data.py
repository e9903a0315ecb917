"""Everything a report needs from a results directory: per-run rows with bootstrap intervals,
ECE, the small-gap flag, diagnostics, training curves and configs.

Labels come from ``<run>/labels.parquet`` (written by ``w2sgen.run``) or a ``label`` column of
the predictions; a run without them keeps its recorded metrics but gets no intervals, ECE or
prediction-level diagnostics (the report says so).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import stats
from ..store.results import TABLE_COLUMNS, read_runs, runs_table

STOP_KEYS = ("best_epoch", "stopped_epoch", "stop_epoch", "early_stop_epoch")


@dataclass
class StagePreds:
    """Probabilities of one stage on one split, aligned to the split's labelled ids."""

    probs: dict[str, np.ndarray]
    """split -> (N, K), rows in the order of ``RunPreds.ids[split]``."""


@dataclass
class RunPreds:
    ids: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]
    stages: dict[str, StagePreds]
    """'weak', 'ceiling', 'student-<method>'."""


@dataclass
class ReportData:
    root: Path
    records: list[dict[str, Any]]
    table: pd.DataFrame
    """One row per (run, method): TABLE_COLUMNS + run_id, ECEs, intervals, flag, diagnostics."""
    curves: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    n_boot: int = stats.N_BOOT
    threshold: float = stats.GAP_THRESHOLD


def _probs(frame: pd.DataFrame) -> np.ndarray:
    cols = sorted((c for c in frame.columns if c.startswith("prob_")), key=lambda c: int(c[5:]))
    return frame[cols].to_numpy(dtype=float)


def load_predictions(run_dir: Path) -> RunPreds | None:
    """The run's labelled predictions, or None when labels or the weak/ceiling files are missing."""
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
    ids, labels, stages = {}, {}, {}
    for split, g in lab.groupby("split"):
        ids[split] = g["id"].astype(str).to_numpy()
        labels[split] = g["label"].to_numpy(dtype=int)
    for name, f in frames.items():
        per = {}
        for split, want in ids.items():
            g = f[f["split"] == split].assign(id=lambda x: x["id"].astype(str)).set_index("id")
            if len(g) and pd.Index(want).isin(g.index).all():
                per[split] = _probs(g.loc[want])
        stages[name] = StagePreds(per)
    return RunPreds(ids, labels, stages)


def _stop_epoch(train: dict[str, Any]) -> int | None:
    for k in STOP_KEYS:
        v = train.get(k)
        if isinstance(v, (int, float)) and v is not None:
            return int(v)
    return None


def collect(root: str | Path, n_boot: int = stats.N_BOOT, seed: int = 0, threshold: float = stats.GAP_THRESHOLD,
            reference: str = "xent") -> ReportData:
    """Read every run of ``root`` and compute per-run statistics (see ``w2sgen.stats``)."""
    root = Path(root)
    records = read_runs(root)
    notes: list[str] = []
    rows: list[dict[str, Any]] = []
    curves: list[dict[str, Any]] = []
    unlabelled = []
    for rec in records:
        run_dir = Path(rec["_dir"])
        base = runs_table([rec])
        preds = load_predictions(run_dir)
        if preds is None or "test" not in preds.labels:
            unlabelled.append(run_dir.name)
        extra = _run_stats(rec, preds, n_boot, seed, threshold, reference)
        for r in base.to_dict("records"):
            rows.append({"run_id": run_dir.name, **r, **extra.get(r["method"], {})})
        curves.extend(_curves(run_dir.name, rec))
    if unlabelled:
        notes.append(f"{len(unlabelled)} run(s) have no test labels next to their predictions (e.g. "
                     f"{unlabelled[0]}): no intervals, ECE or diagnostics for them; rerun them to add labels.")
    table = pd.DataFrame(rows)
    if not len(table):
        table = pd.DataFrame(columns=["run_id", *TABLE_COLUMNS, "flagged"])
    if "flagged" not in table:
        table["flagged"] = False
    gap = table["ceiling_acc"] - table["weak_acc"]
    table["gap"] = table["gap"].fillna(gap) if "gap" in table else gap
    # runs without a bootstrap are flagged on the threshold alone
    table["flagged"] = table["flagged"].astype(object).where(table["flagged"].notna(), table["gap"] < threshold)
    table["flagged"] = table["flagged"].astype(bool)
    return ReportData(root, records, table, curves, notes, n_boot, threshold)


def _run_stats(rec: dict[str, Any], preds: RunPreds | None, n_boot: int, seed: int, threshold: float,
               reference: str) -> dict[str, dict[str, Any]]:
    """Per-method extras of one run: intervals, flag, ECE, imitation and misfit."""
    methods = list(rec["stages"]["students"])
    if preds is None or "test" not in preds.labels:
        return {}
    y = preds.labels["test"]
    test = {k: v.probs.get("test") for k, v in preds.stages.items()}
    if test.get("weak") is None or test.get("ceiling") is None:
        return {}
    right = {k: np.argmax(p, axis=1) == y for k, p in test.items() if p is not None}
    students = {m: right[f"student-{m}"] for m in methods if f"student-{m}" in right}
    boot = stats.bootstrap_run(right["weak"], right["ceiling"], students, n_boot, seed, reference=reference)
    flagged = stats.small_gap(boot.gap, threshold)
    common = {"gap": boot.gap.value, "gap_lo": boot.gap.lo, "gap_hi": boot.gap.hi, "flagged": flagged,
              "weak_acc_lo": boot.weak_acc.lo, "weak_acc_hi": boot.weak_acc.hi,
              "ceiling_acc_lo": boot.ceiling_acc.lo, "ceiling_acc_hi": boot.ceiling_acc.hi,
              "weak_ece": stats.ece(y, test["weak"]), "ceiling_ece": stats.ece(y, test["ceiling"])}
    out = {}
    transfer_w = preds.stages["weak"].probs.get("transfer")
    for m in methods:
        key = f"student-{m}"
        if key not in right:
            continue
        row = dict(common)
        row.update({"w2s_acc_lo": boot.w2s_acc[m].lo, "w2s_acc_hi": boot.w2s_acc[m].hi,
                    "pgr_lo": boot.pgr[m].lo, "pgr_hi": boot.pgr[m].hi, "w2s_ece": stats.ece(y, test[key])})
        if m in boot.delta_pgr:
            d = boot.delta_pgr[m]
            row.update({"delta_pgr": d.value, "delta_lo": d.lo, "delta_hi": d.hi})
        row.update(stats.imitation(y, test["weak"], test[key]))
        transfer_s = preds.stages[key].probs.get("transfer")
        if transfer_w is not None and transfer_s is not None:
            row.update(stats.misfit(transfer_w, transfer_s))
        row["gain_acc"] = float(right[key].mean() - right["weak"].mean())
        row["gain_xent"] = _xent(y, test["weak"]) - _xent(y, test[key])
        out[m] = row
    return out


def _xent(y: np.ndarray, p: np.ndarray) -> float:
    """Test cross-entropy −(1/N) Σ log p_{i, y_i}."""
    return float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], 1e-7, 1.0))))


def _curves(run_id: str, rec: dict[str, Any]) -> list[dict[str, Any]]:
    st = rec["stages"]
    blocks = {"weak": st["weak"], "ceiling": st["ceiling"], **{f"student-{m}": b for m, b in st["students"].items()}}
    out = []
    for name, b in blocks.items():
        losses = [float("nan") if v is None else float(v) for v in (b.get("losses") or [])]
        if losses:
            out.append({"run_id": run_id, "stage": name, "losses": losses,
                        "stop": _stop_epoch(b.get("train") or {})})
    return out
