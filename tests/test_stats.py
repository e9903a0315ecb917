"""Bootstrap intervals against known distributions; intervals of means and ratios of means over seeds
and test groups (hand values, normal theory, coverage); the small-gap flag; calibration and the
diagnostics, against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from w2sgen import stats
from w2sgen.errors import W2SError


def test_mean_interval_matches_normal_theory():
    x = np.random.default_rng(0).normal(5.0, 2.0, size=400)
    iv = stats.bootstrap(x, "mean", n_boot=2000, seed=1)
    half = 1.96 * x.std(ddof=1) / np.sqrt(len(x))  # ≈ 0.196
    assert iv.value == pytest.approx(x.mean())
    assert iv.lo == pytest.approx(x.mean() - half, abs=0.25 * half)
    assert iv.hi == pytest.approx(x.mean() + half, abs=0.25 * half)


def test_interval_covers_the_true_mean_about_95_percent_of_the_time():
    rng = np.random.default_rng(2)
    hits = sum(stats.bootstrap(rng.exponential(1.0, size=60), "mean", n_boot=300, seed=i).contains(1.0)
               for i in range(200))
    assert 0.86 <= hits / 200 <= 0.99


def test_median_interval_and_degenerate_inputs():
    iv = stats.bootstrap([1.0, 2.0, 3.0, 4.0, 100.0], "median", n_boot=500)
    assert iv.value == 3.0 and iv.lo >= 1.0 and iv.hi <= 100.0
    one = stats.bootstrap([0.4], "mean")
    assert (one.value, one.lo, one.hi) == (0.4, 0.4, 0.4)
    assert np.isnan(stats.bootstrap([], "mean").value)
    with pytest.raises(W2SError):
        stats.bootstrap([1.0, 2.0], "mode")
    with pytest.raises(W2SError):
        stats.percentile_interval(np.ones(3), level=95)


def test_ece_hand_values():
    y = np.array([1, 1, 0, 0])
    calibrated = np.array([[0.0, 1.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0]])
    assert stats.ece(y, calibrated) == pytest.approx(0.0)
    # all at confidence 0.9 in one bin, half right: |0.5 − 0.9| = 0.4
    over = np.array([[0.1, 0.9], [0.9, 0.1], [0.1, 0.9], [0.9, 0.1]])
    assert stats.ece(np.array([1, 1, 0, 0]), over) == pytest.approx(0.4)
    # two bins: {0.6 right, 0.6 wrong} -> |0.5 − 0.6|, {1.0 right} -> 0
    p = np.array([[0.4, 0.6], [0.4, 0.6], [0.0, 1.0]])
    assert stats.ece(np.array([1, 0, 1]), p) == pytest.approx(2 / 3 * 0.1)


def test_imitation_and_misfit_hand_values():
    y = np.array([1, 1, 0, 0])
    weak = np.array([[0.2, 0.8], [0.8, 0.2], [0.3, 0.7], [0.9, 0.1]])  # right, wrong, wrong, right
    student = np.array([[0.1, 0.9], [0.3, 0.7], [0.2, 0.8], [0.6, 0.4]])  # 1, 1, 1, 0
    d = stats.imitation(y, weak, student)
    assert d["agreement_weak_right"] == 1.0 and d["agreement_weak_wrong"] == 0.5
    assert d["fixed"] == 0.25 and d["fixed_of_wrong"] == 0.5 and d["broken"] == 0.0
    m = stats.misfit(weak, weak)
    assert m["misfit_kl"] == pytest.approx(0.0, abs=1e-9) and m["disagreement"] == 0.0
    m = stats.misfit(np.array([[0.5, 0.5]]), np.array([[0.9, 0.1]]))
    assert m["misfit_kl"] == pytest.approx(0.5 * np.log(0.5 / 0.9) + 0.5 * np.log(0.5 / 0.1))
    assert m["misfit_sq"] == pytest.approx(0.32)


def test_correlation():
    x = np.arange(20.0)
    r = stats.correlation(x, 2 * x + 1, n_boot=200)
    assert r.value == pytest.approx(1.0) and r.lo == pytest.approx(1.0)
    assert np.isnan(stats.correlation([1.0, 2.0], [3.0, 4.0]).value)
    noisy = stats.correlation(x, np.random.default_rng(0).normal(size=20), n_boot=300)
    assert noisy.lo < 0 < noisy.hi


# --------------------------------------------------------------------------- ratios of means


def test_cluster_covariance_of_grouped_outcomes():
    """Groups of 4 that share their outcome: the cluster-robust variance is that of G draws, not N."""
    rng = np.random.default_rng(0)
    per_group = rng.random(250) < 0.7
    right = np.repeat(per_group, 4).astype(float)[:, None]  # (1000, 1)
    groups = np.repeat(np.arange(250), 4)
    clustered = stats.cluster_cov(stats.group_sums(groups, right))[0, 0]
    naive = stats.cluster_cov(stats.group_sums(np.arange(1000), right))[0, 0]
    p = right.mean()
    assert naive == pytest.approx(p * (1 - p) / 1000, rel=0.01)
    assert clustered == pytest.approx(p * (1 - p) / 250, rel=0.01)  # 4x wider variance


def test_one_seed_interval_is_a_t_interval_over_groups():
    rng = np.random.default_rng(1)
    right = (rng.random((400, 2)) < [0.6, 0.8]).astype(float)
    run = stats.group_sums(np.arange(400) // 2, right)
    m = stats.seed_moments(run.acc[None, :], [run])
    assert m.n_seeds == 1 and len(m.parts) == 1 and m.parts[0].df == 199
    gap = stats.contrast_interval(m, np.array([-1.0, 1.0]))
    se = np.sqrt(stats.cluster_cov(run) @ [-1, 1] @ [-1, 1])
    assert gap.value == pytest.approx(right[:, 1].mean() - right[:, 0].mean())
    assert gap.hi - gap.value == pytest.approx(stats.t_quantile(199) * se)
    assert stats.t_quantile(199) == pytest.approx(1.972, abs=1e-3)
    assert stats.t_quantile(float("inf")) == pytest.approx(1.95996, abs=1e-4)


def test_seeds_without_predictions_give_the_t_interval_over_seeds():
    acc = np.array([[0.60, 0.80], [0.62, 0.83], [0.61, 0.78]])
    m = stats.seed_moments(acc)
    gap = stats.contrast_interval(m, np.array([-1.0, 1.0]))
    d = acc[:, 1] - acc[:, 0]
    half = 4.302653 * d.std(ddof=1) / np.sqrt(3)  # t_{0.975, 2}
    assert gap.value == pytest.approx(d.mean()) and gap.hi - gap.value == pytest.approx(half, rel=1e-5)


def test_fieller_interval_by_hand_and_its_unbounded_case():
    # a = 0.05, b = 0.10 with var(a) = 1e-4, var(b) = 1e-4, cov 0, df ∞: q = 1.96
    m = stats.Moments(np.array([0.05, 0.10]), (stats.Part(np.diag([1e-4, 1e-4]), float("inf")),), 3)
    iv = stats.ratio_interval(m, np.array([1.0, 0.0]), np.array([0.0, 1.0]))
    q = 1.959964
    A, B, C = 0.01 - q * q * 1e-4, -2 * 0.005, 0.0025 - q * q * 1e-4
    lo, hi = sorted(np.roots([A, B, C]))
    assert iv.value == pytest.approx(0.5) and iv.lo == pytest.approx(lo) and iv.hi == pytest.approx(hi)
    assert iv.hi - 0.5 > 0.5 - iv.lo  # Fieller is skewed away from 0 in the denominator
    delta = stats.ratio_interval(m, np.array([1.0, 0.0]), np.array([0.0, 1.0]), kind="delta")
    assert delta.hi - 0.5 == pytest.approx(0.5 - delta.lo)
    # the denominator's interval reaches 0: unbounded, so no bounds
    weak_den = stats.Moments(np.array([0.05, 0.01]), (stats.Part(np.diag([1e-4, 1e-4]), float("inf")),), 3)
    iv = stats.ratio_interval(weak_den, np.array([1.0, 0.0]), np.array([0.0, 1.0]))
    assert iv.value == pytest.approx(5.0) and np.isnan(iv.lo) and np.isnan(iv.hi)


def _runs(rng, seeds: int, acc, shared: bool, n: int = 800, g: int = 4):
    """Grouped test correctness of ``seeds`` runs (K stages, accuracies ``acc``)."""
    runs = []
    base = rng.random((n // g, len(acc)))
    for s in range(seeds):
        u = base if shared else rng.random((n // g, len(acc)))
        right = np.repeat(u < acc, g, axis=0).astype(float)
        keys = np.arange(n // g) + (0 if shared else s * (n // g))
        runs.append(stats.group_sums(np.repeat(keys, g), right))
    return runs


def test_shared_test_sets_add_their_test_noise_and_disjoint_ones_do_not():
    rng = np.random.default_rng(3)
    disjoint = _runs(rng, 3, [0.6, 0.8], shared=False)
    acc = np.stack([r.acc for r in disjoint])
    m_t = stats.seed_moments(acc, disjoint, "t")
    assert len(m_t.parts) == 1 and np.allclose(m_t.parts[0].cov, np.cov(acc, rowvar=False) / 3)
    shared = _runs(rng, 3, [0.6, 0.8], shared=True)  # identical runs: no spread over seeds at all
    acc = np.stack([r.acc for r in shared])
    assert np.allclose(acc, acc[0])
    m = stats.seed_moments(acc, shared)
    # all the variance is the shared test noise: that of one run
    assert m.var(np.array([-1.0, 1.0])) == pytest.approx(stats.cluster_cov(shared[0]) @ [-1, 1] @ [-1, 1], rel=1e-6)


@pytest.mark.parametrize("between", ["vc", "t"])
def test_pgr_interval_covers_the_truth_about_95_percent(between):
    """A small simulation (bench/coverage.py runs the issue's full grid): 3 seeds, fresh test sets."""
    rng = np.random.default_rng(4)
    truth = np.array([0.70, 0.85, 0.76])  # PGR 0.4
    hits = n = 0
    for _ in range(300):
        shift = rng.normal(size=(3, 3)) * [0.01, 0.01, 0.015]
        runs = []
        for s in range(3):
            right = (rng.random((600, 3)) < truth + shift[s]).astype(float)
            runs.append(stats.group_sums(np.arange(600) + 600 * s, right))
        m = stats.seed_moments(np.stack([r.acc for r in runs]), runs, between)
        iv = stats.ratio_interval(m, np.array([-1.0, 0, 1]), np.array([-1.0, 1, 0]))
        if np.isfinite(iv.lo):
            n += 1
            hits += iv.contains(0.4)
    assert n > 250 and 0.90 <= hits / n <= 0.99


def test_combine_averages_estimates_and_their_covariances():
    a = stats.Moments(np.array([0.6, 0.8]), (stats.Part(np.eye(2) * 1e-4, 2.0),), 3)
    b = stats.Moments(np.array([0.7, 0.9]), (stats.Part(np.eye(2) * 4e-4, 4.0),), 5)
    c = stats.combine([a, b])
    assert np.allclose(c.mean, [0.65, 0.85]) and c.n_seeds == 8
    assert c.var(np.array([1.0, 0.0])) == pytest.approx((1e-4 + 4e-4) / 4)
    v1, v2 = 1e-4 / 4, 4e-4 / 4
    assert c.df(np.array([1.0, 0.0])) == pytest.approx((v1 + v2) ** 2 / (v1**2 / 2 + v2**2 / 4))


@pytest.mark.parametrize("gap,lo,reason", [(0.01, 0.005, "under 2 points"), (0.10, 0.06, None),
                                           (0.05, -0.01, "includes 0"), (float("nan"), 0.0, "no gap"),
                                           (0.02, 0.001, None), (-0.05, -0.08, "under 2 points"),
                                           (0.05, float("nan"), "no interval")])
def test_flag_rule(gap, lo, reason):
    got = stats.flag_reason(stats.Interval(gap, lo, gap + 0.05))
    assert (got is None) if reason is None else (reason in got)
    assert stats.flagged(stats.Interval(gap, lo, gap + 0.05)) is (reason is not None)


def test_flag_threshold_is_configurable():
    assert stats.flagged(stats.Interval(0.04, 0.01, 0.07), threshold=0.05)
    assert not stats.flagged(stats.Interval(0.04, 0.01, 0.07), threshold=0.02)


def test_mean_run_carries_the_test_noise_of_the_mean():
    """Runs on one test set add their noise within a group (identical runs: the noise of one run);
    runs on disjoint test sets are independent (a quarter of the sum for two)."""
    rng = np.random.default_rng(5)
    a, b = _runs(rng, 2, [0.6, 0.8], shared=False)
    same = stats.mean_run([a, a])
    assert np.allclose(same.acc, a.acc) and np.allclose(stats.cluster_cov(same), stats.cluster_cov(a))
    both = stats.mean_run([a, b])
    assert np.allclose(both.acc, (a.acc + b.acc) / 2)
    g = len(a.keys)  # the union has 2g groups: the small-sample factors G/(G−1) differ
    want = (stats.cluster_cov(a) + stats.cluster_cov(b)) / 4 * (g - 1) / g * (2 * g) / (2 * g - 1)
    assert np.allclose(stats.cluster_cov(both), want)


def test_pool_seeds_does_not_shrink_the_variance_of_identical_estimates():
    """Two model pairs whose accuracies move together seed by seed: their mean is no more precise than
    one of them (the independent combination would halve the variance)."""
    rng = np.random.default_rng(6)
    runs = _runs(rng, 3, [0.6, 0.8], shared=False)
    acc = np.stack([r.acc for r in runs])
    one = stats.seed_moments(acc, runs)
    two = stats.pool_seeds([acc, acc], [runs, runs])
    c = np.array([-1.0, 1.0])
    assert two.var(c) == pytest.approx(one.var(c)) and two.df(c) == pytest.approx(one.df(c))
    assert stats.combine([one, one]).var(c) == pytest.approx(one.var(c) / 2)  # what pooling as independent gave
    bound = stats.combine([one, one], dependent=True)
    assert bound.var(c) == pytest.approx(one.var(c)) and bound.df(c) == pytest.approx(one.df(c))
    with pytest.raises(W2SError, match="same seeds"):
        stats.pool_seeds([acc, acc[:2]])


def test_one_run_has_a_bounded_pgr_interval_exactly_when_its_gap_interval_excludes_0():
    """For one run the gap's t interval and the PGR's Fieller interval use the same quantile (G − 1
    df), so the gap rule already implies a bounded PGR; pgr_flag_reason adds the unbounded case."""
    rng = np.random.default_rng(7)
    seen = set()
    for gap in (0.0, 0.01, 0.02, 0.03, 0.05, 0.10):
        for _ in range(10):
            run = _runs(rng, 1, [0.7, 0.7 + gap, 0.7 + gap / 2], shared=False, n=400)[0]
            m = stats.seed_moments(run.acc[None, :], [run])
            g = stats.contrast_interval(m, np.array([-1.0, 1, 0]))
            r = stats.ratio_interval(m, np.array([-1.0, 0, 1]), np.array([-1.0, 1, 0]))
            bounded = bool(np.isfinite(r.lo) and np.isfinite(r.hi))
            assert bounded == (g.lo > 0), (gap, g)
            seen.add(bounded)
    assert seen == {True, False}
    ok = stats.Interval(0.10, 0.05, 0.15)
    assert stats.pgr_flag_reason(ok, stats.Interval(0.4, 0.1, 0.7)) is None
    assert stats.pgr_flag_reason(ok, stats.Interval(0.4, float("nan"), float("nan"))) == "no bounded PGR interval"
    assert stats.pgr_flag_reason(ok, None) is None
    assert "under 2 points" in stats.pgr_flag_reason(stats.Interval(0.01, 0.005, 0.02), stats.Interval(0.4, 0, 1))
