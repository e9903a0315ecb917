"""The report's plots (matplotlib, Agg backend). Each builder returns a ``Plot`` with a figure,
or with ``figure=None`` and a note saying why the data cannot support it."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import aggregate, stats
from .data import ReportData

MAX_TASKS = 6
MAX_CURVE_RUNS = 4


@dataclass
class Plot:
    name: str
    title: str
    caption: str
    figure: Any = None
    note: str = ""
    png: bytes = b""
    files: tuple[Path, ...] = ()


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _pct(ax, axis: str = "both") -> None:
    from matplotlib.ticker import PercentFormatter

    if axis in ("x", "both"):
        ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    if axis in ("y", "both"):
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))


def accuracy_vs_ceiling(data: ReportData) -> Plot:
    """(a) The paper's Figure 3 layout: w2s test accuracy against the strong ceiling's accuracy."""
    p = Plot("accuracy_vs_ceiling", "Test accuracy vs strong ceiling",
             "One panel per task and method; one line per weak model through its strong students "
             "(mean over seeds); the dashed line is the strong ceiling (y = x); hollow markers are the "
             "weak supervisors' own accuracy.")
    t = data.table
    if not len(t):
        p.note = "no runs"
        return p
    tasks = sorted(t["task"].unique())[:MAX_TASKS]
    methods = sorted(t["method"].unique())
    plt = _plt()
    fig, axes = plt.subplots(len(tasks), len(methods), figsize=(3.2 * len(methods) + 0.6, 3.0 * len(tasks)),
                             squeeze=False)
    m = t.groupby(["task", "method", "weak", "strong"])[["ceiling_acc", "w2s_acc", "weak_acc"]].mean().reset_index()
    weaks = sorted(t["weak"].unique())
    colors = {w: plt.cm.viridis(i / max(1, len(weaks) - 1) * 0.85) for i, w in enumerate(weaks)}
    for i, task in enumerate(tasks):
        for j, method in enumerate(methods):
            ax = axes[i][j]
            g = m[(m["task"] == task) & (m["method"] == method)]
            vals = pd.concat([g["ceiling_acc"], g["w2s_acc"], g["weak_acc"]]).dropna()
            lo, hi = (vals.min() - 0.03, vals.max() + 0.03) if len(vals) else (0.0, 1.0)
            ax.plot([lo, hi], [lo, hi], "--", color="0.4", lw=1, label="strong ceiling")
            for w, gw in g.groupby("weak"):
                gw = gw.sort_values("ceiling_acc")
                ax.plot(gw["ceiling_acc"], gw["w2s_acc"], "o-", color=colors[w], label=f"weak: {w}")
                ax.plot(gw["ceiling_acc"], gw["weak_acc"], "o", mfc="none", color=colors[w])
            ax.set_xlim(lo, hi)
            ax.set_ylim(lo, hi)
            _pct(ax)
            ax.set_title(f"{task} · {method}", fontsize=9)
            if i == len(tasks) - 1:
                ax.set_xlabel("strong ceiling accuracy")
            if j == 0:
                ax.set_ylabel("test accuracy")
            ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="upper left")  # students sit below the diagonal
    fig.tight_layout()
    p.figure = fig
    if t.groupby("task")["strong"].nunique().max() < 2:
        p.note = "one strong model per task: each line is a single point (add strong models to see trends)"
    return p


def pgr_by_method(data: ReportData) -> Plot:
    """(b) PGR (accuracy) by method: the ratio of means over seeds and model pairs, with its 95% interval."""
    p = Plot("pgr_by_method", "PGR by method",
             "PGR = (mean w2s − mean weak) / (mean ceiling − mean weak) over each task's seeds and model pairs, "
             f"with its 95% interval ({stats.INTERVAL_METHOD}); dots: single unflagged runs. A flagged "
             "aggregate (gap under the threshold or its interval reaching 0) is not drawn.")
    t = data.table
    agg = aggregate.summarize(t, by=("task",), preds=data.preds, threshold=data.threshold) if len(t) else t
    agg = agg[~agg["flagged"].astype(bool)] if len(agg) else agg
    if not len(agg):
        p.note = "no aggregate has a reliable PGR (every gap is under the threshold or its interval includes 0)"
        return p
    tasks = sorted(agg["task"].unique())[:MAX_TASKS]
    methods = sorted(agg["method"].unique())
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(tasks) * len(methods) + 1.5), 3.4))
    width = 0.8 / len(methods)
    for j, method in enumerate(methods):
        for i, task in enumerate(tasks):
            r = agg[(agg["task"] == task) & (agg["method"] == method)]
            if not len(r):
                continue
            r = r.iloc[0]
            x = i + (j - (len(methods) - 1) / 2) * width
            ax.errorbar([x], [r["pgr_acc"]], yerr=[[r["pgr_acc"] - r["pgr_acc_lo"]], [r["pgr_acc_hi"] - r["pgr_acc"]]],
                        fmt="s", color=f"C{j}", capsize=4,
                        label=aggregate.mark(method, bool(r["uses_ground_truth"])) if i == 0 else None)
            pts = t[(t["task"] == task) & (t["method"] == method) & ~t["flagged"]]["pgr_acc"]
            ax.plot(np.full(len(pts), x + width * 0.25), pts, ".", color=f"C{j}", alpha=0.5)
    ax.axhline(0, color="0.3", lw=0.8)
    ax.axhline(1, color="0.3", lw=0.8, ls="--")
    ax.set_xticks(range(len(tasks)), tasks)
    ax.set_ylabel("PGR (accuracy)")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    p.figure = fig
    return p


def training_curves(data: ReportData) -> Plot:
    """(c) Training loss of each stage (per epoch for probe heads, per optimizer step for finetuned
    models), with the point whose weights were kept marked."""
    p = Plot("training_curves", "Training curves",
             f"Training loss of each stage (first {MAX_CURVE_RUNS} runs): per epoch for probe heads, per optimizer "
             "step for finetuned models. A star and a dotted line mark the point early stopping chose "
             "(train.early_stop.selected); a star alone marks the last point of stages that keep their "
             "final weights.")
    if not data.curves:
        p.note = "the run records hold no per-epoch losses (runs written before losses were recorded)"
        return p
    runs = list(dict.fromkeys(c["run_id"] for c in data.curves))[:MAX_CURVE_RUNS]
    plt = _plt()
    fig, axes = plt.subplots(1, len(runs), figsize=(3.6 * len(runs), 3.0), squeeze=False)
    for ax, run in zip(axes[0], runs):
        units = set()
        for k, c in enumerate(x for x in data.curves if x["run_id"] == run):
            units.add(c.get("unit", "epoch"))
            x = np.arange(1, len(c["losses"]) + 1)  # epoch or step number, from 1
            ax.plot(x, c["losses"], color=f"C{k}", label=c["stage"], lw=1.2)
            stop = c["stop"] if c["stop"] is not None else len(c["losses"])
            if 1 <= stop <= len(c["losses"]):
                ax.plot([stop], [c["losses"][stop - 1]], "*", color=f"C{k}", ms=10, mec="k", mew=0.5)
                if c["stop"] is not None:
                    ax.axvline(stop, color=f"C{k}", ls=":", lw=1)
        ax.set_title(run.replace("__", " · "), fontsize=7)
        ax.set_xlabel(" / ".join(sorted(units)))
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("training loss")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    p.figure = fig
    return p


def agreement_split(data: ReportData) -> Plot:
    """(d) Student–supervisor agreement where the weak model is right vs wrong."""
    p = Plot("agreement_split", "Student–supervisor agreement",
             "Share of test examples where the student predicts what the weak supervisor predicts, split "
             "by whether the supervisor is right or wrong (mean over runs; bars: 95% bootstrap over runs). "
             "High agreement on the supervisor's mistakes means the student imitates them.")
    t = data.table
    cols = ["agreement_weak_right", "agreement_weak_wrong"]
    if not set(cols) <= set(t.columns) or t[cols].dropna(how="all").empty:
        p.note = "no agreement measurements (the runs have no labelled predictions)"
        return p
    methods = sorted(t["method"].unique())
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(3.8, 1.3 * len(methods) + 1.5), 3.2))
    for k, (col, lab) in enumerate(zip(cols, ("weak right", "weak wrong"))):
        for j, m in enumerate(methods):
            iv = stats.bootstrap(t[t["method"] == m][col].to_numpy(), "mean", data.n_boot)
            x = j + (k - 0.5) * 0.38
            ax.bar([x], [iv.value], width=0.36, color=f"C{k}", label=lab if j == 0 else None)
            if np.isfinite(iv.lo):
                ax.errorbar([x], [iv.value], yerr=[[iv.value - iv.lo], [iv.hi - iv.value]], color="k", capsize=3)
    ax.set_xticks(range(len(methods)), methods)
    ax.set_ylim(0, 1.18)
    ax.set_yticks(np.linspace(0, 1, 6))
    _pct(ax, "y")
    ax.set_ylabel("agreement with weak labels")
    ax.legend(fontsize=8, loc="upper center", ncol=2)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    p.figure = fig
    return p


def gain_vs_misfit(data: ReportData) -> Plot:
    """(e) Gain over the weak model against the student–supervisor misfit on transfer."""
    p = Plot("gain_vs_misfit", "Gain vs misfit",
             "Each point is one student run: x = misfit on the transfer set, mean KL(weak ‖ student); "
             "y = gain over its supervisor on test, cross-entropy(weak) − cross-entropy(student). "
             "Charikar et al. (2024): the gain tracks the misfit.")
    t = data.table
    if "misfit_kl" not in t or "gain_xent" not in t:
        p.note = "no misfit measurements (the runs have no labelled transfer predictions)"
        return p
    ok = t[np.isfinite(t["misfit_kl"].astype(float)) & np.isfinite(t["gain_xent"].astype(float))]
    if len(ok) < 3:
        p.note = f"{len(ok)} student run(s) with a misfit; a scatter needs at least 3"
        return p
    r = stats.correlation(ok["misfit_kl"], ok["gain_xent"], n_boot=data.n_boot)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.4, 3.6))
    for j, (m, g) in enumerate(ok.groupby("method")):
        ax.scatter(g["misfit_kl"], g["gain_xent"], color=f"C{j}", label=m, s=22)
    lim = [0, max(ok["misfit_kl"].max(), ok["gain_xent"].max()) * 1.05]
    ax.plot(lim, lim, "--", color="0.5", lw=1, label="gain = misfit")
    ax.set_xlabel("misfit on transfer (KL, nats)")
    ax.set_ylabel("gain on test (cross-entropy, nats)")
    ax.set_title(f"Pearson r = {r.value:.2f} [{r.lo:.2f}, {r.hi:.2f}], n = {len(ok)}", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    p.figure = fig
    return p


BUILDERS: list[Callable[[ReportData], Plot]] = [
    accuracy_vs_ceiling, pgr_by_method, training_curves, agreement_split, gain_vs_misfit]


def render(data: ReportData, out_dir: Path | None, dpi: int = 100,
           names: Sequence[str] | None = None) -> list[Plot]:
    """Build every plot (or those in ``names``); save PNG and SVG into ``out_dir`` (if given);
    keep the PNG bytes."""
    plt = _plt()
    plots = []
    for build in BUILDERS:
        if names is not None and build.__name__ not in names:
            continue
        p = build(data)
        if p.figure is not None:
            buf = io.BytesIO()
            p.figure.savefig(buf, format="png", dpi=dpi)
            p.png = buf.getvalue()
            if out_dir is not None:
                from ..store.atomic import atomic_write_bytes

                out_dir.mkdir(parents=True, exist_ok=True)
                svg = io.BytesIO()
                p.figure.savefig(svg, format="svg")
                atomic_write_bytes(out_dir / f"{p.name}.png", p.png)
                atomic_write_bytes(out_dir / f"{p.name}.svg", svg.getvalue())
                p.files = (out_dir / f"{p.name}.png", out_dir / f"{p.name}.svg")
            plt.close(p.figure)
            p.figure = None
        plots.append(p)
    return plots
