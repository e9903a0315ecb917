"""``w2s report DIR``: statistics, plots (PNG + SVG) and one self-contained HTML page."""

from __future__ import annotations

import html as _html
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .. import aggregate, stats
from ..aggregate import GT_MARK
from ..errors import W2SError

__all__ = ["ReportInfo", "build_report"]


@dataclass
class ReportInfo:
    path: Path
    bytes: int
    seconds: float
    plots: list[Path] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    runs: int = 0


def build_report(root: str | Path, output: str | Path | None = None, plots_dir: str | Path | None = None,
                 n_boot: int = stats.N_BOOT, threshold: float = stats.GAP_THRESHOLD,
                 reference: str = "xent", seed: int = 0) -> ReportInfo:
    """Write the report of results directory ``root`` to ``output`` (default ``root/report.html``)
    and its plots to ``plots_dir`` (default ``plots/`` next to the report). ``n_boot``: resamples
    of the descriptive bootstraps (agreement bars, correlation); the PGR intervals are analytic."""
    from ..store.atomic import atomic_write_text
    from . import html, plots
    from .data import collect

    t0 = time.time()
    root = Path(root)
    if not root.is_dir():
        raise W2SError(f"{root}: no such results directory")
    if n_boot < 10:
        raise W2SError(f"--n-boot {n_boot}: use at least 10 resamples (1000 is the default)")
    out = Path(output) if output else root / "report.html"
    pdir = Path(plots_dir) if plots_dir else out.parent / "plots"
    data = collect(root, n_boot=n_boot, seed=seed, threshold=threshold, reference=reference)
    if not data.records:
        raise W2SError(f"{root}: no runs (no */run.json); run `w2s run ... --out {root}` first")
    rendered = plots.render(data, pdir)
    sections = _sections(data, rendered, reference, n_boot, seed)
    header = _header(data)
    doc = html.page(f"w2sgen report — {root.resolve().name}", sections, header)
    atomic_write_text(out, doc)
    _readable(out, *(f for p in rendered for f in p.files))
    files = [f for p in rendered for f in p.files]
    return ReportInfo(out, out.stat().st_size, time.time() - t0, files,
                      {p.name: p.note for p in rendered if not p.png}, len(data.records))


def _readable(*paths: Path) -> None:
    """Atomic writes create 0600 files; a report is meant to be shared: 0666 & ~umask."""
    import os

    mask = os.umask(0)
    os.umask(mask)
    for p in paths:
        os.chmod(p, 0o666 & ~mask)


def _header(data) -> str:
    esc = _html.escape
    t = data.table
    n_flag = int(t.drop_duplicates("run_id")["flagged"].sum()) if len(t) else 0
    notes = "".join(f'<div class="note">{esc(n)}</div>' for n in data.notes)
    gt = sorted(t[t["uses_ground_truth"]]["method"].unique()) if len(t) else []
    gt_note = (f' Methods marked {GT_MARK} ({esc(", ".join(gt))}) read ground truth: they are not weak-to-strong '
               "methods and are never ranked.") if gt else ""
    return (f"<p>{len(data.records)} run(s) in <code>{esc(str(data.root.resolve()))}</code>; "
            f"{t['task'].nunique()} task(s), {t[['weak', 'strong']].drop_duplicates().shape[0]} model pair(s), "
            f"methods {esc(', '.join(sorted(t['method'].unique())))}. PGR = (mean w2s − mean weak) / (mean "
            "ceiling − mean weak): a ratio of means over seeds (and over model pairs and tasks, each weighted "
            f"equally). Intervals are 95%: over test groups within a run; over seeds and test groups for "
            f"aggregates ({stats.INTERVAL_METHOD}, chosen by simulation: bench/coverage.py). A PGR is flagged "
            f"<i>unreliable</i>, and not shown, when ceiling − weak &lt; {100 * data.threshold:g} points or its "
            f"interval includes 0: {n_flag} run(s) flagged. A flagged run still counts in its aggregate (leaving "
            f"it out would bias the aggregate), which has its own gap and flag.{gt_note} "
            f"Generated {time.strftime('%Y-%m-%d %H:%M')}.</p>{notes}")


PCT_COLS = {"weak_acc", "ceiling_acc", "w2s_acc", "weak_auroc", "ceiling_auroc", "w2s_auroc", "gap", "gap_acc",
            "weak_ece", "ceiling_ece", "w2s_ece", "agreement_weak_right", "agreement_weak_wrong", "majority_acc",
            "fixed", "fixed_of_wrong", "broken", "delta_acc"}
INTERVALS = {"gap_acc": ("gap_acc_lo", "gap_acc_hi"), "pgr_acc": ("pgr_acc_lo", "pgr_acc_hi"),
             "w2s_acc": ("w2s_acc_lo", "w2s_acc_hi"), "delta_pgr": ("delta_pgr_lo", "delta_pgr_hi"),
             "delta_acc": ("delta_acc_lo", "delta_acc_hi")}


