"""The outputs of ``w2s reproduce``: the claims table (text and ``claims.json``), each model's ceiling
per task (text and ``ceilings.json``), and ``report.html`` with the paper's Figure-3 layout, PGR
against the strong model's size and one panel per claim."""

from __future__ import annotations

import io
import json
import math
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import stats
from ..stats import Interval
from .claims import CLAIMS, Claim, joint, right
from .evidence import Evidence, ceiling_stage, student_stage, weak_stage

if TYPE_CHECKING:
    from .design import Block
    from .run import Outcome

COLORS = {"reproduced": "#1a7f37", "not reproduced": "#c62828", "inconclusive": "#777777"}
METHODS = ("xent", "logconf")
TITLE_WIDTH = 70
"""Characters per line of a claim panel's title (wrapped, never cut)."""
LABEL_WIDTH = 48
"""Characters per line of a claim row's label (the statistic, wrapped, never cut)."""


def short(name: str) -> str:
    """A model name for tables: a directory's last component, else the name."""
    return Path(name).name if "/" in name and Path(name).exists() else name


# --------------------------------------------------------------------------- numbers


def mean_acc(ev: Evidence, task: str, stage: str) -> float:
    """Test accuracy of ``stage`` on ``task``, mean over seeds (NaN when a seed lacks it)."""
    seeds = ev.tasks.get(task, {})
    if not seeds or not ev.has(task, [stage]):
        return float("nan")
    return float(np.mean([(ts.preds[stage] == ts.labels).mean() for ts in seeds.values()]))


def acc_interval(ev: Evidence, task: str, stage: str) -> Interval:
    """``mean_acc`` with its 95% interval over seeds and test groups (``stats.seed_moments``)."""
    if not ev.has(task, [stage]):
        return Interval(float("nan"), float("nan"), float("nan"))
    j = joint(ev, {task: [right(stage)]})
    return stats.contrast_interval(j.moments, j.e(task, right(stage)))


def ceilings(ev: Evidence) -> dict[str, dict[str, dict[str, float | None]]]:
    """task -> model -> {ceiling, lo, hi, weak}: each rung's ceiling (and weak floor) test accuracy."""
    out: dict[str, dict[str, dict[str, float | None]]] = {}
    for task in sorted(ev.tasks):
        out[task] = {}
        for m in ev.ladder:
            iv = acc_interval(ev, task, ceiling_stage(m))
            out[task][m] = {k: (None if not math.isfinite(v) else v) for k, v in
                            (("ceiling", iv.value), ("lo", iv.lo), ("hi", iv.hi),
                             ("weak", mean_acc(ev, task, weak_stage(m))))}
    return out


def not_monotone(ev: Evidence) -> list[str]:
    """Tasks where a larger model's ceiling is below a smaller one's (point estimates), in words."""
    out = []
    for task, row in ceilings(ev).items():
        got = [(m, v["ceiling"]) for m, v in row.items() if v["ceiling"] is not None]
        drops = [f"{short(b)} {100 * vb:.1f}% < {short(a)} {100 * va:.1f}%"
                 for i, (a, va) in enumerate(got) for b, vb in got[i + 1:] if vb < va]
        if drops:
            out.append(f"{task}: {'; '.join(drops)}")
    return out


def order_note(ev: Evidence) -> str:
    """One sentence on the ladder's order: where it is not monotone in ceilings, or that it is,
    or that it could not be checked (a task with fewer than two models' ceilings)."""
    bad = not_monotone(ev)
    if bad:
        return "ladder order kept as given; not monotone in ceiling accuracy on: " + " | ".join(bad)
    unchecked = [t for t, row in ceilings(ev).items() if sum(v["ceiling"] is not None for v in row.values()) < 2]
    if unchecked:
        return ("the order of the ceilings is not checked on " + ", ".join(unchecked)
                + ": fewer than two models of the ladder have a ceiling there")
    return "the ceilings grow along the ladder on every task"


