"""The six claims of Burns et al. (2023) as statistics of one mode's test predictions, each with a
95% interval and a verdict.

Every statistic is a function of means over seeds of per-example test indicators (a stage right,
a student agreeing with its supervisor where the supervisor is wrong, ...). The means and their
covariance come from the aggregation module's machinery: ``stats.seed_moments`` (variance
components over seeds and test groups, ``between="vc"``) on the stacked indicators of all the cells
a statistic uses in one task, so that cells sharing a weak floor, a ceiling or test groups are
correlated as they should be; tasks are independent blocks, weighted equally, cells within a task
equally (as ``aggregate.summarize`` pools). Then:

* a ratio of linear forms (a pooled PGR, ΔPGR, a recovered fraction): ``stats.ratio_interval``
  (Fieller), unbounded -> inconclusive;
* a linear form (an accuracy difference): ``stats.contrast_interval`` (t, Satterthwaite df);
* a smooth non-linear function (a regression slope of per-cell PGRs, a difference of two
  conditional agreements): the delta method on the same covariance, f(m̂) ± t_df · sqrt(gᵀ V g),
  g = ∇f(m̂) by central differences, df by Satterthwaite for gᵀ m̂ (``Moments.df(g)``). It uses
  only cells whose gap is not flagged (the gap's interval excludes 0 and the gap is at least 2
  points), where the PGR ratios are far from their pole and the linearisation holds; with 3 seeds
  the t quantile's few degrees of freedom are what keeps the interval honest.

Verdicts (:data:`VERDICTS`): ``reproduced`` when the interval excludes the null on the claimed side,
``not reproduced`` when it excludes it on the other side, ``inconclusive`` when it includes it (or
cannot be bounded).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .. import stats
from ..stats import GAP_THRESHOLD, LEVEL, Interval, Moments, Part
from .evidence import Evidence, TaskSeed, ceiling_stage, checkpoint_stage, student_stage, weak_stage

VERDICTS = ("reproduced", "not reproduced", "inconclusive")

CLAIMS = {
    "1": "Naive weak-to-strong training recovers part of the gap: PGR(xent) > 0.",
    "2": "PGR grows with the strong model for a fixed weak supervisor.",
    "3": "The confidence loss helps more as the gap grows.",
    "4": "Students imitate the supervisor's errors less than its successes; logconf less than xent.",
    "5": "Students overfit the weak labels: the oracle checkpoint beats the last; early stopping recovers part.",
    "6": "Bootstrapping through the intermediate models helps at the largest gap.",
}
"""Each claim in one sentence (the report's and README's wording)."""


@dataclass
class Claim:
    """One row of the claims table (``claims.json``)."""

    claim: str
    """The claim's number ("1" … "6")."""
    statistic: str
    """What is estimated, in words."""
    value: float
    lo: float
    """The 95% interval's bounds (NaN: unbounded)."""
    hi: float
    verdict: str
    """reproduced, not reproduced or inconclusive."""
    mode: str = ""
    null: float = 0.0
    side: str = ">"
    """The claimed side of the null: > or <."""
    detail: str = ""
    """What went in: cells, tasks, seeds, exclusions."""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("value", "lo", "hi"):
            d[k] = None if not math.isfinite(d[k]) else float(d[k])
        return d


def verdict(iv: Interval, null: float = 0.0, side: str = ">") -> str:
    """``reproduced`` when the interval lies on the claimed ``side`` of ``null``, ``not reproduced`` when
    it lies on the other side, ``inconclusive`` when it includes ``null`` or is unbounded (NaN)."""
    if side not in (">", "<"):
        raise ValueError(f"side {side!r}: use > or <")
    if not (np.isfinite(iv.lo) and np.isfinite(iv.hi)):
        return "inconclusive"
    above, below = iv.lo > null, iv.hi < null
    if (above and side == ">") or (below and side == "<"):
        return "reproduced"
    if above or below:
        return "not reproduced"
    return "inconclusive"


# --------------------------------------------------------------------------- indicators and moments

