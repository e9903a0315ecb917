"""Statistics a reviewer can trust: bootstrap intervals, aggregates, the small-gap flag,
paired method comparisons and the imitation / misfit diagnostics.

Conventions: accuracies are fractions; an interval is the percentile bootstrap interval
``[q_{(1-level)/2}, q_{(1+level)/2}]`` of the statistic over ``n_boot`` resamples (default 95%).
Within a run the resampling unit is the test example; across runs it is the seed (the run).
Every function is a pure function of arrays or DataFrames and takes an explicit ``seed``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .errors import W2SError

LEVEL = 0.95
N_BOOT = 1000
GAP_THRESHOLD = 0.02  # 2 accuracy points


@dataclass(frozen=True)
class Interval:
    """A point estimate with its bootstrap interval."""

    value: float
    lo: float
    hi: float

    def contains(self, x: float) -> bool:
        return bool(self.lo <= x <= self.hi)


def percentile_interval(samples: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """The percentile interval of ``samples`` (NaNs ignored): (q_{α/2}, q_{1−α/2}), α = 1 − level."""
    if not 0 < level < 1:
        raise W2SError(f"confidence level {level}: use a number between 0 and 1, e.g. 0.95")
    s = np.asarray(samples, dtype=float)
    s = s[np.isfinite(s)]
    if not len(s):
        return float("nan"), float("nan")
    a = (1 - level) / 2
    lo, hi = np.quantile(s, [a, 1 - a])
    return float(lo), float(hi)


def bootstrap(values: Sequence[float] | np.ndarray, stat: Callable[[np.ndarray], np.ndarray] | str = "mean",
              n_boot: int = N_BOOT, seed: int = 0, level: float = LEVEL) -> Interval:
    """Bootstrap interval of a statistic of i.i.d. ``values`` (resampled with replacement).

    ``stat`` maps a (B, n) array to (B,) — or is "mean" / "median". With one value the interval
    collapses to that value (there is no spread to resample).
    """
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    fn = _stat(stat)
    if not len(x):
        return Interval(float("nan"), float("nan"), float("nan"))
    point = float(fn(x[None, :])[0])
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(x), size=(n_boot, len(x)))
    lo, hi = percentile_interval(fn(x[idx]), level)
    return Interval(point, lo, hi)


def _stat(stat: Callable[[np.ndarray], np.ndarray] | str) -> Callable[[np.ndarray], np.ndarray]:
    if callable(stat):
        return stat
    if stat == "mean":
        return lambda a: np.mean(a, axis=1)
    if stat == "median":
        return lambda a: np.median(a, axis=1)
    raise W2SError(f"statistic {stat!r}: use mean or median")


# --------------------------------------------------------------------------- metrics


def ece(labels: np.ndarray, probs: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error with equal-width confidence bins.

    conf_i = max_k p_ik, ŷ_i = argmax_k p_ik;  ECE = Σ_b (n_b / N) · |acc_b − conf_b|,
    where acc_b and conf_b are the accuracy and the mean confidence of the n_b examples whose
    confidence falls in bin b = ((b−1)/B, b/B].
    """
    labels = np.asarray(labels)
    probs = np.asarray(probs, dtype=float)
    if not len(labels):
        return float("nan")
    conf = probs.max(axis=1)
    right = probs.argmax(axis=1) == labels
    which = np.clip(np.ceil(conf * bins).astype(int) - 1, 0, bins - 1)
    total = 0.0
    for b in range(bins):
        m = which == b
        if m.any():
            total += m.mean() * abs(right[m].mean() - conf[m].mean())
    return float(total)


# --------------------------------------------------------------------------- within a run


@dataclass
class RunBootstrap:
    """Bootstrap of one run over its test examples (the same resamples for every stage: paired)."""

    weak_acc: Interval
    ceiling_acc: Interval
    gap: Interval
    """ceiling − weak accuracy."""
    w2s_acc: dict[str, Interval]
    pgr: dict[str, Interval]
    delta_pgr: dict[str, Interval]
    """PGR_m − PGR_reference on the same resamples (empty without the reference method)."""