def ceilings_text(block: Block, ev: Evidence) -> str:
    """Each model's ceiling per task (%, 95% interval), and whether the ladder is monotone."""
    head = f"ceilings ({block.name}): test accuracy of each model trained on ground truth (transfer), %, mean over seeds"
    if block.note:
        head += f"\n  {block.note}"
    w = max([len(t) for t in ev.tasks] + [4])
    cols = [short(m) for m in ev.ladder]
    lines = [head, f"  {'task':<{w}}  " + "  ".join(f"{c:>20}" for c in cols)]
    for task, row in ceilings(ev).items():
        cells = []
        for m in ev.ladder:
            v = row[m]
            cells.append("–" if v["ceiling"] is None else
                         f"{100 * v['ceiling']:.1f} [{100 * (v['lo'] or math.nan):.1f}, {100 * (v['hi'] or math.nan):.1f}]")
        lines.append(f"  {task:<{w}}  " + "  ".join(f"{c:>20}" for c in cells))
    lines.append(f"  {order_note(ev)}")
    return "\n".join(lines)


def _fmt(v: float) -> str:
    return f"{v:+.3f}" if math.isfinite(v) else "?"


def claims_text(rows: list[Claim], missing: list[str]) -> str:
    """The claims table: one row per claim, mode and statistic, with its 95% interval and verdict."""
    lines = ["claims (95% intervals from w2sgen.aggregate's machinery: ratios of means, Fieller, variance "
             "components over seeds and test groups; delta method for slopes)"]
    head = f"  {'#':<2} {'mode':<22} {'statistic':<84} {'value':>8}  {'95% interval':<20} verdict"
    lines += [head, "  " + "-" * (len(head) - 2)]
    for r in rows:
        iv = f"[{_fmt(r.lo)}, {_fmt(r.hi)}]"
        claimed = f"(claimed {r.side} {r.null:g})"
        lines.append(f"  {r.claim:<2} {r.mode:<22} {r.statistic[:84]:<84} {_fmt(r.value):>8}  {iv:<20} "
                     f"{r.verdict} {claimed}")
    for m in missing:
        lines.append(f"  not applicable: {m}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- figures


def _plt():
    from ..report.plots import _plt as plt

    return plt()


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def _tasks(ev: Evidence) -> list[str]:
    return sorted(ev.tasks)


def _pooled_acc(ev: Evidence, stage: str) -> float:
    vals = [mean_acc(ev, t, stage) for t in _tasks(ev)]
    return float(np.mean(vals)) if vals and all(math.isfinite(v) for v in vals) else float("nan")


def _size(n: float) -> str:
    """2.27e7 -> '23M', 1.5e9 -> '1.5B'."""
    return f"{n / 1e9:.2g}B" if n >= 1e9 else f"{n / 1e6:.3g}M"


def _log_x(ax: Any, sizes: list[float]) -> None:
    """A log x axis ticked at the ladder's sizes only (the default minor labels collide on narrow panels)."""
    from matplotlib.ticker import NullFormatter, NullLocator

    ax.set_xscale("log")
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xticks(sizes, [_size(v) for v in sizes], fontsize=7, rotation=45)


def figure3(ev: Evidence, title: str) -> Any:
    """Test accuracy against the strong model's size: one panel per task and one pooled (rows), xent
    and logconf side by side (columns); one line per weak model through its students, starting at
    the weak model's own accuracy (hollow); the strong ceiling dashed."""
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    plt = _plt()
    rows = [*_tasks(ev), "pooled"]
    fig, axes = plt.subplots(len(rows), 2, figsize=(9, 2.8 * len(rows) + 0.6), squeeze=False)
    cmap = plt.get_cmap("viridis")
    for i, task in enumerate(rows):
        acc = (lambda st: _pooled_acc(ev, st)) if task == "pooled" else (lambda st, t=task: mean_acc(ev, t, st))
        for k, method in enumerate(METHODS):
            ax = axes[i][k]
            xs = [ev.params[m] for m in ev.ladder]
            ax.plot(xs, [acc(ceiling_stage(m)) for m in ev.ladder], "k--", marker="s", ms=4, lw=1.2,
                    label="strong ceiling")
            for n, w in enumerate(ev.ladder[:-1]):
                color = cmap(n / max(1, len(ev.ladder) - 2) * 0.85)
                strong = ev.ladder[n + 1:]
                ys = [acc(student_stage(w, s, method)) for s in strong]
                ax.plot([ev.params[w], *[ev.params[s] for s in strong]], [acc(weak_stage(w)), *ys], "-", color=color,
                        lw=1.5, label=f"weak: {short(w)}")
                ax.plot([ev.params[s] for s in strong], ys, "o", color=color, ms=4)
                ax.plot([ev.params[w]], [acc(weak_stage(w))], "o", mfc="none", color=color, ms=6)
            _log_x(ax, sorted({ev.params[m] for m in ev.ladder}))
            ax.set_title(f"{task} — {method}", fontsize=10)
            ax.yaxis.set_major_locator(MaxNLocator(nbins=6, steps=[1, 2, 5, 10]))  # 1-2-5 steps, labelled exactly
            ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=None))
            if i == len(rows) - 1:
                ax.set_xlabel("strong model parameters")
            if k == 0:
                ax.set_ylabel("test accuracy")
    axes[0][1].legend(fontsize=7, loc="lower right")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def cell_pgr(ev: Evidence, task: str, w: str, s: str, method: str) -> tuple[Interval, str | None]:
    """A cell's PGR (ratio of means over seeds, Fieller) and its gap flag."""
    cols = [right(weak_stage(w)), right(ceiling_stage(s)), right(student_stage(w, s, method))]
    if not ev.has(task, [c[1] for c in cols]):
        return Interval(float("nan"), float("nan"), float("nan")), "missing"
    j = joint(ev, {task: cols})
    e = [j.e(task, c) for c in cols]
    gap = stats.contrast_interval(j.moments, e[1] - e[0])
    flag = stats.flag_reason(gap)
    return stats.ratio_interval(j.moments, e[2] - e[0], e[1] - e[0]), flag