Col = tuple[str, ...]
"""A per-example test indicator: ("right", stage), ("wrong", weak stage), or ("agree", student
stage, weak stage, "wrong"|"right"): the student predicts what the weak model predicts, on the
examples the weak model gets wrong|right (0 elsewhere)."""


def right(stage: str) -> Col:
    return ("right", stage)


def indicator(ts: TaskSeed, col: Col) -> np.ndarray:
    """(n,) 0/1 values of ``col`` on the test examples of ``ts``."""
    y = ts.labels
    if col[0] == "right":
        return (ts.preds[col[1]] == y).astype(float)
    if col[0] == "wrong":
        return (ts.preds[col[1]] != y).astype(float)
    if col[0] == "agree":
        _, student, weak, where = col
        w = ts.preds[weak]
        on = (w != y) if where == "wrong" else (w == y)
        return ((ts.preds[student] == w) & on).astype(float)
    raise ValueError(f"unknown indicator {col!r}")


@dataclass
class Joint:
    """The means over seeds of the indicators of several tasks, stacked, with their covariance."""

    moments: Moments
    index: dict[tuple[str, Col], int]
    """(task, indicator) -> position in ``moments.mean``."""

    def e(self, task: str, col: Col) -> np.ndarray:
        """The unit vector picking (task, col)'s mean."""
        v = np.zeros(len(self.moments.mean))
        v[self.index[(task, col)]] = 1.0
        return v


def joint(ev: Evidence, cols: dict[str, list[Col]]) -> Joint:
    """``stats.seed_moments`` of each task's indicators (one GroupedRun per seed: the test groups),
    tasks as independent blocks of one Moments (each part keeps its degrees of freedom)."""
    blocks, index, offset = [], {}, 0
    for task, cs in cols.items():
        cs = list(dict.fromkeys(cs))
        seeds = ev.tasks[task]
        runs = [stats.group_sums(ts.groups, np.stack([indicator(ts, c) for c in cs], axis=1))
                for _, ts in sorted(seeds.items())]
        acc = np.stack([r.acc for r in runs])  # (S, K)
        blocks.append((offset, stats.seed_moments(acc, runs)))
        index.update({(task, c): offset + i for i, c in enumerate(cs)})
        offset += len(cs)
    mean = np.zeros(offset)
    parts: list[Part] = []
    complete = True
    for off, m in blocks:
        k = len(m.mean)
        mean[off:off + k] = m.mean
        complete &= bool(m.parts)
        for p in m.parts:
            cov = np.zeros((offset, offset))
            cov[off:off + k, off:off + k] = p.cov
            parts.append(Part(cov, p.df))
    n = sum(m.n_seeds for _, m in blocks)
    return Joint(Moments(mean, tuple(parts) if complete else (), n), index)


def delta_interval(m: Moments, f: Callable[[np.ndarray], float], level: float = LEVEL,
                   h: float = 1e-6) -> Interval:
    """f(mean) with the delta method's t interval: f ± t_{df} · sqrt(gᵀ V g), g = ∇f by central
    differences, df by Satterthwaite (``Moments.df(g)``)."""
    x = m.mean
    value = float(f(x))
    if not np.isfinite(value):
        return Interval(value, float("nan"), float("nan"))
    g = np.zeros(len(x))
    for i in range(len(x)):
        d = np.zeros(len(x))
        d[i] = h
        g[i] = (f(x + d) - f(x - d)) / (2 * h)
    v = m.var(g)
    if not np.isfinite(v) or not np.isfinite(g).all():
        return Interval(value, float("nan"), float("nan"))
    half = stats.t_quantile(m.df(g), level) * math.sqrt(max(v, 0.0))
    return Interval(value, value - half, value + half)


# --------------------------------------------------------------------------- cells


@dataclass(frozen=True)
class Cell:
    """One (task, weak, strong) with its gap (ceiling − weak, test accuracy) and the gap's flag."""

    task: str
    weak: str
    strong: str
    gap: Interval
    flag: str | None
    """Why a PGR over this gap is null (``stats.flag_reason``), or None."""


