"""The ceilings per task and the ladder's monotonicity, on planted predictions."""

from __future__ import annotations

from reproduce import fixtures as fx

from w2sgen.reproduce import report
from w2sgen.reproduce.design import Block
from w2sgen.reproduce.evidence import ceiling_stage


def xent_only(w: str, s: str, m: str):
    return fx.pgr_rates(w, s, 0.5) if m == "xent" else None


def test_ceilings_are_every_rungs_accuracy():
    ev = fx.make(xent_only, tasks=1, n=2000)
    c = report.ceilings(ev)["task0"]
    assert list(c) == fx.LADDER
    for m in fx.LADDER:
        assert abs(c[m]["ceiling"] - fx.CEILING[m]) < 0.03
        assert c[m]["lo"] < c[m]["ceiling"] < c[m]["hi"]


def test_a_ladder_that_is_not_monotone_is_named_and_kept_in_order():
    ev = fx.make(xent_only, tasks=2, n=1000)
    for ts in ev.tasks["task1"].values():  # on task1 the largest model's ceiling is the smallest's
        ts.preds[ceiling_stage("d")] = ts.preds[ceiling_stage("a")].copy()
    bad = report.not_monotone(ev)
    assert len(bad) == 1 and bad[0].startswith("task1:") and "d " in bad[0]
    text = report.ceilings_text(Block("probe ladder", "probe", list(fx.LADDER)), ev)
    assert "not monotone in ceiling accuracy on: task1" in text
    assert text.splitlines()[1].split()[1:] == fx.LADDER  # the order given, not re-sorted
    ok = fx.make(xent_only, tasks=1, n=2000)
    assert report.not_monotone(ok) == []
    assert report.order_note(ok) == "the ceilings grow along the ladder on every task"


def test_a_task_with_one_ceiling_is_not_called_monotone():
    """With one model's ceiling on a task (the finetune pair's weak model trains none), the order
    cannot be checked, and the text says so instead of calling the ladder monotone."""
    ev = fx.make(xent_only, tasks=2, n=1000)
    for m in fx.LADDER[:-1]:
        for ts in ev.tasks["task1"].values():
            ts.preds.pop(ceiling_stage(m), None)
    assert report.not_monotone(ev) == []
    note = report.order_note(ev)
    assert "not checked on task1" in note and "grow" not in note
    text = report.ceilings_text(Block("probe ladder", "probe", list(fx.LADDER)), ev)
    assert "not checked on task1" in text and "grow along the ladder" not in text
