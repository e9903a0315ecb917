"""Statistics a reviewer can trust: intervals of means and of ratios of means (PGR), the small-gap
flag, calibration, and the imitation / misfit diagnostics.

Accuracies are fractions. Test sets are drawn in groups (a passage and its questions), runs in
seeds: ``seed_moments`` estimates the covariance of a mean over seeds from both, ``ratio_interval``
bounds a ratio of means (Fieller's interval), ``flag_reason`` is the one small-gap rule. Which
interval holds its level with 3 to 5 seeds was decided by simulation: ``bench/coverage.py``.
The bootstrap helpers (``bootstrap``, ``correlation``) serve descriptive plots only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

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


# --------------------------------------------------------------------------- ratios of means
#
# A run's accuracies come from a test set sampled in groups (a passage and its questions), and a
# run's trained models from a seed: the mean of K accuracies over S seeds varies with both. The
# estimate of its covariance is kept as a sum of parts, each with the degrees of freedom of its own
# estimate, so that a ratio or a difference of means gets a t quantile with Satterthwaite's df.
# Why these intervals (and not percentile bootstraps over 3 seeds): bench/coverage.py.

INTERVAL_METHOD = "fieller-vc"
"""How intervals of ratios of means are computed (chosen by simulation, bench/coverage.py): Fieller's
interval, t quantile with Satterthwaite's degrees of freedom, the covariance of the means from
variance components (``seed_moments(between="vc")``)."""


@dataclass(frozen=True)
class Part:
    """One part of the covariance of an estimated mean vector."""

    cov: np.ndarray
    """(K, K) covariance of the estimated mean vector."""
    df: float
    """Degrees of freedom of this part's estimate (inf: known exactly)."""


@dataclass(frozen=True)
class Moments:
    """An estimated mean vector of K accuracies and the covariance of that estimate."""

    mean: np.ndarray
    """(K,) means (over seeds; over tasks for a combination)."""
    parts: tuple[Part, ...]
    """The covariance of ``mean`` is the sum of the parts' ``cov``; empty when it cannot be estimated."""
    n_seeds: int

    def cov(self, c: np.ndarray, d: np.ndarray) -> float:
        """cov(c·mean, d·mean) = Σ_parts cᵀ V_p d (NaN without parts)."""
        if not self.parts:
            return float("nan")
        return float(sum(c @ p.cov @ d for p in self.parts))

    def var(self, c: np.ndarray) -> float:
        return self.cov(c, c)

    def df(self, c: np.ndarray) -> float:
        """Satterthwaite's degrees of freedom of var(c·mean): (Σ v_p)² / Σ v_p² / df_p, v_p = cᵀ V_p c."""
        v = [max(float(c @ p.cov @ c), 0.0) for p in self.parts]
        den = sum(x * x / p.df for x, p in zip(v, self.parts) if np.isfinite(p.df) and p.df > 0)
        if sum(v) <= 0:  # no variance at all: the value is known (a zero-width interval)
            return float("inf")
        return float(sum(v) ** 2 / den) if den > 0 else float("inf")


@dataclass(frozen=True)
class GroupedRun:
    """One run's test correctness summed by group: the unit the test set was sampled in."""

    keys: np.ndarray
    """(G,) group ids (an example's id when the task has no groups)."""
    sizes: np.ndarray
    """(G,) examples per group."""
    sums: np.ndarray
    """(G, K) correct predictions per group of each of the K stages."""

    @property
    def acc(self) -> np.ndarray:
        """(K,) accuracies: Σ_g sums_g / Σ_g sizes_g."""
        return self.sums.sum(0) / self.sizes.sum()


def group_sums(groups: Sequence[Any] | np.ndarray, right: np.ndarray) -> GroupedRun:
    """Sum per-example correctness ``right`` (n, K) (1 = correct) over the ``groups`` (n,) of the examples."""
    right = np.asarray(right, dtype=float)
    if right.ndim == 1:
        right = right[:, None]
    keys, inv = np.unique(np.asarray(groups).astype(str), return_inverse=True)
    sums = np.zeros((len(keys), right.shape[1]))
    np.add.at(sums, inv, right)
    return GroupedRun(keys, np.bincount(inv, minlength=len(keys)).astype(float), sums)


def cluster_cov(run: GroupedRun) -> np.ndarray:
    """Cluster-robust covariance (K, K) of a run's accuracy vector, groups as clusters.

    With N = Σ_g n_g and residuals r_g = sums_g − n_g · acc:  V = G/(G−1) · Σ_g r_g r_gᵀ / N².
    """
    n = run.sizes.sum()
    g = len(run.sizes)
    if g < 2:
        return np.full((run.sums.shape[1],) * 2, np.nan)
    r = run.sums - run.sizes[:, None] * run.acc
    return g / (g - 1) * (r.T @ r) / n**2