def cells(ev: Evidence, threshold: float = GAP_THRESHOLD, level: float = LEVEL) -> list[Cell]:
    """Every (task, weak, strong) of ``ev`` with its gap interval and flag (the aggregation rule)."""
    out = []
    for task in sorted(ev.tasks):
        for w, s in ev.pairs(task):
            cs = [right(weak_stage(w)), right(ceiling_stage(s))]
            j = joint(ev, {task: cs})
            gap = stats.contrast_interval(j.moments, j.e(task, cs[1]) - j.e(task, cs[0]), level)
            out.append(Cell(task, w, s, gap, stats.flag_reason(gap, threshold)))
    return out


def _by_task(cs: list[Cell]) -> dict[str, list[Cell]]:
    out: dict[str, list[Cell]] = {}
    for c in cs:
        out.setdefault(c.task, []).append(c)
    return out


def pooled(j: Joint, groups: dict[str, list[Cell]], vec: Callable[[Joint, Cell], np.ndarray]) -> np.ndarray:
    """Σ_t (1/T) Σ_{c ∈ t} (1/n_t) vec(c): tasks weighted equally, then cells within a task."""
    total = np.zeros(len(j.moments.mean))
    for cs in groups.values():
        for c in cs:
            total += vec(j, c) / len(cs) / len(groups)
    return total


def _seeds(ev: Evidence, tasks: list[str]) -> str:
    n = sorted({len(ev.tasks[t]) for t in tasks})
    return f"{'/'.join(map(str, n))} seeds"


def _row(claim: str, statistic: str, iv: Interval, ev: Evidence, side: str = ">", null: float = 0.0,
         detail: str = "") -> Claim:
    return Claim(claim, statistic, iv.value, iv.lo, iv.hi, verdict(iv, null, side), ev.mode, null, side, detail)


def _has(ev: Evidence, c: Cell, *stages: str) -> bool:
    return ev.has(c.task, list(stages))


def _gap(j: Joint, c: Cell) -> np.ndarray:
    """The linear form of a cell's gap: mean ceiling − mean weak."""
    return j.e(c.task, right(ceiling_stage(c.strong))) - j.e(c.task, right(weak_stage(c.weak)))


def _pgr_joint(ev: Evidence, use: list[Cell], methods: tuple[str, ...]) -> tuple[dict[str, list[Cell]], Joint]:
    """The cells by task and the joint moments of their weak floors, ceilings and ``methods``' students."""
    g = _by_task(use)
    return g, joint(ev, {t: [col for c in cc for col in (
        right(weak_stage(c.weak)), right(ceiling_stage(c.strong)),
        *(right(student_stage(c.weak, c.strong, m)) for m in methods))] for t, cc in g.items()})


# --------------------------------------------------------------------------- the claims


def claim_1(ev: Evidence, cs: list[Cell], level: float = LEVEL) -> list[Claim]:
    """PGR(xent) > 0: (mean w2s − mean weak) / (mean ceiling − mean weak) over unflagged cells, Fieller."""
    use = [c for c in cs if c.flag is None and _has(ev, c, student_stage(c.weak, c.strong, "xent"))]
    if not use:
        return []
    g, j = _pgr_joint(ev, use, ("xent",))
    num = pooled(j, g, lambda j, c: j.e(c.task, right(student_stage(c.weak, c.strong, "xent")))
                 - j.e(c.task, right(weak_stage(c.weak))))
    iv = stats.ratio_interval(j.moments, num, pooled(j, g, _gap), level)
    return [_row("1", "PGR(xent), pooled over tasks and pairs (ratio of means)", iv, ev,
                 detail=f"{len(use)} of {len(cs)} cells (flagged gaps left out), {len(g)} tasks, {_seeds(ev, list(g))}")]


def _ratio_fn(j: Joint, c: Cell, num: Callable[[Joint, Cell], np.ndarray]) -> Callable[[np.ndarray], float]:
    """x -> num(c)·x / gap(c)·x: a cell's PGR-like ratio as a function of the means."""
    a, b = num(j, c), _gap(j, c)
    return lambda x: float(a @ x) / float(b @ x)


