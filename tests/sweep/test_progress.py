"""The sweep progress model: stage counts from run events, and the ETA arithmetic (fake events, no training)."""

from __future__ import annotations

import io
import logging

from w2sgen.sweep.progress import PlainView, SweepProgress, Tracker, fmt_s, format_line, make_view

# 3 runs sharing a floor: run 0 and 1 need floor F (shared), ceilings C0/C1, students S0/S1;
# run 2 needs F2, C2, S2. Unique: F, C0, C1, S0, S1, F2, C2, S2 = 8; C2 cached before the sweep.
RUN_STAGES = [["F", "C0", "S0"], ["F", "C1", "S1"], ["F2", "C2", "S2"]]


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def model(slots: int = 1) -> tuple[SweepProgress, Clock]:
    clock = Clock()
    return SweepProgress(RUN_STAGES, {"C2", "not-in-plan"}, slots=slots, clock=clock), clock


def test_counts_follow_run_events():
    m, clock = model(slots=2)
    c = m.counts()
    assert (c.stages, c.done, c.running, c.left, c.failed, c.cached_at_start) == (8, 1, 0, 7, 0, 1)
    assert c.eta_s is None  # nothing trained yet
    m.fill()  # runs 0 and 1 in flight
    c = m.counts()
    assert (c.done, c.running, c.left, c.runs_running) == (1, 5, 2, 2)  # F, C0, S0, C1, S1 running
    clock.t += 30
    m.finish(0)  # F, C0, S0 done; run 2 takes the free slot
    c = m.counts()
    assert (c.done, c.running, c.left, c.runs_done, c.runs_running) == (4, 4, 0, 1, 2)
    assert c.trained == 3 and c.elapsed_s == 30
    assert c.eta_s == 4 * 30 / 3  # stages to do x mean wall time per stage trained so far
    clock.t += 10
    m.finish(1)
    m.finish(2, ok=False)  # F2 and S2 fail (C2 stays done: it was cached)
    c = m.counts()
    assert (c.done, c.running, c.left, c.failed, c.runs_done, c.runs_failed) == (6, 0, 0, 2, 2, 1)
    assert c.eta_s == 0.0
    line = format_line(c)
    assert line == ("stages 6/8 done (1 cached), 0 running, 0 left, 2 failed; runs 2/3 done, 1 failed; "
                    "elapsed 40s, ETA 0s")
    assert format_line(c, timing=False).endswith("1 failed")


def test_serial_runs_one_slot_and_shared_stage_done_once():
    m, clock = model(slots=1)
    m.fill()
    assert m.counts().running == 3 and m.running == [0]
    clock.t += 60
    m.finish(0)
    assert m.running == [1]
    assert m.stage_state("F") == "done"  # run 1 still needs it, but run 0 made it
    c = m.counts()
    assert (c.done, c.running, c.left) == (4, 2, 2) and c.eta_s == 4 * 60 / 3


def test_plan_source_and_formatting():
    class Stage:
        def __init__(self, cached: bool) -> None:
            self.cached = cached

    class Plan:
        run_stages = RUN_STAGES
        stages = {s: Stage(s == "C2") for ids in RUN_STAGES for s in ids}

    m = SweepProgress.from_plan(Plan(), slots=3)
    assert m.counts().cached_at_start == 1 and m.slots == 3
    assert [fmt_s(s) for s in (None, 5, 65, 3600 + 120)] == ["?", "5s", "1m05s", "1h02m"]


def test_views_plain_when_not_a_terminal(caplog):
    m, _ = model()
    assert isinstance(make_view(m, io.StringIO()), PlainView)  # a pipe: plain lines, no animation
    with caplog.at_level(logging.INFO, logger="w2sgen"):
        logging.getLogger("w2sgen").propagate = True
        try:
            with Tracker(m) as t:
                t.fill()
                t.finish(0, "sweep [1/3] run0: done")
        finally:
            logging.getLogger("w2sgen").propagate = False
    msgs = [r.getMessage() for r in caplog.records]
    assert msgs[-1].startswith("sweep [1/3] run0: done | stages 4/8 done (1 cached), 2 running, 2 left")


def test_tracker_without_model_only_logs():
    t = Tracker(None)
    with t:
        t.fill()
        t.finish(0, "x")  # no model, no view: nothing to count, no error
    assert t.view is None


def test_sweep_status_prints_counts(tmp_path, tiny_encoders, capsys):
    import json

    from conftest import write_toy_task

    from w2sgen.cli import main

    weak, strong = tiny_encoders
    f = tmp_path / "sweep.yaml"
    f.write_text(json.dumps({"task": str(write_toy_task(tmp_path / "toy.jsonl")), "pairs": [[str(weak), str(strong)]],
                             "methods": ["xent"], "seeds": [0],
                             "splits": {"n_weak_train": 40, "n_transfer": 40, "n_val": 20, "n_test": 20, "min_val": 20, "min_test": 20}}))
    assert main(["sweep", str(f), "--status", "--out", str(tmp_path / "o"), "--cache-dir", str(tmp_path / "c")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == ["stages 0/3 done (0 cached), 0 running, 3 left", "run folders written: 0/1 (runs.sqlite: `w2s results`)"]
    assert not (tmp_path / "o").exists()  # nothing ran