def _marked(frame: pd.DataFrame) -> pd.DataFrame:
    """``method`` with ``*`` for methods that read ground truth; flag reasons where PGR is not shown."""
    f = frame.copy()
    if "uses_ground_truth" in f:
        f["method"] = [aggregate.mark(m, bool(g)) for m, g in zip(f["method"], f["uses_ground_truth"])]
    return f


def summary_tables(t: pd.DataFrame, preds, threshold: float, reference: str) -> dict[str, pd.DataFrame]:
    """The report's aggregates, all from :mod:`w2sgen.aggregate`: per task (over model pairs), over all
    tasks, per model pair (over seeds), the comparison against ``reference`` and the ranking."""
    per_task = aggregate.summarize(t, by=("task",), preds=preds, threshold=threshold)
    out = {"cells": aggregate.summarize(t, preds=preds, threshold=threshold)}
    if t["task"].nunique() > 1:
        overall = aggregate.summarize(t, by=(), preds=preds, threshold=threshold).assign(task="all tasks")
        per_task = pd.concat([per_task, overall], ignore_index=True)
    out["summary"] = per_task
    cmp = aggregate.compare(t, reference, by=("task",), preds=preds, threshold=threshold)
    if t["task"].nunique() > 1 and len(cmp):
        cmp = pd.concat([cmp, aggregate.compare(t, reference, by=(), preds=preds, threshold=threshold)
                         .assign(task="all tasks")], ignore_index=True)
    out["compare"] = cmp
    tasks_only = per_task[per_task["task"] != "all tasks"]
    out["ranking"] = aggregate.ranking(cmp[cmp["task"] != "all tasks"] if len(cmp) else cmp, tasks_only)
    return out


def _sections(data, rendered, reference: str, n_boot: int, seed: int) -> list[tuple[str, str, str]]:
    from .html import configs, figure, table

    t = data.table
    agg = summary_tables(t, data.preds, data.threshold, reference)
    out = []
    pgr_cell = {"pgr_acc": "flag_reason"}  # a flagged PGR shows why instead of a number

    one_seed = _one_seed_note(agg["summary"])
    cols = [("task", "task"), ("method", "method"), ("n_cells", "model pairs"), ("n_seeds", "runs"),
            ("test_noise_only", f"1 seed {aggregate.ONE_SEED}"), ("n_flagged_runs", "flagged runs"), ("weak_acc", "weak acc %"), ("ceiling_acc", "ceiling acc %"),
            ("w2s_acc", "w2s acc %"), ("gap_acc", "gap pts"), ("pgr_acc", "PGR"), ("majority_acc", "majority %"),
            ("weak_auroc", "weak AUROC %"), ("w2s_auroc", "w2s AUROC %"), ("ceiling_auroc", "ceiling AUROC %"),
            ("w2s_ece", "w2s ECE %")]
    out.append(("summary", "Summary: PGR per task",
                "<p>Per task: means over seeds, then over model pairs (equal weight); PGR is the ratio of those "
                "means, with its 95% interval (Fieller; seeds and test groups). <i>flagged</i>: the gap is under "
                "the threshold or its interval includes 0, so no PGR. Majority: the accuracy of always answering "
                "the most frequent test class.</p>" + one_seed
                + table(_marked(agg["summary"]), cols, PCT_COLS, INTERVALS, flag_col="flagged", reasons=pgr_cell)))

    cmp = agg["compare"]
    if len(cmp):
        cols = [("task", "task"), ("method", "method"), ("reference", "vs"), ("runs", "paired runs"),
                ("delta_acc", "Δacc pts"), ("delta_pgr", "ΔPGR"), ("gap_acc", "gap pts")]
        rk = agg["ranking"]
        body = (f"<p>ΔPGR = (mean method − mean {aggregate.mark(reference, False)}) / (mean ceiling − mean weak) "
                "on the same runs, and Δacc = mean method − mean reference, with 95% intervals over seeds and "
                "test groups. A method wins (loses) a task when its Δacc interval lies above (below) 0.</p>"
                + table(_marked(cmp), cols, PCT_COLS, INTERVALS, flag_col="flagged",
                        reasons={"delta_pgr": "flag_reason"})
                + "<p>Ranking (methods that read ground truth are left out): tasks won and lost against "
                f"{reference}, and tasks where the method has the highest unflagged PGR. It compares "
                f"{max(len(rk), 1)} method(s) against {reference} with no correction for multiple comparisons: each "
                "interval is a 95% interval on its own, so under no effect about 2.5% of the methods win a task by "
                "chance.</p>"
                + table(rk, [("method", "method"), ("tasks", "tasks"), ("won", "won"), ("lost", "lost"),
                             ("best", "best PGR")]))
    else:
        body = f'<div class="note">No paired comparison: the runs lack {reference} or a second method.</div>'
    out.append(("compare", f"Methods against {reference}", body))

    cols = [("run_id", "run"), ("method", "method"), ("weak_acc", "weak %"), ("ceiling_acc", "ceiling %"),
            ("w2s_acc", "w2s %"), ("gap", "gap pts"), ("pgr_acc", "PGR"), ("flagged", "unreliable"),
            ("delta_pgr", f"ΔPGR vs {reference}"), ("w2s_auroc", "w2s AUROC %"),
            ("weak_ece", "weak ECE %"), ("ceiling_ece", "ceiling ECE %"), ("w2s_ece", "w2s ECE %")]
    iv = {"weak_acc": ("weak_acc_lo", "weak_acc_hi"), "ceiling_acc": ("ceiling_acc_lo", "ceiling_acc_hi"),
          "w2s_acc": ("w2s_acc_lo", "w2s_acc_hi"), "gap": ("gap_acc_lo", "gap_acc_hi"), "pgr_acc": ("pgr_acc_lo", "pgr_acc_hi"),
          "delta_pgr": ("delta_lo", "delta_hi")}
    runs = t.assign(delta_pgr=t["delta_pgr"].where(~t["flagged"])) if "delta_pgr" in t else t
    out.append(("runs", "Runs", "<p>One row per run and method; intervals are over the test set's groups (the "
                "run's models fixed); grey rows are flagged (small or uncertain gap): no PGR.</p>"
                + table(_marked(runs), [c for c in cols if c[0] in t], PCT_COLS, iv, flag_col="flagged",
                        reasons={"pgr_acc": "flag_reason"})))

    cols = [("task", "task"), ("weak", "weak"), ("strong", "strong"), ("mode", "mode"), ("method", "method"),
            ("n_seeds", "seeds"), ("test_noise_only", f"1 seed {aggregate.ONE_SEED}"),
            ("n_flagged_runs", "flagged runs"), ("weak_acc", "weak %"),
            ("ceiling_acc", "ceiling %"), ("w2s_acc", "w2s %"), ("gap_acc", "gap pts"), ("pgr_acc", "PGR")]
    out.append(("seeds", "Per model pair, over seeds",
                "<p>The numbers <code>w2s results DIR --summary</code> and the methods bench print.</p>"
                + _one_seed_note(agg["cells"]) + table(_marked(agg["cells"]), cols, PCT_COLS, INTERVALS, flag_col="flagged", reasons=pgr_cell)))

    out.append(("diagnostics", "Diagnostics", _diagnostics(t, PCT_COLS, n_boot, seed)))
    out.append(("configs", "Configs", configs(data.records)))
    if any(r.get("task_kind") == "generation" for r in data.records):
        from ..generation.report import section

        out.append(("generation", "Generation tasks: example answers", section(data.records)))
    order = ["summary", "compare", "plots", "generation", "diagnostics", "seeds", "runs", "configs"]
    out.append(("plots", "Plots", "".join(figure(p) for p in rendered)))
    return sorted(out, key=lambda s: order.index(s[0]))


