"""The sweep planner's time estimates: the work left, and the whole plan from an empty cache."""

from __future__ import annotations

import pytest

from w2sgen.sweep.plan import Plan, PlannedStage, format_plan


def _plan(*stages: tuple[str, bool, float | None]) -> Plan:
    st = {f"{k}/{i}": PlannedStage(kind=k, ident=f"{k}/{i}", key=str(i), cached=c, wall_s=w)
          for i, (k, c, w) in enumerate(stages)}
    return Plan(runs=[], stages=st, run_stages=[list(st)])


def test_left_and_cold_estimates_use_recorded_train_times_by_kind():
    plan = _plan(("floor", True, 10.0), ("floor", True, 20.0), ("floor", False, None),
                 ("student", True, 4.0), ("student", True, None), ("student", False, None),
                 ("ceiling", False, None))
    # left: one floor at the floors' mean (15), one student at the students' (4), one ceiling at the overall (~11.33)
    overall = (10 + 20 + 4) / 3
    assert plan.estimate_s() == pytest.approx(15 + 4 + overall)
    # cold: every stage: the recorded times, plus the kind's mean for the rest (the cached student without a time too)
    assert plan.estimate_s(cold=True) == pytest.approx(10 + 20 + 4 + 15 + 4 + 4 + overall)
    text = format_plan(plan)
    assert "work left: 3 stages, about 30s" in text
    assert "from an empty stage cache: about 68s (the recorded times of the 4 cached stages" in text


def test_everything_cached_still_says_what_a_cold_run_costs():
    plan = _plan(("floor", True, 30.0), ("ceiling", True, 90.0), ("student", True, 60.0))
    assert plan.estimate_s() == 0
    text = format_plan(plan)
    assert "work left: none" in text and "from an empty stage cache: about 3 min (" in text


def test_nothing_cached_gives_no_estimate():
    plan = _plan(("floor", False, None), ("student", False, None))
    assert plan.estimate_s() is None and plan.estimate_s(cold=True) is None
    text = format_plan(plan)
    assert "no time estimate" in text and "from an empty stage cache" not in text