def _psd(v: np.ndarray) -> np.ndarray:
    """The nearest positive semi-definite matrix (negative eigenvalues set to 0)."""
    w, q = np.linalg.eigh((v + v.T) / 2)
    return (q * np.clip(w, 0.0, None)) @ q.T


def seed_moments(acc: np.ndarray, runs: Sequence[GroupedRun] | None = None, between: str = "vc") -> Moments:
    """The mean over S seeds of K accuracies, with the covariance of that mean.

    acc (S, K): each seed's accuracies; runs: the same runs' grouped test correctness (optional).
    A seed's accuracy = truth + its models' shift δ_s (seed-to-seed) + test noise e_s; e_s has a part
    the seeds share when their test sets overlap and a part of their own, so
    Var(mean) = Σ_δ/S + Σ_own/S + Σ_shared. Estimates, with W̄ the mean of the runs' cluster
    covariances (``cluster_cov``, df Σ(G_s − 1)), C_B the sample covariance of the seeds' accuracy
    vectors (df S − 1) and V_T the cluster-robust covariance of the test noise of the mean over the
    G' distinct groups of all runs (G'/(G'−1) Σ_g u_g u_gᵀ, u_g = Σ_s (sums_sg − n_sg acc_s)/(S N_s)):

        Σ_shared = max(0, (S·V_T − W̄)/(S − 1))   (0 when the test sets are disjoint; df G' − 1)
        Σ_own    = max(0, W̄ − Σ_shared)
        between="vc" (default):  V = Σ_own/S + max(0, C_B − Σ_own)/S (df S − 1) + Σ_shared
        between="t":             V = C_B/S (df S − 1) + Σ_shared
        between="none":          V = V_T (test noise only; what a bootstrap over test examples sees)

    (max(0, ·) of a matrix: negative eigenvalues set to 0.) "vc" splits the seed-to-seed spread into
    the test noise, known to many df, and the models' own spread, with S − 1 df: with 3 seeds its
    intervals are about half as wide as "t" at the same coverage (bench/coverage.py). One seed: the
    run's cluster covariance (df G − 1), which covers the test sample only. Without ``runs``:
    C_B/S for every ``between`` but "none" (nothing is known of the test noise).
    """
    acc = np.asarray(acc, dtype=float)
    s, k = acc.shape
    if s == 0:
        return Moments(np.full(k, np.nan), (), 0)
    mean = acc.mean(0)
    runs = list(runs) if runs is not None else None
    if runs is not None and len(runs) != s:
        raise W2SError(f"seed_moments: {s} seeds but {len(runs)} grouped runs")
    if s == 1:
        if runs is None or len(runs[0].sizes) < 2:
            return Moments(mean, (), 1)
        return Moments(mean, (Part(cluster_cov(runs[0]), len(runs[0].sizes) - 1.0),), 1)
    cb = np.cov(acc, rowvar=False, ddof=1).reshape(k, k)
    if runs is None:
        return Moments(mean, () if between == "none" else (Part(cb / s, s - 1.0),), s)
    w_bar = np.mean([cluster_cov(r) for r in runs], axis=0)  # each run's test noise
    df_test = float(sum(len(r.sizes) - 1 for r in runs))
    keys = np.concatenate([r.keys for r in runs])
    uniq, inv = np.unique(keys, return_inverse=True)
    shared = np.zeros((k, k))
    v_t = None
    if between == "none" or len(uniq) < len(keys):  # the seeds share test groups (or only test noise is wanted)
        u = np.zeros((len(uniq), k))
        np.add.at(u, inv, np.concatenate([(r.sums - r.sizes[:, None] * r.acc) / (s * r.sizes.sum()) for r in runs]))
        v_t = len(uniq) / max(len(uniq) - 1, 1) * (u.T @ u)
        if len(uniq) < len(keys):
            shared = _psd((s * v_t - w_bar) / (s - 1))
    if between == "none":
        return Moments(mean, (Part(v_t, df_test),), s)
    shared_part = (Part(shared, len(uniq) - 1.0),) if v_t is not None and len(uniq) < len(keys) else ()
    if between == "vc":
        spec = _psd(w_bar - shared)  # the test noise of one seed that the others do not share
        return Moments(mean, (Part(spec / s, df_test), Part(_psd(cb - spec) / s, s - 1.0), *shared_part), s)
    if between != "t":
        raise W2SError(f"seed_moments: between={between!r}; use t, vc or none")
    return Moments(mean, (Part(cb / s, s - 1.0), *shared_part), s)


