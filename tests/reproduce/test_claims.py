"""Each claim's statistic on synthetic predictions whose effect is known: one fixture where the claim
holds (reproduced), one where the opposite holds (not reproduced), one where the data cannot tell
(inconclusive: no effect, or an effect drowned by a small test set)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from reproduce import fixtures as fx

from w2sgen import stats
from w2sgen.reproduce import claims as cl
from w2sgen.reproduce.evidence import ceiling_stage, student_stage, weak_stage


def rows(ev, n: str):
    got, missing = cl.evaluate(ev)
    return [r for r in got if r.claim == n]


def one(ev, n: str, contains: str = ""):
    rs = [r for r in rows(ev, n) if contains in r.statistic]
    assert rs, f"claim {n} has no row with {contains!r}"
    return rs[0]


def test_verdict_rule():
    iv = stats.Interval
    assert cl.verdict(iv(0.3, 0.1, 0.5)) == "reproduced"
    assert cl.verdict(iv(-0.3, -0.5, -0.1)) == "not reproduced"
    assert cl.verdict(iv(0.1, -0.1, 0.3)) == "inconclusive"
    assert cl.verdict(iv(-0.3, -0.5, -0.1), side="<") == "reproduced"
    assert cl.verdict(iv(0.3, float("nan"), float("nan"))) == "inconclusive"  # unbounded
    assert cl.verdict(iv(0.3, 0.0, 0.5)) == "inconclusive"  # touching the null is not excluding it
    with pytest.raises(ValueError):
        cl.verdict(iv(0, 0, 0), side="=")


def test_delta_interval_matches_a_linear_contrast():
    """For a linear f the delta method is exactly stats.contrast_interval."""
    ev = fx.make(lambda w, s, m: fx.pgr_rates(w, s, 0.5) if m == "xent" else None, tasks=1, n=500)
    cols = [cl.right(weak_stage("a")), cl.right(ceiling_stage("b"))]
    j = cl.joint(ev, {"task0": cols})
    c = j.e("task0", cols[1]) - j.e("task0", cols[0])
    a = stats.contrast_interval(j.moments, c)
    b = cl.delta_interval(j.moments, lambda x: float(c @ x))
    assert np.allclose([a.value, a.lo, a.hi], [b.value, b.lo, b.hi], atol=1e-7)


def test_joint_blocks_are_the_tasks_seed_moments():
    """Two tasks stacked: each block's covariance is that task's own seed_moments; none across tasks."""
    ev = fx.make(lambda w, s, m: fx.pgr_rates(w, s, 0.5) if m == "xent" else None, tasks=2, n=400)
    cols = [cl.right(weak_stage("a")), cl.right(ceiling_stage("b"))]
    j = cl.joint(ev, {"task0": cols, "task1": cols})
    alone = cl.joint(ev, {"task1": cols})
    c2 = j.e("task1", cols[1]) - j.e("task1", cols[0])
    c1 = alone.e("task1", cols[1]) - alone.e("task1", cols[0])
    assert math.isclose(j.moments.var(c2), alone.moments.var(c1), rel_tol=1e-12)
    cross = j.e("task0", cols[0])
    assert abs(j.moments.cov(cross, c2)) < 1e-15


# ---- claim 1: PGR(xent) > 0

def test_claim_1():
    assert one(fx.make(lambda w, s, m: fx.pgr_rates(w, s, 0.5) if m == "xent" else None), "1").verdict == "reproduced"
    bad = one(fx.make(lambda w, s, m: fx.pgr_rates(w, s, -0.4) if m == "xent" else None), "1")
    assert bad.verdict == "not reproduced" and bad.value < 0
    weak = one(fx.make(lambda w, s, m: fx.pgr_rates(w, s, 0.02) if m == "xent" else None, n=600), "1")
    assert weak.verdict == "inconclusive" and weak.lo < 0 < weak.hi


def test_claim_1_leaves_flagged_cells_out():
    """A pair whose ceiling is not above the weak model (gap flagged) gives no PGR and is left out."""
    ev = fx.make(lambda w, s, m: fx.pgr_rates(w, s, 0.5) if m == "xent" else None, ladder=["a", "b"])
    for seeds in ev.tasks.values():  # the strong model's ceiling = the weak floor's accuracy
        for ts in seeds.values():
            ts.preds[ceiling_stage("b")] = ts.preds[weak_stage("a")].copy()
    assert rows(ev, "1") == []
    _, missing = cl.evaluate(ev)
    assert any("claim 1" in m and "flagged" in m for m in missing)


# ---- claim 2: PGR grows with the strong model

def grow(sign: float):
    order = {"b": 0, "c": 1, "d": 2}

    def students(w: str, s: str, m: str):
        if m != "xent":
            return None
        return fx.pgr_rates(w, s, 0.5 + sign * 0.25 * (order[s] - 1))
    return students


def test_claim_2():
    assert one(fx.make(grow(+1)), "2").verdict == "reproduced"
    assert one(fx.make(grow(-1)), "2").verdict == "not reproduced"
    flat = one(fx.make(grow(0), n=800), "2")
    assert flat.verdict == "inconclusive"


# ---- claim 3: logconf helps more as the gap grows

def conf(sign: float):
    def students(w: str, s: str, m: str):
        if m == "xent":
            return fx.pgr_rates(w, s, 0.3)
        if m == "logconf":
            ratio = math.log10(fx.PARAMS[s] / fx.PARAMS[w])  # 0.5 .. 2
            return fx.pgr_rates(w, s, 0.3 + sign * 0.3 * (ratio - 0.5))
        return None
    return students


@pytest.mark.parametrize("row", ["compute gap", "accuracy gap", "pooled"])
def test_claim_3(row):
    """Each of claim 3's rows (the slope against the compute gap, against the accuracy gap, and the
    pooled level beside them) gets all three verdicts on fixtures whose effect is known."""
    assert one(fx.make(conf(+1)), "3", row).verdict == "reproduced"
    assert one(fx.make(conf(-0.5)), "3", row).verdict == "not reproduced"
    assert one(fx.make(conf(0), n=800), "3", row).verdict == "inconclusive"


# ---- claim 4: imitation of errors

def imitate(xent_wrong: float, xent_right: float, logconf_wrong: float):
    def students(w: str, s: str, m: str):
        return {"xent": (xent_wrong, xent_right), "logconf": (logconf_wrong, xent_right)}.get(m)
    return students


def test_claim_4():
    good = fx.make(imitate(0.5, 0.95, 0.3))
    assert one(good, "4", "where weak is wrong").verdict == "reproduced"
    assert one(good, "4", "logconf − xent").verdict == "reproduced"
    bad = fx.make(imitate(0.97, 0.85, 0.99))
    assert one(bad, "4", "where weak is wrong").verdict == "not reproduced"
    assert one(bad, "4", "logconf − xent").verdict == "not reproduced"
    same = fx.make(imitate(0.9, 0.9, 0.9), n=300)
    assert one(same, "4", "where weak is wrong").verdict == "inconclusive"
    assert one(same, "4", "logconf − xent").verdict == "inconclusive"


def test_claim_4_statistic_is_the_pooled_conditional_agreement():
    ev = fx.make(imitate(0.5, 0.95, 0.3), tasks=1, n=4000)
    r = one(ev, "4", "where weak is wrong")
    assert abs(r.value - (0.5 - 0.95)) < 0.03


# ---- claim 5: overfitting and early stopping

def test_claim_5():
    ok = fx.make(lambda w, s, m: fx.pgr_rates(w, s, 0.5) if m == "xent" else None,
                 checkpoints=lambda w, s: {"oracle": 0.85, "last": 0.75, "kept": 0.81})
    a, b = rows(ok, "5")
    assert (a.verdict, b.verdict) == ("reproduced", "reproduced")
    assert abs(b.value - 0.6) < 0.1
    worse = fx.make(lambda w, s, m: fx.pgr_rates(w, s, 0.5) if m == "xent" else None,
                    checkpoints=lambda w, s: {"oracle": 0.75, "last": 0.85, "kept": 0.80})
    assert rows(worse, "5")[0].verdict == "not reproduced"
    # early stopping that keeps a checkpoint worse than the last one: the share recovered is negative
    harmful = fx.make(lambda w, s, m: fx.pgr_rates(w, s, 0.5) if m == "xent" else None,
                      checkpoints=lambda w, s: {"oracle": 0.85, "last": 0.75, "kept": 0.70})
    a, b = rows(harmful, "5")
    assert a.verdict == "reproduced" and b.verdict == "not reproduced" and abs(b.value + 0.5) < 0.1
    none = fx.make(lambda w, s, m: fx.pgr_rates(w, s, 0.5) if m == "xent" else None, n=400,
                   checkpoints=lambda w, s: {"oracle": 0.8, "last": 0.8, "kept": 0.8})
    a, b = rows(none, "5")
    assert a.verdict == "inconclusive" and b.verdict == "inconclusive"


def test_claim_5_uses_the_largest_gaps():
    ev = fx.make(lambda w, s, m: fx.pgr_rates(w, s, 0.5) if m == "xent" else None, tasks=1,
                 checkpoints=lambda w, s: {"oracle": 0.85, "last": 0.75, "kept": 0.81})
    cs = cl.cells(ev)
    top = cl.largest_gaps(cs)
    assert len(top) == 2  # a third of 6 pairs
    assert {(c.weak, c.strong) for c in top} == {("a", "d"), ("a", "c")}


# ---- claim 6: bootstrapping at the largest gap

def boot(delta: float):
    def students(w: str, s: str, m: str):
        if m == "xent":
            return fx.pgr_rates(w, s, 0.4)
        if m == "bootstrap" and (w, s) == ("a", "d"):
            return fx.pgr_rates(w, s, 0.4 + delta)
        return None
    return students


def test_claim_6():
    assert one(fx.make(boot(0.3)), "6").verdict == "reproduced"
    assert one(fx.make(boot(-0.3)), "6").verdict == "not reproduced"
    assert one(fx.make(boot(0.0), n=500), "6").verdict == "inconclusive"


def test_claims_json_rows_and_not_applicable():
    ev = fx.make(lambda w, s, m: fx.pgr_rates(w, s, 0.5) if m == "xent" else None, ladder=["a", "b"])
    got, missing = cl.evaluate(ev)
    assert [r.claim for r in got] == ["1", "4"]  # one pair: no slope, no early_stop, no bootstrap
    assert {m.split(" ")[1] for m in missing} == {"2", "3", "5", "6"}
    d = got[0].to_dict()
    assert set(d) >= {"claim", "statistic", "value", "lo", "hi", "verdict"}
    assert d["verdict"] in cl.VERDICTS


def test_student_names_are_the_stage_ids():
    assert student_stage("a", "b", "xent") == "student:a>b:xent"