def _slope(ys: list[Callable[[np.ndarray], float]], xs: list[Callable[[np.ndarray], float]],
           groups: list[str]) -> Callable[[np.ndarray], float]:
    """x -> the pooled within-group least-squares slope of y on x (a fixed effect per group):
    Σ_g Σ_i (x_gi − x̄_g) y_gi / Σ_g Σ_i (x_gi − x̄_g)²."""
    gid = np.unique(groups, return_inverse=True)[1]

    def f(m: np.ndarray) -> float:
        y = np.array([fn(m) for fn in ys])
        x = np.array([fn(m) for fn in xs])
        d = x - (np.bincount(gid, x) / np.bincount(gid))[gid]
        sxx = float(d @ d)
        return float(d @ y) / sxx if sxx > 0 else float("nan")

    return f


def _const(v: float) -> Callable[[np.ndarray], float]:
    return lambda x: v


def _linear(v: np.ndarray) -> Callable[[np.ndarray], float]:
    return lambda x: float(v @ x)


def claim_2(ev: Evidence, cs: list[Cell], level: float = LEVEL) -> list[Claim]:
    """Slope of PGR(xent) on log10(strong parameters), one intercept per (task, weak), unflagged cells."""
    use = [c for c in cs if c.flag is None and _has(ev, c, student_stage(c.weak, c.strong, "xent"))]
    fixed: dict[tuple[str, str], list[Cell]] = {}
    for c in use:
        fixed.setdefault((c.task, c.weak), []).append(c)
    use = [c for k, cc in fixed.items() if len({ev.params[x.strong] for x in cc}) >= 2 for c in cc]
    if not use:
        return []
    g, j = _pgr_joint(ev, use, ("xent",))

    def num(j: Joint, c: Cell) -> np.ndarray:
        return j.e(c.task, right(student_stage(c.weak, c.strong, "xent"))) - j.e(c.task, right(weak_stage(c.weak)))

    f = _slope([_ratio_fn(j, c, num) for c in use], [_const(math.log10(ev.params[c.strong])) for c in use],
               [f"{c.task}|{c.weak}" for c in use])
    iv = delta_interval(j.moments, f, level)
    n_groups = len({(c.task, c.weak) for c in use})
    return [_row("2", "slope of PGR(xent) per 10x strong parameters (fixed weak model and task)", iv, ev,
                 detail=f"{len(use)} unflagged cells in {n_groups} (task, weak) groups with >= 2 strong models, "
                        f"{len(g)} tasks; delta method")]


def claim_3(ev: Evidence, cs: list[Cell], level: float = LEVEL) -> list[Claim]:
    """ΔPGR(logconf − xent): its slope on log10(strong/weak parameters) and on the accuracy gap (one
    intercept per task), and its pooled level."""
    use = [c for c in cs if c.flag is None and _has(ev, c, student_stage(c.weak, c.strong, "xent"),
                                                    student_stage(c.weak, c.strong, "logconf"))]
    if not use:
        return []
    g, j = _pgr_joint(ev, use, ("xent", "logconf"))

    def num(j: Joint, c: Cell) -> np.ndarray:
        return (j.e(c.task, right(student_stage(c.weak, c.strong, "logconf")))
                - j.e(c.task, right(student_stage(c.weak, c.strong, "xent"))))

    out = []
    tasks = [c.task for c in use]
    ys = [_ratio_fn(j, c, num) for c in use]
    detail = f"{len(use)} unflagged cells, {len(g)} tasks, {_seeds(ev, list(g))}"
    ratios = [math.log10(ev.params[c.strong] / ev.params[c.weak]) for c in use]
    if any(len({r for r, t in zip(ratios, tasks) if t == task}) >= 2 for task in g):
        f = _slope(ys, [_const(r) for r in ratios], tasks)
        out.append(_row("3", "slope of ΔPGR(logconf − xent) per 10x strong/weak parameters (the compute gap)",
                        delta_interval(j.moments, f, level), ev, detail=detail + "; delta method"))
    if any(sum(t == task for t in tasks) >= 2 for task in g):
        gvecs = [_gap(j, c) for c in use]
        f = _slope(ys, [_linear(10 * v) for v in gvecs], tasks)
        out.append(_row("3", "slope of ΔPGR(logconf − xent) per 10 points of accuracy gap", delta_interval(
            j.moments, f, level), ev, detail=detail + "; delta method (the gap is estimated too)"))
    iv = stats.ratio_interval(j.moments, pooled(j, g, num), pooled(j, g, _gap), level)
    out.append(_row("3", "ΔPGR(logconf − xent), pooled (the level, beside the slopes)", iv, ev, detail=detail))
    return out