def combine(moments: Sequence[Moments], dependent: bool = False) -> Moments:
    """The mean of T estimated mean vectors: mean = (1/T) Σ_t m_t.

    Independent estimates (tasks: their own data, models and test sets): covariance (1/T²) Σ_t V_t,
    each part keeping its degrees of freedom. ``dependent=True``, for estimates that share seeds or
    test sets but cannot be paired seed by seed (``pool_seeds``): (1/T) Σ_t V_t, the bound that holds
    whatever their correlation (Cauchy–Schwarz: Var((1/T) Σ_t c·m_t) ≤ ((1/T) Σ_t sd_t)² ≤
    (1/T) Σ_t sd_t²), each part's df divided by T (T copies of one estimate keep its df)."""
    ms = list(moments)
    if not ms:
        raise W2SError("combine: no estimates to combine")
    t = len(ms)
    scale, df_scale = (t, t) if dependent else (t**2, 1)
    parts = (tuple(Part(p.cov / scale, p.df / df_scale) for m in ms for p in m.parts) if all(m.parts for m in ms)
             else ())
    return Moments(np.mean([m.mean for m in ms], axis=0), parts, sum(m.n_seeds for m in ms))


def mean_run(runs: Sequence[GroupedRun]) -> GroupedRun:
    """The mean of T runs' accuracy vectors (runs of one seed, e.g. the model pairs of a task) as one
    GroupedRun, so that ``cluster_cov`` and ``seed_moments`` see the test noise of that mean.

    With N̄ = mean_t N_t, each group g (of the union of the runs' groups) gets size
    n'_g = (N̄/T) Σ_t n_tg/N_t and residual u_g = (N̄/T) Σ_t (sums_tg − n_tg acc_t)/N_t, the exact
    test noise of the mean; sums'_g = u_g + n'_g · ā, so that Σ_g sums'_g / Σ_g n'_g = ā = (1/T) Σ_t acc_t.
    Runs on the same test set share its groups: their noise adds up within a group before squaring.
    """
    runs = list(runs)
    if len(runs) == 1:
        return runs[0]
    keys, inv = np.unique(np.concatenate([r.keys for r in runs]), return_inverse=True)
    k = runs[0].sums.shape[1]
    t = len(runs)
    n_bar = float(np.mean([r.sizes.sum() for r in runs]))
    sizes, resid = np.zeros(len(keys)), np.zeros((len(keys), k))
    at = 0
    for r in runs:
        idx = inv[at:at + len(r.keys)]
        at += len(r.keys)
        n = r.sizes.sum()
        np.add.at(sizes, idx, n_bar / (t * n) * r.sizes)
        np.add.at(resid, idx, n_bar / (t * n) * (r.sums - r.sizes[:, None] * r.acc))
    mean = np.mean([r.acc for r in runs], axis=0)  # (K,)
    return GroupedRun(keys, sizes, resid + sizes[:, None] * mean)


def pool_seeds(acc: Sequence[np.ndarray], runs: Sequence[Sequence[GroupedRun]] | None = None,
               between: str = "vc") -> Moments:
    """The mean of T estimates over the same S seeds (the model pairs of one task), with a covariance
    that holds when they are correlated: the pairs of a seed share its test examples and, pairs with
    the same weak model, its weak floor. Each seed's T accuracy vectors (and grouped runs, ``mean_run``)
    are averaged first, then ``seed_moments`` treats the S seed means as one experiment, so the
    spread over seeds and the shared test noise carry every cross-pair covariance.

    acc: T arrays (S, K), rows in the same seed order; runs: T lists of S grouped runs, or None.
    """
    acc = [np.asarray(a, dtype=float) for a in acc]
    if not acc or any(a.shape != acc[0].shape for a in acc):
        raise W2SError("pool_seeds: every estimate needs the same seeds and columns")
    mean = np.mean(acc, axis=0)  # (S, K)
    if runs is None:
        return seed_moments(mean, None, between)
    per_seed = [mean_run([r[s] for r in runs]) for s in range(mean.shape[0])]
    return seed_moments(mean, per_seed, between)


def t_quantile(df: float, level: float = LEVEL) -> float:
    """The two-sided ``level`` quantile of Student's t with ``df`` degrees of freedom (normal for df = ∞)."""
    from scipy.special import ndtri, stdtrit

    if not df > 0:
        return float("nan")
    p = 0.5 + level / 2
    return float(ndtri(p)) if not np.isfinite(df) else float(stdtrit(df, p))