def pgr_figure(ev: Evidence, title: str) -> Any:
    """PGR against the strong model's size, one line per weak model, 95% Fieller intervals; cells
    whose gap is flagged are drawn hollow at 0 (their PGR is null)."""
    plt = _plt()
    tasks = _tasks(ev)
    fig, axes = plt.subplots(len(tasks), 2, figsize=(9, 2.6 * len(tasks) + 0.6), squeeze=False)
    cmap = plt.get_cmap("viridis")
    for i, task in enumerate(tasks):
        for k, method in enumerate(METHODS):
            ax = axes[i][k]
            ax.axhline(0, color="0.6", lw=0.8)
            ax.axhline(1, color="0.6", lw=0.8, ls=":")
            for n, w in enumerate(ev.ladder[:-1]):
                color = cmap(n / max(1, len(ev.ladder) - 2) * 0.85)
                pts = []
                for s in ev.ladder[n + 1:]:
                    iv, flag = cell_pgr(ev, task, w, s, method)
                    if flag is None and math.isfinite(iv.value):
                        pts.append((ev.params[s], iv))
                    elif flag != "missing":
                        ax.plot([ev.params[s]], [0], "x", color=color, ms=6)
                if pts:
                    x = np.array([p[0] for p in pts]) * (1 + 0.04 * n)
                    v = np.array([p[1].value for p in pts])
                    lo = np.array([p[1].lo if math.isfinite(p[1].lo) else p[1].value for p in pts])
                    hi = np.array([p[1].hi if math.isfinite(p[1].hi) else p[1].value for p in pts])
                    ax.errorbar(x, v, yerr=[v - lo, hi - v], fmt="o-", color=color, ms=4, capsize=2,
                                label=f"weak: {short(w)}")
            _log_x(ax, sorted({ev.params[m] for m in ev.ladder}))
            ax.set_title(f"{task} — PGR({method})", fontsize=10)
            if i == len(tasks) - 1:
                ax.set_xlabel("strong model parameters")
    if axes[0][0].get_legend_handles_labels()[0]:
        axes[0][0].legend(fontsize=7)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def claims_figure(rows: list[Claim]) -> Any:
    """One panel per claim: each statistic (by mode) with its 95% interval, the null dashed, the
    colour its verdict."""
    plt = _plt()
    nums = [n for n in CLAIMS if any(r.claim == n for r in rows)]
    if not nums:
        return None
    lines = {n: len(textwrap.wrap(f"claim {n}: {CLAIMS[n]}", TITLE_WIDTH)) for n in nums}
    fig, axes = plt.subplots(len(nums), 1, figsize=(9, sum(0.6 * sum(r.claim == n for r in rows) + 0.75
                                                           + 0.17 * lines[n] for n in nums)), squeeze=False)
    for ax, n in zip(axes[:, 0], nums):
        rs = [r for r in rows if r.claim == n]
        for y, r in enumerate(rs):
            c = COLORS[r.verdict]
            lo = r.lo if math.isfinite(r.lo) else r.value
            hi = r.hi if math.isfinite(r.hi) else r.value
            if math.isfinite(r.value):
                ax.errorbar([r.value], [y], xerr=[[r.value - lo], [hi - r.value]], fmt="o", color=c, capsize=3)
            if not (math.isfinite(r.lo) and math.isfinite(r.hi)):
                ax.annotate("unbounded", (r.value if math.isfinite(r.value) else 0, y), fontsize=7,
                            xytext=(6, 4), textcoords="offset points", color=c)
        ax.axvline(rs[0].null, color="0.4", ls="--", lw=1)
        ax.set_yticks(range(len(rs)))
        ax.set_yticklabels([textwrap.fill(f"{r.mode}: {r.statistic} ({r.verdict})", LABEL_WIDTH) for r in rs],
                           fontsize=7)
        ax.set_ylim(-0.6, len(rs) - 0.4)
        ax.set_title(textwrap.fill(f"claim {n}: {CLAIMS[n]}", TITLE_WIDTH), fontsize=9, loc="left")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- files


