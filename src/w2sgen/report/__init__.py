"""``w2s report DIR``: statistics, plots (PNG + SVG) and one self-contained HTML page."""

from __future__ import annotations

import html as _html
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .. import stats
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
                 include_flagged: bool = False, reference: str = "xent", seed: int = 0) -> ReportInfo:
    """Write the report of results directory ``root`` to ``output`` (default ``root/report.html``)
    and its plots to ``plots_dir`` (default ``plots/`` next to the report)."""
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
    rendered = plots.render(data, pdir, include_flagged)
    sections = _sections(data, rendered, include_flagged, reference, n_boot, seed)
    header = _header(data, include_flagged)
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


def _header(data, include_flagged: bool) -> str:
    esc = _html.escape
    t = data.table
    n_flag = int(t.drop_duplicates("run_id")["flagged"].sum()) if len(t) else 0
    notes = "".join(f'<div class="note">{esc(n)}</div>' for n in data.notes)
    return (f"<p>{len(data.records)} run(s) in <code>{esc(str(data.root.resolve()))}</code>; "
            f"{t['task'].nunique()} task(s), {t[['weak', 'strong']].drop_duplicates().shape[0]} model pair(s), "
            f"methods {esc(', '.join(sorted(t['method'].unique())))}. Intervals are 95% percentile bootstraps "
            f"({data.n_boot} resamples: test examples within a run, seeds across runs). A PGR is flagged "
            f"<i>unreliable</i> when ceiling − weak &lt; {100 * data.threshold:.0f} points or 0 lies in the gap's "
            f"interval: {n_flag} run(s) flagged, {'included in' if include_flagged else 'kept out of'} the "
            f"aggregates. Generated {time.strftime('%Y-%m-%d %H:%M')}.</p>{notes}")