def contrast_interval(m: Moments, c: np.ndarray, level: float = LEVEL) -> Interval:
    """c·mean with its t interval: c·mean ± t_{df, level} · sqrt(cᵀ V c), df by Satterthwaite."""
    c = np.asarray(c, dtype=float)
    value = float(c @ m.mean)
    v = m.var(c)
    if not (np.isfinite(v) and np.isfinite(value)):
        return Interval(value, float("nan"), float("nan"))
    half = t_quantile(m.df(c), level) * np.sqrt(max(v, 0.0))
    return Interval(value, value - half, value + half)


def ratio_interval(m: Moments, num: np.ndarray, den: np.ndarray, level: float = LEVEL,
                   kind: str = "fieller") -> Interval:
    """R = (num·mean) / (den·mean) with its interval (NaN bounds when the interval is unbounded).

    Fieller: the set of R with (a − R b)² ≤ q² (v_aa − 2 R v_ab + R² v_bb), a = num·mean,
    b = den·mean, v the covariance of (a, b), q = t_{df, level}, df by Satterthwaite for a − R̂ b.
    It is an interval exactly when b² > q² v_bb (b's own t interval excludes 0), else unbounded.
    ``kind="delta"``: R ± q · sqrt(v_aa − 2 R v_ab + R² v_bb) / |b|.
    """
    num, den = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    a, b = float(num @ m.mean), float(den @ m.mean)
    r = a / b if b != 0 and np.isfinite(b) else float("nan")
    vaa, vbb, vab = m.var(num), m.var(den), m.cov(num, den)
    if not (np.isfinite(r) and np.isfinite(vaa) and np.isfinite(vbb)):
        return Interval(r, float("nan"), float("nan"))
    q = t_quantile(m.df(num - r * den), level)
    if not np.isfinite(q):
        return Interval(r, float("nan"), float("nan"))
    if kind == "delta":
        half = q * np.sqrt(max(vaa - 2 * r * vab + r * r * vbb, 0.0)) / abs(b)
        return Interval(r, r - half, r + half)
    if kind != "fieller":
        raise W2SError(f"ratio interval {kind!r}: use fieller or delta")
    qa = b * b - q * q * vbb
    if qa <= 0:
        return Interval(r, float("nan"), float("nan"))
    qb = -2 * (a * b - q * q * vab)
    qc = a * a - q * q * vaa
    disc = max(qb * qb - 4 * qa * qc, 0.0)
    lo, hi = (-qb - np.sqrt(disc)) / (2 * qa), (-qb + np.sqrt(disc)) / (2 * qa)
    return Interval(r, float(min(lo, r)), float(max(hi, r)))


def flag_reason(gap: Interval, threshold: float = GAP_THRESHOLD) -> str | None:
    """Why a PGR over this ceiling − weak ``gap`` is unreliable, or None when it is not.

    PGR divides by the gap: when the gap is under ``threshold`` (2 points) or its 95% interval
    includes 0, the ratio is dominated by noise (it can take any sign and size), so it is not shown.
    """
    if not np.isfinite(gap.value):
        return "no gap"
    if gap.value < threshold:
        return f"gap under {100 * threshold:g} points"
    if not np.isfinite(gap.lo):
        return "no interval for the gap"
    if gap.lo <= 0:
        return "gap interval includes 0"
    return None


def pgr_flag_reason(gap: Interval, pgr: Interval | None, threshold: float = GAP_THRESHOLD) -> str | None:
    """The one reliability rule of a PGR (runs, aggregates, the SQLite view, bench/coverage.py): the
    gap's rule (:func:`flag_reason`), then "no bounded PGR interval" when ``pgr`` (its Fieller interval,
    NaN bounds when unbounded or not computed) has no finite bounds: a PGR is never shown without its
    interval. ``pgr`` None: only the gap's rule applies. For one run both intervals use the same t
    quantile (G − 1 df), so a run whose gap interval excludes 0 has a bounded PGR interval whenever
    it has one at all; aggregates can differ (the gap's df and the ratio's Satterthwaite df differ)."""
    reason = flag_reason(gap, threshold)
    if reason is None and pgr is not None and np.isfinite(pgr.value) and not (np.isfinite(pgr.lo)
                                                                               and np.isfinite(pgr.hi)):
        reason = "no bounded PGR interval"
    return reason


def flagged(gap: Interval, threshold: float = GAP_THRESHOLD) -> bool:
    """True when a PGR over ``gap`` is unreliable (see :func:`flag_reason`)."""
    return flag_reason(gap, threshold) is not None

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