def bootstrap_run(weak_right: np.ndarray, ceiling_right: np.ndarray, students_right: dict[str, np.ndarray],
                  n_boot: int = N_BOOT, seed: int = 0, level: float = LEVEL,
                  reference: str = "xent") -> RunBootstrap:
    """Paired bootstrap of accuracies and PGR over the N test examples of one run.

    Each resample r draws N indices with replacement; on it acc^r_s = mean of s's correctness,
    gap^r = acc^r_ceiling − acc^r_weak and PGR^r_m = (acc^r_m − acc^r_weak) / gap^r
    (NaN where gap^r = 0). ΔPGR^r_m = PGR^r_m − PGR^r_reference. Intervals are percentiles of the
    resampled values; the point estimates use all examples.
    """
    w = np.asarray(weak_right, dtype=float)
    c = np.asarray(ceiling_right, dtype=float)
    n = len(w)
    if n == 0 or len(c) != n or any(len(s) != n for s in students_right.values()):
        raise W2SError("bootstrap_run: the correctness vectors must be non-empty and of equal length")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n), dtype=np.int64)

    def resampled(x: np.ndarray) -> np.ndarray:
        return x[idx].mean(axis=1)

    def iv(point: float, samples: np.ndarray) -> Interval:
        return Interval(float(point), *percentile_interval(samples, level))

    wr, cr = resampled(w), resampled(c)
    gap_r = cr - wr
    with np.errstate(divide="ignore", invalid="ignore"):
        gap_safe = np.where(np.abs(gap_r) < 1e-12, np.nan, gap_r)
        gap = c.mean() - w.mean()
        accs, pgrs, pgr_r = {}, {}, {}
        for m, s in students_right.items():
            s = np.asarray(s, dtype=float)
            sr = resampled(s)
            accs[m] = iv(s.mean(), sr)
            pgr_r[m] = (sr - wr) / gap_safe
            point = (s.mean() - w.mean()) / gap if abs(gap) > 1e-12 else float("nan")
            pgrs[m] = iv(point, pgr_r[m])
    deltas = {}
    if reference in pgrs:
        for m in pgrs:
            if m != reference:
                deltas[m] = iv(pgrs[m].value - pgrs[reference].value, pgr_r[m] - pgr_r[reference])
    return RunBootstrap(iv(w.mean(), wr), iv(c.mean(), cr), iv(gap, gap_r), accs, pgrs, deltas)


def small_gap(gap: Interval, threshold: float = GAP_THRESHOLD) -> bool:
    """True when PGR is unreliable: ceiling − weak < ``threshold`` or 0 lies in the gap's interval.

    PGR divides by the gap, so when the gap is small or not distinguishable from zero the ratio
    is dominated by noise (it can take any sign and size).
    """
    if not np.isfinite(gap.value):
        return True
    return bool(gap.value < threshold or (np.isfinite(gap.lo) and gap.lo <= 0.0))


# --------------------------------------------------------------------------- across runs

RUN_KEYS = ["task", "weak", "strong", "mode"]


def aggregate_seeds(table: pd.DataFrame, value: str = "pgr_acc", by: Sequence[str] = (*RUN_KEYS, "method"),
                    n_boot: int = N_BOOT, seed: int = 0, level: float = LEVEL,
                    include_flagged: bool = False) -> pd.DataFrame:
    """Mean and median of ``value`` over seeds per group, each with a bootstrap over seeds.

    Rows with ``flagged`` true are left out unless ``include_flagged``; ``n`` counts the seeds used
    and ``n_flagged`` those left out.
    """
    rows = []
    for key, g in table.groupby(list(by), sort=True):
        key = key if isinstance(key, tuple) else (key,)
        used, n_flag = _unflagged(g, include_flagged)
        vals = used[value].to_numpy(dtype=float)
        mean = bootstrap(vals, "mean", n_boot, seed, level)
        med = bootstrap(vals, "median", n_boot, seed, level)
        rows.append({**dict(zip(by, key)), "n": int(np.isfinite(vals).sum()), "n_flagged": n_flag,
                     "mean": mean.value, "mean_lo": mean.lo, "mean_hi": mean.hi,
                     "median": med.value, "median_lo": med.lo, "median_hi": med.hi})
    return pd.DataFrame(rows, columns=[*by, "n", "n_flagged", "mean", "mean_lo", "mean_hi",
                                       "median", "median_lo", "median_hi"])