def _one_seed_note(summary: pd.DataFrame) -> str:
    """A warning when an aggregate's intervals hold test noise only (a model pair with one seed)."""
    if "test_noise_only" not in summary or not summary["test_noise_only"].fillna(False).astype(bool).any():
        return ""
    return f'<div class="note">{aggregate.ONE_SEED} {_html.escape(aggregate.ONE_SEED_NOTE)}</div>'


def _diagnostics(t: pd.DataFrame, pct_cols: set[str], n_boot: int, seed: int) -> str:
    from .html import table

    if "agreement_weak_wrong" not in t:
        return '<div class="note">No diagnostics: the runs have no labelled predictions.</div>'
    cols = ["agreement_weak_right", "agreement_weak_wrong", "fixed", "fixed_of_wrong", "broken", "misfit_kl",
            "gain_xent", "gain_acc"]
    cols = [c for c in cols if c in t]
    g = t.groupby("method")[cols].mean().reset_index()
    heads = {"agreement_weak_right": "agree | weak right %", "agreement_weak_wrong": "agree | weak wrong %",
             "fixed": "student right & weak wrong %", "fixed_of_wrong": "student right | weak wrong %",
             "broken": "student wrong & weak right %", "misfit_kl": "misfit (KL, transfer)",
             "gain_xent": "gain (xent, test)", "gain_acc": "gain (acc, test)"}
    text = ("<p>Means over runs. <i>Agreement</i>: the student predicts what the weak supervisor predicts (on a "
            "generation task: writes an answer the task's checker accepts against the weak answer, e.g. the same "
            "text after normalisation, or the same last number). "
            "<i>Misfit</i>: mean KL(weak ‖ student) on the transfer set (Charikar et al. 2024).</p>")
    text += table(g, [("method", "method")] + [(c, heads[c]) for c in cols], pct_cols | {"gain_acc"})
    if "misfit_kl" in t:
        r = stats.correlation(t["misfit_kl"], t["gain_xent"], n_boot=n_boot, seed=seed)
        n = int((np.isfinite(t["misfit_kl"].astype(float)) & np.isfinite(t["gain_xent"].astype(float))).sum())
        if np.isfinite(r.value):
            text += (f"<p>Correlation of gain (cross-entropy) with misfit across {n} student runs: Pearson r = "
                     f"{r.value:.2f} [{r.lo:.2f}, {r.hi:.2f}].</p>")
        else:
            text += f"<p>Correlation of gain with misfit: not defined ({n} student run(s); needs 3 with spread).</p>"
    return text
