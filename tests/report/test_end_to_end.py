"""One real run on the tiny random encoders: indexed in runs.sqlite, labels written, losses
recorded, tensorboard logged, and the report built from it."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import write_toy_task

import w2sgen
from w2sgen.aggregate import TABLE_COLUMNS
from w2sgen.config import RunConfig, SplitConfig
from w2sgen.report import build_report
from w2sgen.store import db


def test_run_indexes_labels_tracks_and_reports(tiny_encoders, tmp_path, cache_dir):
    weak, strong = tiny_encoders
    out = tmp_path / "out"
    cfg = RunConfig(task=str(write_toy_task(tmp_path / "toy.jsonl")), weak=str(weak), strong=str(strong),
                    out=str(out), methods=["xent", "logconf"], seeds=[0, 1],
                    splits=SplitConfig(n_weak_train=40, n_transfer=40, n_val=20, n_test=20, min_val=20, min_test=20))
    cfg.probe.epochs = 10
    trackers = "tensorboard" if _has("tensorboard") else None
    res = w2sgen.run(cfg, cache_dir=cache_dir, trackers=trackers)
    pd.testing.assert_frame_equal(db.query(out), res.table[["run_id", *TABLE_COLUMNS]])
    assert db.sync(out) == 0  # run() indexed every run already
    for rec in res.runs:
        labels = pd.read_parquet(f"{rec['_dir']}/labels.parquet")
        assert len(labels) == 80 and set(labels["split"]) == {"transfer", "val", "test"} and "group" in labels
        st = rec["stats"]  # the gap's interval, computed at the end of the run
        assert st["n_test"] == 20 and st["gap_acc_lo"] <= st["gap_acc"] <= st["gap_acc_hi"]
        assert st["flagged"] == (st["gap_acc"] < 0.02 or st["gap_acc_lo"] <= 0)
        assert all((b["pgr_acc"] is None) == st["flagged"] for b in rec["stages"]["students"].values())
        losses = rec["stages"]["ceiling"]["losses"]  # L-BFGS (xent heads): one value per iteration record
        assert len(losses) >= 2 and losses[-1] < losses[0]
        assert len(rec["stages"]["students"]["logconf"]["losses"]) == 10  # Adam: one per epoch
    if trackers:
        assert len(list((out / "tracking").glob("*/events.out.tfevents.*"))) == 2
    info = build_report(out, n_boot=100)
    html = info.path.read_text()
    assert html.count("data:image/png;base64,") == 5 - len(info.skipped)
    assert "gain_vs_misfit" not in info.skipped and "no test labels" not in html


def _has(mod: str) -> bool:
    try:
        __import__(mod)
        return True
    except ImportError:
        return False


@pytest.mark.parametrize("bad", ["tensorbord"])
def test_unknown_tracker_fails_before_any_work(bad, tmp_path):
    from w2sgen.errors import W2SError

    with pytest.raises(W2SError, match="unknown tracker"):
        w2sgen.run(RunConfig(task="cities", weak="minilm-l6", strong="mpnet-base", out=str(tmp_path)), trackers=bad)