def write(outcome: Outcome, out: Path) -> None:
    """``claims.json``, ``ceilings.json``, the figures (PNG + SVG under ``plots/``) and ``report.html``."""
    from ..store.atomic import atomic_write_bytes, atomic_write_text

    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "claims.json", json.dumps([r.to_dict() for r in outcome.claims], indent=2) + "\n")
    ceil = {b.name: ceilings(ev) for b, ev in zip(outcome.blocks, outcome.evidence)}
    atomic_write_text(out / "ceilings.json", json.dumps(ceil, indent=2) + "\n")
    plt = _plt()
    figures = []
    for b, ev in zip(outcome.blocks, outcome.evidence):
        if not ev.tasks:
            continue
        slug = b.name.replace(" ", "-")
        figures.append((f"figure3-{slug}", f"Test accuracy vs strong size — {b.name}", figure3(ev, b.name),
                        "The paper's Figure 3 layout: one panel per task and one pooled (mean over tasks); "
                        "xent left, logconf right. Each coloured line is one weak supervisor: it starts at the "
                        "weak model's own test accuracy (hollow marker, at its size) and goes through its "
                        "students on every larger model (mean over seeds). The dashed black line is each "
                        "model's ceiling (trained on ground truth)."))
        figures.append((f"pgr-{slug}", f"PGR vs strong size — {b.name}", pgr_figure(ev, b.name),
                        "PGR = (mean w2s − mean weak) / (mean ceiling − mean weak) over seeds for each (weak, "
                        "strong) cell, with its 95% Fieller interval; × at 0: the cell's gap is flagged (under "
                        "2 points or its interval includes 0), so it has no PGR."))
    fig = claims_figure(outcome.claims)
    if fig is not None:
        figures.append(("claims", "Claims", fig, "One panel per claim: each statistic with its 95% interval; "
                        "dashed: the null; green reproduced, red not reproduced, grey inconclusive."))
    rendered = []
    pdir = out / "plots"
    pdir.mkdir(exist_ok=True)
    for name, title, f, caption in figures:
        png = _png(f)
        svg = io.BytesIO()
        f.savefig(svg, format="svg")
        atomic_write_bytes(pdir / f"{name}.png", png)
        atomic_write_bytes(pdir / f"{name}.svg", svg.getvalue())
        plt.close(f)
        rendered.append((name, title, png, caption))
    atomic_write_text(out / "report.html", _html(outcome, rendered))


