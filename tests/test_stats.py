"""Bootstrap intervals against known distributions, the small-gap flag, aggregates, comparisons,
calibration and the diagnostics, against hand-computed values."""

from __future__ import annotations

import numpy as np
import pandas as pd
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


def test_run_bootstrap_accuracy_interval_is_binomial_and_pgr_is_paired():
    rng = np.random.default_rng(3)
    n = 2000
    weak = rng.random(n) < 0.6
    ceiling = rng.random(n) < 0.8
    xent = np.where(rng.random(n) < 0.5, weak, ceiling)
    logconf = xent | (rng.random(n) < 0.1)
    b = stats.bootstrap_run(weak, ceiling, {"xent": xent, "logconf": logconf}, n_boot=1000, seed=0)
    half = 1.96 * np.sqrt(weak.mean() * (1 - weak.mean()) / n)
    assert b.weak_acc.hi - b.weak_acc.lo == pytest.approx(2 * half, rel=0.15)
    gap = ceiling.mean() - weak.mean()
    assert b.gap.value == pytest.approx(gap)
    assert b.pgr["xent"].value == pytest.approx((xent.mean() - weak.mean()) / gap)
    assert b.pgr["xent"].lo < b.pgr["xent"].value < b.pgr["xent"].hi
    d = b.delta_pgr["logconf"]
    assert d.value == pytest.approx(b.pgr["logconf"].value - b.pgr["xent"].value)
    assert d.lo > 0  # logconf is right wherever xent is: the paired interval sees it
    assert "xent" not in b.delta_pgr
    with pytest.raises(W2SError):
        stats.bootstrap_run(weak, ceiling[:10], {})


@pytest.mark.parametrize("gap,lo,flag", [(0.01, 0.005, True), (0.10, 0.06, False), (0.05, -0.01, True),
                                         (float("nan"), 0.0, True), (0.02, 0.001, False), (-0.05, -0.08, True)])
def test_small_gap_flag(gap, lo, flag):
    assert stats.small_gap(stats.Interval(gap, lo, gap + 0.05)) is flag


def test_small_gap_threshold_is_configurable():
    assert stats.small_gap(stats.Interval(0.04, 0.01, 0.07), threshold=0.05)


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


def _table() -> pd.DataFrame:
    rows = []
    for task in ("a", "b"):
        for weak, strong, base in (("s", "l", 0.2), ("s", "xl", 0.4), ("m", "xl", 0.6)):
            for seed in range(3):
                for method, shift in (("xent", 0.0), ("logconf", 0.1 if task == "a" else -0.05)):
                    rows.append({"task": task, "weak": weak, "strong": strong, "mode": "probe", "method": method,
                                 "seed": seed, "pgr_acc": base + shift + 0.01 * seed, "flagged": False})
    return pd.DataFrame(rows)


def test_aggregate_over_pairs_is_median_of_pair_means():
    t = _table()
    agg = stats.aggregate_pairs(t, by=("task", "method"), n_boot=200)
    r = agg[(agg["task"] == "a") & (agg["method"] == "xent")].iloc[0]
    assert r["pairs"] == 3 and r["n"] == 9
    assert r["median"] == pytest.approx(0.41) and r["mean"] == pytest.approx(0.41)
    assert r["median_lo"] <= r["median"] <= r["median_hi"]


def test_flagged_runs_stay_out_of_aggregates_unless_asked():
    t = _table()
    t.loc[(t["weak"] == "m") & (t["seed"] == 0), "pgr_acc"] = 50.0
    t.loc[(t["weak"] == "m") & (t["seed"] == 0), "flagged"] = True
    seeds = stats.aggregate_seeds(t, n_boot=100)
    r = seeds[(seeds["task"] == "a") & (seeds["weak"] == "m") & (seeds["method"] == "xent")].iloc[0]
    assert r["n"] == 2 and r["n_flagged"] == 1 and r["mean"] == pytest.approx(0.615)
    r2 = stats.aggregate_seeds(t, n_boot=100, include_flagged=True)
    assert r2["mean"].max() > 10
    pairs = stats.aggregate_pairs(t, n_boot=100)
    assert pairs["mean"].max() < 1 and pairs["n_flagged"].max() == 1


def test_paired_comparison_and_task_wins():
    t = _table()
    d = stats.paired_deltas(t)
    assert len(d) == 18 and set(d["method"]) == {"logconf"}
    assert np.allclose(d[d["task"] == "a"]["delta"], 0.1)
    cmp = stats.compare_methods(t, n_boot=200).set_index("method")
    assert cmp.loc["logconf", "delta_mean"] == pytest.approx(0.025)
    assert cmp.loc["logconf", "tasks"] == 2 and cmp.loc["logconf", "tasks_won"] == 1
    assert cmp.loc["logconf", "tasks_best"] == 1 and cmp.loc["xent", "tasks_best"] == 1
    assert cmp.loc["logconf", "win_rate"] == pytest.approx(0.5)


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