def aggregate_pairs(table: pd.DataFrame, value: str = "pgr_acc", by: Sequence[str] = ("task", "method"),
                    n_boot: int = N_BOOT, seed: int = 0, level: float = LEVEL,
                    include_flagged: bool = False) -> pd.DataFrame:
    """Median and mean over model pairs of each pair's mean over seeds (the paper's summary).

    Let x̄_p be the mean of ``value`` over the seeds of pair p = (weak, strong, mode). The point
    estimates are median_p x̄_p and mean_p x̄_p. The bootstrap is hierarchical over seeds: each
    resample redraws every pair's seeds with replacement, recomputes x̄_p, and takes the
    median / mean over pairs.
    """
    rng = np.random.default_rng(seed)
    rows = []
    pair_keys = [k for k in ("weak", "strong", "mode") if k not in by]
    for key, g in table.groupby(list(by), sort=True):
        key = key if isinstance(key, tuple) else (key,)
        used, n_flag = _unflagged(g, include_flagged)
        groups = [v[value].to_numpy(dtype=float) for _, v in used.groupby(pair_keys)] if len(used) else []
        groups = [v[np.isfinite(v)] for v in groups]
        groups = [v for v in groups if len(v)]
        if not groups:
            rows.append({**dict(zip(by, key)), "pairs": 0, "n": 0, "n_flagged": n_flag})
            continue
        means = np.array([v.mean() for v in groups])
        boot = np.stack([v[rng.integers(0, len(v), size=(n_boot, len(v)))].mean(axis=1) for v in groups], axis=1)
        med_lo, med_hi = percentile_interval(np.median(boot, axis=1), level)
        mean_lo, mean_hi = percentile_interval(boot.mean(axis=1), level)
        rows.append({**dict(zip(by, key)), "pairs": len(groups), "n": int(sum(len(v) for v in groups)),
                     "n_flagged": n_flag, "median": float(np.median(means)), "median_lo": med_lo,
                     "median_hi": med_hi, "mean": float(means.mean()), "mean_lo": mean_lo, "mean_hi": mean_hi})
    return pd.DataFrame(rows, columns=[*by, "pairs", "n", "n_flagged", "median", "median_lo", "median_hi",
                                       "mean", "mean_lo", "mean_hi"])


def _unflagged(g: pd.DataFrame, include_flagged: bool) -> tuple[pd.DataFrame, int]:
    if "flagged" not in g or include_flagged:
        return g, 0
    flagged = g["flagged"].fillna(False).astype(bool)
    return g[~flagged], int(flagged.sum())


def paired_deltas(table: pd.DataFrame, value: str = "pgr_acc", reference: str = "xent") -> pd.DataFrame:
    """ΔPGR of every method against ``reference`` on the same runs.

    A run is (task, weak, strong, mode, seed); Δ_run,m = value_run,m − value_run,reference.
    Runs without the reference method are dropped. A run flagged (small gap) stays flagged.
    """
    keys = [*RUN_KEYS, "seed"]
    ref = table[table["method"] == reference].set_index(keys)[value].rename("reference")
    other = table[table["method"] != reference]
    merged = other.join(ref, on=keys, how="inner")
    merged = merged.assign(delta=merged[value] - merged["reference"])
    cols = [*keys, "method", "delta"] + (["flagged"] if "flagged" in merged else [])
    return merged[cols].reset_index(drop=True)


def compare_methods(table: pd.DataFrame, value: str = "pgr_acc", reference: str = "xent",
                    n_boot: int = N_BOOT, seed: int = 0, level: float = LEVEL,
                    include_flagged: bool = False) -> pd.DataFrame:
    """Per method: mean ΔPGR against ``reference`` with a bootstrap over runs (paired by run),
    the share of runs where it beats the reference, and the number of tasks it wins.

    A method wins a task when its mean Δ over that task's runs is > 0; ``tasks_best`` counts the
    tasks where its mean ``value`` is the highest of all methods (reference included).
    """
    d = paired_deltas(table, value, reference)
    if not include_flagged and "flagged" in d:
        d = d[~d["flagged"].fillna(False).astype(bool)]
    used = table if include_flagged or "flagged" not in table else table[~table["flagged"].fillna(False).astype(bool)]
    means = used.groupby(["task", "method"])[value].mean().dropna().reset_index()
    best = means.loc[means.groupby("task")[value].idxmax().dropna()] if len(means) else means
    rows = []
    for m, g in d.groupby("method", sort=True):
        iv = bootstrap(g["delta"].to_numpy(), "mean", n_boot, seed, level)
        per_task = g.groupby("task")["delta"].mean()
        rows.append({"method": m, "reference": reference, "runs": int(g["delta"].notna().sum()),
                     "delta_mean": iv.value, "delta_lo": iv.lo, "delta_hi": iv.hi,
                     "win_rate": float((g["delta"] > 0).mean()) if len(g) else float("nan"),
                     "tasks": int(per_task.notna().sum()), "tasks_won": int((per_task > 0).sum()),
                     "tasks_best": int((best["method"] == m).sum())})
    if reference in set(table["method"]):
        rows.append({"method": reference, "reference": reference, "runs": int((used["method"] == reference).sum()),
                     "delta_mean": 0.0, "delta_lo": 0.0, "delta_hi": 0.0, "win_rate": float("nan"),
                     "tasks": int(used[used["method"] == reference]["task"].nunique()), "tasks_won": 0,
                     "tasks_best": int((best["method"] == reference).sum())})
    return pd.DataFrame(rows, columns=["method", "reference", "runs", "delta_mean", "delta_lo", "delta_hi",
                                       "win_rate", "tasks", "tasks_won", "tasks_best"])