def _sections(data, rendered, include_flagged: bool, reference: str, n_boot: int, seed: int
              ) -> list[tuple[str, str, str]]:
    from .html import configs, figure, table

    t = data.table
    pct_cols = {"weak_acc", "ceiling_acc", "w2s_acc", "weak_auroc", "ceiling_auroc", "w2s_auroc", "gap",
                "weak_ece", "ceiling_ece", "w2s_ece", "agreement_weak_right", "agreement_weak_wrong",
                "fixed", "fixed_of_wrong", "broken", "win_rate"}
    out = []

    # summary over model pairs
    agg = stats.aggregate_pairs(t, by=("task", "method"), n_boot=n_boot, seed=seed, include_flagged=include_flagged)
    overall = stats.aggregate_pairs(t.assign(task="all tasks"), by=("task", "method"), n_boot=n_boot, seed=seed,
                                    include_flagged=include_flagged) if t["task"].nunique() > 1 else None
    side = _side_by_side(t, include_flagged)
    agg = pd.concat([agg, overall], ignore_index=True).merge(side, on=["task", "method"], how="left")
    cols = [("task", "task"), ("method", "method"), ("pairs", "pairs"), ("n", "runs"), ("n_flagged", "flagged"),
            ("median", "PGR median"), ("mean", "PGR mean"), ("weak_acc", "weak acc %"), ("ceiling_acc", "ceiling acc %"),
            ("w2s_acc", "w2s acc %"), ("weak_auroc", "weak AUROC %"), ("w2s_auroc", "w2s AUROC %"),
            ("ceiling_auroc", "ceiling AUROC %"), ("w2s_ece", "w2s ECE %")]
    out.append(("summary", "Summary: PGR over model pairs",
                "<p>Median (as the paper reports) and mean over model pairs of each pair's mean PGR (accuracy) "
                "over seeds, with hierarchical bootstrap intervals over seeds; accuracy, AUROC and ECE "
                "(10 bins) are means over the same runs.</p>"
                + table(agg, cols, pct_cols, {"median": ("median_lo", "median_hi"), "mean": ("mean_lo", "mean_hi")})))

    # paired comparisons
    if reference in set(t["method"]) and t["method"].nunique() > 1:
        cmp = stats.compare_methods(t, reference=reference, n_boot=n_boot, seed=seed, include_flagged=include_flagged)
        cols = [("method", "method"), ("reference", "vs"), ("runs", "paired runs"), ("delta_mean", "ΔPGR mean"),
                ("win_rate", "runs won %"), ("tasks", "tasks"), ("tasks_won", "tasks won vs ref"),
                ("tasks_best", "tasks best")]
        body = (f"<p>ΔPGR = PGR(method) − PGR({reference}) on the same runs; interval: bootstrap over runs. "
                "Per run, the paired bootstrap over test examples is in the runs table.</p>"
                + table(cmp, cols, pct_cols, {"delta_mean": ("delta_lo", "delta_hi")}))
    else:
        body = f'<div class="note">No paired comparison: the runs lack {reference} or a second method.</div>'
    out.append(("compare", f"Methods against {reference}", body))

    # per run
    cols = [("run_id", "run"), ("method", "method"), ("weak_acc", "weak %"), ("ceiling_acc", "ceiling %"),
            ("w2s_acc", "w2s %"), ("gap", "gap %"), ("pgr_acc", "PGR"), ("flagged", "unreliable"),
            ("delta_pgr", f"ΔPGR vs {reference}"), ("pgr_auroc", "PGR (AUROC)"), ("w2s_auroc", "w2s AUROC %"),
            ("weak_ece", "weak ECE %"), ("ceiling_ece", "ceiling ECE %"), ("w2s_ece", "w2s ECE %")]
    iv = {"weak_acc": ("weak_acc_lo", "weak_acc_hi"), "ceiling_acc": ("ceiling_acc_lo", "ceiling_acc_hi"),
          "w2s_acc": ("w2s_acc_lo", "w2s_acc_hi"), "gap": ("gap_lo", "gap_hi"), "pgr_acc": ("pgr_lo", "pgr_hi"),
          "delta_pgr": ("delta_lo", "delta_hi")}
    out.append(("runs", "Runs", "<p>One row per run and method; intervals are over test examples; grey rows "
                "are flagged (small or uncertain gap).</p>" + table(t, [c for c in cols if c[0] in t], pct_cols, iv,
                                                                      flag_col="flagged")))

    # seeds
    seeds = stats.aggregate_seeds(t, n_boot=n_boot, seed=seed, include_flagged=include_flagged)
    cols = [("task", "task"), ("weak", "weak"), ("strong", "strong"), ("mode", "mode"), ("method", "method"),
            ("n", "seeds"), ("n_flagged", "flagged"), ("mean", "PGR mean"), ("median", "PGR median")]
    out.append(("seeds", "Per model pair, over seeds",
                table(seeds, cols, pct_cols, {"mean": ("mean_lo", "mean_hi"), "median": ("median_lo", "median_hi")})))

    # diagnostics
    out.append(("diagnostics", "Diagnostics", _diagnostics(t, pct_cols, n_boot, seed)))
    out.append(("configs", "Configs", configs(data.records)))
    order = ["summary", "compare", "plots", "diagnostics", "seeds", "runs", "configs"]
    out.append(("plots", "Plots", "".join(figure(p) for p in rendered)))
    return sorted(out, key=lambda s: order.index(s[0]))


def _side_by_side(t: pd.DataFrame, include_flagged: bool) -> pd.DataFrame:
    cols = [c for c in ("weak_acc", "ceiling_acc", "w2s_acc", "weak_auroc", "ceiling_auroc", "w2s_auroc", "w2s_ece")
            if c in t]
    used = t if include_flagged else t[~t["flagged"]]
    a = used.groupby(["task", "method"])[cols].mean().reset_index()
    b = used.assign(task="all tasks").groupby(["task", "method"])[cols].mean().reset_index()
    return pd.concat([a, b], ignore_index=True)


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
    text = ("<p>Means over runs. <i>Agreement</i>: the student predicts what the weak supervisor predicts. "
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
