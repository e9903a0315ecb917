"""Run records on disk: ``OUT/<run>/run.json`` + ``predictions/<stage>.parquet``, and the tidy table."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import W2SError
from .atomic import atomic_write_json

TABLE_COLUMNS = ["task", "weak", "strong", "mode", "method", "seed", "weak_acc", "ceiling_acc", "w2s_acc",
                 "weak_auroc", "ceiling_auroc", "w2s_auroc", "pgr_acc", "pgr_auroc"]


def safe_name(name: str) -> str:
    """A path component that cannot escape its directory: [A-Za-z0-9._-] only, starting with a letter
    or digit (no ``.``/``..``, no hidden or option-like names), at most 80 characters. A longer name
    keeps its first 71 characters and gains a hash of the whole name, so long paths stay distinct."""
    s = re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).lstrip("._-").rstrip("._") or "x"
    if len(s) > 80:
        import hashlib

        s = f"{s[:71]}-{hashlib.sha256(str(name).encode('utf-8', 'surrogatepass')).hexdigest()[:8]}"
    return s


def run_dir_name(task: str, weak: str, strong: str, mode: str, seed: int) -> str:
    return "__".join(safe_name(x) for x in (task, weak, strong, mode, f"seed{seed}"))


def write_run(out: Path, name: str, record: dict[str, Any], stage_dirs: dict[str, Path],
              frames: dict[str, pd.DataFrame] | None = None) -> Path:
    """Write one run's folder atomically: built in a hidden sibling and renamed into place.

    ``stage_dirs`` maps a stage to its predictions file (copied); ``frames`` maps a stage to
    predictions held in memory. A failed write (full disk, unwritable directory) raises a
    W2SError naming the folder and leaves neither a partial folder nor a temporary file.
    """
    import os
    import tempfile
    import uuid

    from ..safety import writing

    out = Path(out)
    d = out / name
    with writing("results directory", out):
        out.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=out, prefix=f".{name}."))
        try:
            pred = tmp / "predictions"
            pred.mkdir()
            for stage, src in stage_dirs.items():
                shutil.copyfile(src, pred / f"{safe_name(stage)}.parquet")
            for stage, frame in (frames or {}).items():
                frame.to_parquet(pred / f"{safe_name(stage)}.parquet", index=False)
            atomic_write_json(tmp / "run.json", _clean(record))  # a complete folder has run.json
            old = None
            if d.exists():  # a rerun replaces the previous folder
                old = out / f".{name}.old-{uuid.uuid4().hex[:8]}"
                os.replace(d, old)
            os.replace(tmp, d)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return d


def _clean(x: Any) -> Any:
    """JSON-safe: NaN/inf become null."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    return x


def read_runs(root: str | Path) -> list[dict[str, Any]]:
    root = Path(root)
    if not root.is_dir():
        raise W2SError(f"{root}: no such results directory")
    runs = []
    for f in sorted(root.glob("*/run.json")):
        if f.parent.name.startswith("."):  # a run folder being written or replaced
            continue
        try:
            rec = json.loads(f.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise W2SError(f"{f}: unreadable run record ({e}); delete that run folder and rerun it") from None
        rec["_dir"] = str(f.parent)
        runs.append(rec)
    return runs


def runs_table(runs: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per (task, weak, strong, mode, method, seed); accuracies and AUROCs are fractions."""
    rows = []
    for r in runs:
        w = r["stages"]["weak"]["test"]
        c = r["stages"]["ceiling"]["test"]
        for method, st in r["stages"]["students"].items():
            rows.append({
                "task": r["task"]["name"], "weak": r["weak"]["name"], "strong": r["strong"]["name"],
                "mode": r["mode"], "method": method, "seed": r["seed"],
                "weak_acc": w["acc"], "ceiling_acc": c["acc"], "w2s_acc": st["test"]["acc"],
                "weak_auroc": w["auroc"], "ceiling_auroc": c["auroc"], "w2s_auroc": st["test"]["auroc"],
                "pgr_acc": st["pgr_acc"], "pgr_auroc": st["pgr_auroc"],
            })
    frame = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    for col in TABLE_COLUMNS[6:]:
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype(float)
    return frame.sort_values(["task", "weak", "strong", "mode", "method", "seed"], ignore_index=True)


def summary_table(table: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation over seeds for each (task, weak, strong, mode, method)."""
    keys = ["task", "weak", "strong", "mode", "method"]
    vals = ["weak_acc", "ceiling_acc", "w2s_acc", "pgr_acc", "pgr_auroc"]
    g = table.groupby(keys, sort=True)[vals]
    mean = g.mean().add_suffix("_mean")
    std = g.std(ddof=1).fillna(0.0).add_suffix("_std")
    n = g.size().rename("seeds")
    return pd.concat([mean, std, n], axis=1).reset_index()


SMALL_GAP = 0.02
"""A ceiling − weak accuracy gap below this (2 points) makes PGR unreliable (see stats.py)."""


def format_summary(summary: pd.DataFrame) -> str:
    """The demo's table: weak / ceiling / w2s accuracy and PGR as mean ± sd over seeds.

    A PGR whose mean gap (ceiling − weak) is under 2 points, or negative, is marked with ``*``.
    """
    lines = []
    flagged = False
    head = f"{'task':<12} {'weak':<12} {'strong':<12} {'method':<10} {'seeds':>5}  {'weak acc':>14} {'ceiling acc':>14} {'w2s acc':>14} {'PGR (acc)':>14}"
    lines.append(head)
    lines.append("-" * len(head))
    for r in summary.itertuples(index=False):
        def pm(m, s, pct=True):
            if m != m:
                return "n/a"
            return f"{100 * m:5.1f} ± {100 * s:4.1f}%" if pct else f"{m:5.2f} ± {s:4.2f}"
        small = not (r.ceiling_acc_mean - r.weak_acc_mean >= SMALL_GAP)
        flagged |= small
        pgr = pm(r.pgr_acc_mean, r.pgr_acc_std, pct=False) + ("*" if small else "")
        lines.append(
            f"{r.task:<12} {r.weak:<12} {r.strong:<12} {r.method:<10} {r.seeds:>5}  "
            f"{pm(r.weak_acc_mean, r.weak_acc_std):>14} {pm(r.ceiling_acc_mean, r.ceiling_acc_std):>14} "
            f"{pm(r.w2s_acc_mean, r.w2s_acc_std):>14} {pgr:>14}"
        )
    if flagged:
        lines.append("* unreliable PGR: the ceiling is less than 2 points above the weak model (or below it)")
    return "\n".join(lines)
