"""Trackers through accelerate: tensorboard event files; unknown or missing trackers."""

from __future__ import annotations

import pytest
from report.fake_runs import write_run

from w2sgen import trackers
from w2sgen.errors import W2SError


def test_parse_trackers():
    assert trackers.parse_trackers("tensorboard, wandb,tensorboard") == ["tensorboard", "wandb"]
    assert trackers.parse_trackers(None) == []
    with pytest.raises(W2SError, match="Did you mean: tensorboard"):
        trackers.parse_trackers("tensorbord")


def test_tensorboard_event_files_are_written(tmp_path):
    pytest.importorskip("tensorboard")
    pytest.importorskip("accelerate")
    d = write_run(tmp_path / "out", epochs=5, with_stats=True)
    assert trackers.log_run("tensorboard", tmp_path / "out", d) == ["tensorboard"]
    events = list((tmp_path / "out" / "tracking" / d.name).glob("events.out.tfevents.*"))
    assert events
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(events[0].parent)).Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"student-xent/pgr_acc", "weak/test_acc", "ceiling/train_loss", "run/gap_acc", "run/gap_acc_lo",
            "run/flagged"} <= tags
    assert [e.step for e in acc.Scalars("weak/train_loss")] == [1, 2, 3, 4, 5]


def test_a_missing_tracker_warns_and_keeps_the_run(tmp_path, monkeypatch, caplog):
    d = write_run(tmp_path / "out")
    monkeypatch.setattr(trackers, "available", lambda name: False)
    assert trackers.log_run("wandb", tmp_path / "out", d) == []
    assert "not installed" in caplog.text
