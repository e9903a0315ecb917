"""The same seed gives identical numbers, and the run record holds what reproducing it needs."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from conftest import write_toy_task

import w2sgen
from w2sgen.config import RunConfig, SplitConfig, from_dict

VOLATILE = {"wall_s", "created", "cached", "train_wall_s", "load_s", "_dir"}


def strip(x):
    """The record without timings and cache flags (which differ between a cold and a warm run)."""
    if isinstance(x, dict):
        return {k: strip(v) for k, v in x.items() if k not in VOLATILE}
    if isinstance(x, list):
        return [strip(v) for v in x]
    return x


def test_same_seed_identical_metrics_and_record(tmp_path, tiny_encoders):
    weak, strong = tiny_encoders
    toy = write_toy_task(tmp_path / "toy.jsonl")
    recs, preds = [], []
    for i in range(2):
        cfg = RunConfig(task=str(toy), weak=str(weak), strong=str(strong), out=str(tmp_path / f"out{i}"), seeds=[3],
                        methods=["xent", "logconf"], splits=SplitConfig(n_weak_train=40, n_transfer=40, n_val=20,
                                                                        n_test=20, min_val=20, min_test=20))
        cfg.probe.epochs = 8
        res = w2sgen.run(cfg, cache_dir=tmp_path / f"cache{i}")  # cold both times: nothing is shared
        d = Path(res.runs[0]["_dir"])
        recs.append(json.loads((d / "run.json").read_text()))
        preds.append({p.name: pd.read_parquet(p) for p in sorted((d / "predictions").iterdir())})
    a, b = (strip(r) for r in recs)
    a["config"].pop("out"), b["config"].pop("out")
    assert a == b
    assert preds[0].keys() == preds[1].keys()
    for name in preds[0]:
        pd.testing.assert_frame_equal(preds[0][name], preds[1][name], check_exact=True)

    rec = recs[0]
    assert rec["seed"] == 3 and rec["split_seed"] == 3
    cfg = from_dict(RunConfig, rec["config"])  # the record's config rebuilds the run's config
    assert cfg.seeds == [3] and cfg.task == str(toy) and cfg.probe.epochs == 8
    assert rec["task"]["fingerprint"] and rec["task"]["sizes"]["transfer"] == 40
    assert {"python", "w2sgen", "torch", "transformers", "numpy"} <= set(rec["versions"])
    for side in ("weak", "strong"):
        assert rec[side]["fingerprint"] and rec[side]["layer"] is not None and rec[side]["pooling"]
    for block in (rec["stages"]["weak"], rec["stages"]["ceiling"], *rec["stages"]["students"].values()):
        assert block["key"] and 0 <= block["test"]["acc"] <= 1
