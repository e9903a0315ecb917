"""Everything a report needs from a results directory: per-run rows with intervals over test groups,
ECE, the small-gap flag, diagnostics, training curves and configs.

Numbers, intervals and flags come from :mod:`w2sgen.aggregate` (the same as ``w2s results`` and the
benches). Labels come from ``<run>/labels.parquet`` (written by ``w2sgen.run``) or a ``label``
column of the predictions; a run without them keeps its recorded metrics but gets no intervals, ECE
or prediction-level diagnostics, and is flagged (its gap cannot be bounded); the report says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import aggregate, stats
from ..aggregate import Predictions, RunPreds
from ..store.results import read_runs


@dataclass
class ReportData:
    root: Path
    records: list[dict[str, Any]]
    table: pd.DataFrame
    """One row per (run, method): aggregate.runs_table + intervals over test groups, ECEs, diagnostics."""
    curves: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    n_boot: int = stats.N_BOOT
    threshold: float = stats.GAP_THRESHOLD
    preds: Predictions | None = None
    """The runs' predictions (read once; the aggregates use them for the test noise)."""


def collect(root: str | Path, n_boot: int = stats.N_BOOT, seed: int = 0, threshold: float = stats.GAP_THRESHOLD,
            reference: str = "xent") -> ReportData:
    """Read every run of ``root`` and compute per-run statistics (see ``w2sgen.aggregate``)."""
    root = Path(root)
    records = read_runs(root)
    preds = Predictions(root, splits=None)  # transfer too: the misfit diagnostic
    notes: list[str] = []
    rows: list[dict[str, Any]] = []
    curves: list[dict[str, Any]] = []
    unlabelled = []
    base = aggregate.runs_table(records, threshold, preds)
    for rec in records:
        run_id = Path(rec["_dir"]).name
        p = preds.get(run_id)
        if p is None or "test" not in p.labels:
            unlabelled.append(run_id)
        extra = _run_extras(rec, p, reference)
        for r in base[base["run_id"] == run_id].to_dict("records"):
            rows.append({**r, **{k: v for k, v in extra.get(r["method"], {}).items()
                                 if k not in r or not np.isfinite(_num(r[k]))}})
        curves.extend(_curves(run_id, rec))
    if unlabelled:
        notes.append(f"{len(unlabelled)} run(s) have no test labels next to their predictions (e.g. "
                     f"{unlabelled[0]}): no intervals, ECE or diagnostics for them, and they are flagged (their "
                     "gap cannot be bounded); rerun them to add labels.")
    table = pd.DataFrame(rows) if rows else base.iloc[:0].copy()
    table["flagged"] = table["flagged"].astype(bool)
    table["gap"] = table["gap_acc"]  # the runs table's column
    return ReportData(root, records, table, curves, notes, n_boot, threshold, preds)


def _num(x: Any) -> float:
    return float(x) if isinstance(x, (int, float, np.floating)) and not isinstance(x, bool) else float("nan")


def _run_extras(rec: dict[str, Any], preds: RunPreds | None, reference: str) -> dict[str, dict[str, Any]]:
    """Per-method extras of one run: intervals over test groups, ECE, imitation and misfit."""
    if rec.get("task_kind") == "generation":  # answers and verdicts, not probabilities
        from ..generation.report import run_extras

        return run_extras(rec, preds, reference)
    methods = list(rec["stages"]["students"])
    if preds is None or "test" not in preds.labels:
        return {}
    y = preds.labels["test"]
    test = {k: v.get("test") for k, v in preds.probs.items()}
    if test.get("weak") is None or test.get("ceiling") is None:
        return {}
    present = [m for m in methods if test.get(f"student-{m}") is not None]
    ivs = aggregate.run_intervals(preds, present, reference)
    common = {"weak_ece": stats.ece(y, test["weak"]), "ceiling_ece": stats.ece(y, test["ceiling"])}
    transfer_w = preds.probs["weak"].get("transfer")
    out = {}
    for m in present:
        key = f"student-{m}"
        row = {**common, **ivs.get(m, {}), "w2s_ece": stats.ece(y, test[key])}
        row.update(stats.imitation(y, test["weak"], test[key]))
        transfer_s = preds.probs[key].get("transfer")
        if transfer_w is not None and transfer_s is not None:
            row.update(stats.misfit(transfer_w, transfer_s))
        right_s = np.argmax(test[key], 1) == y
        right_w = np.argmax(test["weak"], 1) == y
        row["gain_acc"] = float(right_s.mean() - right_w.mean())
        row["gain_xent"] = _xent(y, test["weak"]) - _xent(y, test[key])
        out[m] = row
    return out


def _xent(y: np.ndarray, p: np.ndarray) -> float:
    """Test cross-entropy −(1/N) Σ log p_{i, y_i}."""
    return float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], 1e-7, 1.0))))


def chosen_point(train: dict[str, Any], unit: str) -> int | None:
    """The step (``unit="step"``) or epoch (``"epoch"``) whose weights a stage kept: early stopping's
    ``train.early_stop.selected`` (counted from 1); None when the stage records no choice."""
    es = train.get("early_stop")
    sel = es.get("selected") if isinstance(es, dict) else None
    if not isinstance(sel, dict):
        return None
    v = sel.get(unit)
    return int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _curves(run_id: str, rec: dict[str, Any]) -> list[dict[str, Any]]:
    """Each stage's training-loss curve. Probe heads log a loss per epoch; finetuned models per
    optimizer step (``mode: finetune``): ``unit`` says which, and ``stop`` is the kept point on it."""
    st = rec["stages"]
    unit = "step" if rec.get("mode") == "finetune" else "epoch"
    blocks = {"weak": st["weak"], "ceiling": st["ceiling"], **{f"student-{m}": b for m, b in st["students"].items()}}
    out = []
    for name, b in blocks.items():
        losses = [float("nan") if v is None else float(v) for v in (b.get("losses") or [])]
        if losses:
            out.append({"run_id": run_id, "stage": name, "losses": losses, "unit": unit,
                        "stop": chosen_point(b.get("train") or {}, unit)})
    return out