# --------------------------------------------------------------------------- diagnostics


def imitation(labels: np.ndarray, weak_probs: np.ndarray, student_probs: np.ndarray) -> dict[str, float]:
    """What the student does with its supervisor's mistakes, on test.

    agreement_weak_right / _wrong = P(ŷ_s = ŷ_w | weak right / wrong) (the paper's imitation split);
    fixed = P(student right ∧ weak wrong) over all test examples; fixed_of_wrong = P(student right |
    weak wrong); broken = P(student wrong ∧ weak right).
    """
    y = np.asarray(labels)
    w = np.argmax(weak_probs, axis=1)
    s = np.argmax(student_probs, axis=1)
    wr, sr, agree = w == y, s == y, w == s

    def mean(x: np.ndarray) -> float:
        return float(x.mean()) if len(x) else float("nan")

    return {"agreement": mean(agree), "agreement_weak_right": mean(agree[wr]),
            "agreement_weak_wrong": mean(agree[~wr]), "fixed": mean(sr & ~wr),
            "fixed_of_wrong": mean(sr[~wr]), "broken": mean(~sr & wr)}


def misfit(weak_probs: np.ndarray, student_probs: np.ndarray, eps: float = 1e-7) -> dict[str, float]:
    """Misfit between student and supervisor on the transfer set (Charikar et al. 2024).

    misfit_kl = (1/N) Σ_i KL(p_w,i ‖ p_s,i) = (1/N) Σ_i Σ_k p_w,ik (log p_w,ik − log p_s,ik), the part
    of the student's training loss it did not fit; misfit_sq = (1/N) Σ_i ‖p_s,i − p_w,i‖² (the
    squared-loss version of their theorem: gain ≥ misfit for a convex strong hypothesis class);
    disagreement = P(ŷ_s ≠ ŷ_w).
    """
    pw = np.clip(np.asarray(weak_probs, dtype=float), eps, 1.0)
    ps = np.clip(np.asarray(student_probs, dtype=float), eps, 1.0)
    if not len(pw):
        return {"misfit_kl": float("nan"), "misfit_sq": float("nan"), "disagreement": float("nan")}
    kl = (pw * (np.log(pw) - np.log(ps))).sum(axis=1)
    sq = ((ps - pw) ** 2).sum(axis=1)
    return {"misfit_kl": float(kl.mean()), "misfit_sq": float(sq.mean()),
            "disagreement": float((pw.argmax(1) != ps.argmax(1)).mean())}


def correlation(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray, n_boot: int = N_BOOT,
                seed: int = 0, level: float = LEVEL) -> Interval:
    """Pearson r = cov(x, y) / (σ_x σ_y) over finite pairs, with a bootstrap over pairs (NaN if n < 3)."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(x) < 3 or x.std() == 0 or y.std() == 0:
        return Interval(float("nan"), float("nan"), float("nan"))

    def r(ix: np.ndarray) -> np.ndarray:
        a, b = x[ix], y[ix]
        a = a - a.mean(axis=1, keepdims=True)
        b = b - b.mean(axis=1, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            return (a * b).sum(1) / np.sqrt((a * a).sum(1) * (b * b).sum(1))

    point = float(r(np.arange(len(x))[None, :])[0])
    idx = np.random.default_rng(seed).integers(0, len(x), size=(n_boot, len(x)))
    return Interval(point, *percentile_interval(r(idx), level))