def claim_4(ev: Evidence, cs: list[Cell], level: float = LEVEL) -> list[Claim]:
    """Agreement with the weak labels on test where the weak model is wrong vs right (xent), and
    logconf's agreement on the errors vs xent's. All cells (no PGR is formed)."""
    out = []
    use = [c for c in cs if _has(ev, c, student_stage(c.weak, c.strong, "xent"))]
    if not use:
        return out
    g = _by_task(use)

    def cols(c: Cell, methods: tuple[str, ...]) -> list[Col]:
        w = weak_stage(c.weak)
        out = [("wrong", w)]
        for m in methods:
            s = student_stage(c.weak, c.strong, m)
            out += [("agree", s, w, "wrong"), ("agree", s, w, "right")]
        return out

    j = joint(ev, {t: [col for c in cc for col in cols(c, ("xent",))] for t, cc in g.items()})
    wrong = pooled(j, g, lambda j, c: j.e(c.task, ("wrong", weak_stage(c.weak))))
    aw = pooled(j, g, lambda j, c: j.e(c.task, ("agree", student_stage(c.weak, c.strong, "xent"),
                                                weak_stage(c.weak), "wrong")))
    ar = pooled(j, g, lambda j, c: j.e(c.task, ("agree", student_stage(c.weak, c.strong, "xent"),
                                                weak_stage(c.weak), "right")))

    def f(x: np.ndarray) -> float:  # the pooling weights sum to 1: P(weak right) = 1 − P(weak wrong)
        return float(aw @ x) / float(wrong @ x) - float(ar @ x) / (1.0 - float(wrong @ x))

    detail = f"{len(use)} cells, {len(g)} tasks, {_seeds(ev, list(g))}"
    out.append(_row("4", "agreement(xent student, weak) where weak is wrong − where weak is right", delta_interval(
        j.moments, f, level), ev, side="<", detail=detail + "; delta method"))
    both = [c for c in use if _has(ev, c, student_stage(c.weak, c.strong, "logconf"))]
    if both:
        g2 = _by_task(both)
        j2 = joint(ev, {t: [col for c in cc for col in cols(c, ("xent", "logconf"))] for t, cc in g2.items()})

        def diff(j: Joint, c: Cell) -> np.ndarray:
            w = weak_stage(c.weak)
            return (j.e(c.task, ("agree", student_stage(c.weak, c.strong, "logconf"), w, "wrong"))
                    - j.e(c.task, ("agree", student_stage(c.weak, c.strong, "xent"), w, "wrong")))

        iv = stats.ratio_interval(j2.moments, pooled(j2, g2, diff),
                                  pooled(j2, g2, lambda j, c: j.e(c.task, ("wrong", weak_stage(c.weak)))), level)
        out.append(_row("4", "agreement on the weak model's errors: logconf − xent", iv, ev, side="<",
                        detail=f"{len(both)} cells, {len(g2)} tasks, {_seeds(ev, list(g2))}"))
    return out


def largest_gaps(cs: list[Cell], share: float = 1 / 3) -> list[Cell]:
    """Per task, the ⌈share · n⌉ unflagged cells with the largest estimated gaps (at least one)."""
    out = []
    for cc in _by_task([c for c in cs if c.flag is None]).values():
        k = max(1, math.ceil(share * len(cc)))
        out += sorted(cc, key=lambda c: -c.gap.value)[:k]
    return out