def _html(outcome: Outcome, rendered: list[tuple[str, str, bytes, str]]) -> str:
    import pandas as pd

    from ..report import html
    from ..report.plots import Plot

    frame = pd.DataFrame([r.to_dict() for r in outcome.claims])
    cols = [("claim", "#"), ("mode", "mode"), ("statistic", "statistic"), ("value", "value"), ("verdict", "verdict"),
            ("detail", "what went in")]
    claims_html = (html.table(frame.astype({"value": float, "lo": float, "hi": float}), cols,
                              intervals={"value": ("lo", "hi")}) if len(frame) else "<p>no claim applies</p>")
    claims_html += "".join(f'<div class="note">not applicable: {html.esc(m)}</div>' for m in outcome.missing)
    claims_html += "<ol>" + "".join(f"<li>{html.esc(t)}</li>" for t in CLAIMS.values()) + "</ol>"
    ceil_html = ""
    for b, ev in zip(outcome.blocks, outcome.evidence):
        rows = []
        for task, row in ceilings(ev).items():
            rows.append({"task": task, **{f"c{i}": v["ceiling"] for i, v in enumerate(row.values())},
                         **{f"c{i}_lo": v["lo"] for i, v in enumerate(row.values())},
                         **{f"c{i}_hi": v["hi"] for i, v in enumerate(row.values())}})
        f = pd.DataFrame(rows).astype({c: float for c in pd.DataFrame(rows).columns if c != "task"}) if rows else None
        ceil_html += f"<h3>{html.esc(b.name)}</h3>"
        if b.note:
            ceil_html += f"<p>{html.esc(b.note)}</p>"
        if f is not None:
            cols = [("task", "task"), *[(f"c{i}", short(m)) for i, m in enumerate(ev.ladder)]]
            ceil_html += html.table(f, cols, pct={c for c, _ in cols if c != "task"},
                                    intervals={f"c{i}": (f"c{i}_lo", f"c{i}_hi") for i in range(len(ev.ladder))})
        note = order_note(ev)
        text = html.esc(note[0].upper() + note[1:] + ".")
        ceil_html += f'<div class="note">{text}</div>' if not_monotone(ev) else f"<p>{text}</p>"
    figs = "".join(html.figure(Plot(name, title, caption, png=png)) for name, title, png, caption in rendered)
    notes = "".join(f'<div class="note">{html.esc(n)}</div>' for n in outcome.notes)
    if outcome.failed:
        notes += f'<div class="note">Some runs failed; the claims use those that completed: <pre>{html.esc(outcome.failed)}</pre></div>'
    notes += "".join(f'<div class="note">{html.esc(n)}</div>' for ev in outcome.evidence for n in ev.notes)
    header = (f"<p>{sum(len(b.runs) for b in outcome.blocks)} runs in {len(outcome.blocks)} block(s), "
              f"{outcome.wall_s:.0f}s. Verdicts: <b>reproduced</b> — the 95% interval excludes the null on the "
              "claimed side; <b>not reproduced</b> — it excludes it on the other side; <b>inconclusive</b> — it "
              f"includes it (or is unbounded).</p>{notes}")
    sections = [("claims", "Claims", claims_html), ("ceilings", "Ceilings per task", ceil_html),
                ("figures", "Figures", figs)]
    return html.page("w2sgen — the paper's claims, reproduced", sections, header)