def claim_5(ev: Evidence, cs: list[Cell], level: float = LEVEL) -> list[Claim]:
    """For the largest-gap cells: test accuracy of early_stop's oracle − last checkpoint, and the
    share of it that early stopping on weak agreement recovers: (kept − last) / (oracle − last)."""
    def stages(c: Cell) -> list[str]:
        return [checkpoint_stage(c.weak, c.strong, "oracle"), checkpoint_stage(c.weak, c.strong, "last"),
                student_stage(c.weak, c.strong, "early_stop")]

    use = [c for c in largest_gaps(cs) if _has(ev, c, *stages(c))]
    if not use:
        return []
    g = _by_task(use)
    j = joint(ev, {t: [right(s) for c in cc for s in stages(c)] for t, cc in g.items()})

    def diff(a: int, b: int) -> Callable[[Joint, Cell], np.ndarray]:
        return lambda j, c: j.e(c.task, right(stages(c)[a])) - j.e(c.task, right(stages(c)[b]))

    detail = (f"{len(use)} cells (per task the third of unflagged pairs with the largest gaps), {len(g)} tasks, "
              f"{_seeds(ev, list(g))}")
    oracle_last = pooled(j, g, diff(0, 1))
    return [
        _row("5", "test accuracy: oracle checkpoint − last checkpoint (points as fractions)",
             stats.contrast_interval(j.moments, oracle_last, level), ev, detail=detail),
        _row("5", "share of (oracle − last) recovered by early stopping on weak agreement",
             stats.ratio_interval(j.moments, pooled(j, g, diff(2, 1)), oracle_last, level), ev, detail=detail),
    ]


def claim_6(ev: Evidence, cs: list[Cell], level: float = LEVEL) -> list[Claim]:
    """ΔPGR(bootstrap − xent) for the weakest → strongest pair (bootstrap climbs every intermediate model)."""
    if len(ev.ladder) < 3:
        return []
    w, s = ev.ladder[0], ev.ladder[-1]
    ends = [c for c in cs if (c.weak, c.strong) == (w, s)]
    use = [c for c in ends if c.flag is None and _has(ev, c, student_stage(w, s, "xent"), student_stage(w, s, "bootstrap"))]
    if not use:
        return []
    g = _by_task(use)
    j = joint(ev, {t: [right(weak_stage(w)), right(ceiling_stage(s)), right(student_stage(w, s, "xent")),
                       right(student_stage(w, s, "bootstrap"))] for t in g})
    num = pooled(j, g, lambda j, c: j.e(c.task, right(student_stage(w, s, "bootstrap")))
                 - j.e(c.task, right(student_stage(w, s, "xent"))))
    den = pooled(j, g, lambda j, c: j.e(c.task, right(ceiling_stage(s))) - j.e(c.task, right(weak_stage(w))))
    return [_row("6", f"ΔPGR(bootstrap − xent), {w} → {s} through {', '.join(ev.ladder[1:-1])}",
                 stats.ratio_interval(j.moments, num, den, level), ev,
                 detail=f"{len(use)} of {len(ends)} tasks (flagged gaps left out), {_seeds(ev, list(g))}")]


BUILDERS = (claim_1, claim_2, claim_3, claim_4, claim_5, claim_6)


def evaluate(ev: Evidence, threshold: float = GAP_THRESHOLD, level: float = LEVEL) -> tuple[list[Claim], list[str]]:
    """Every claim that applies to ``ev`` (rows in claim order) and, for each that does not, why."""
    cs = cells(ev, threshold, level)
    rows: list[Claim] = []
    missing = []
    for n, build in enumerate(BUILDERS, start=1):
        got = build(ev, cs, level)
        rows += got
        if not got:
            missing.append(f"claim {n} ({ev.mode}): {_why(n, ev, cs)}")
    return rows, missing


def _why(n: int, ev: Evidence, cs: list[Cell]) -> str:
    if not cs:
        return "no complete (weak, strong) cell"
    if all(c.flag is not None for c in cs) and n in (1, 2, 3, 5, 6):
        return "every cell's gap is flagged (no PGR)"
    return {1: "no unflagged cell with an xent student",
            2: "no weak model supervises two or more strong models with unflagged gaps",
            3: "no cell with both xent and logconf students and an unflagged gap",
            4: "no cell with an xent student",
            5: "no early_stop student with its oracle and last checkpoints among the largest-gap cells",
            6: "needs a ladder of 3+ models and a bootstrap student on the weakest -> strongest pair "
               "with an unflagged gap"}[n]
