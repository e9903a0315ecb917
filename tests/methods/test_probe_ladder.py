"""``probe_ladder``: its configs, and end-to-end runs in probe and finetune mode on tiny models."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import toy_config, write_toy_task

import w2sgen
from w2sgen.config import FinetuneConfig, RunConfig
from w2sgen.errors import W2SError
from w2sgen.methods import METHODS
from w2sgen.methods.compose import parse
from w2sgen.methods.probe_ladder import ProbeLadderConfig, ladder_configs
from w2sgen.metrics import accuracy

RUNGS = ["lp_weak", "lp_gt", "ft_weak_lp_gt", "ft_gt", "ft_weak"]


def test_ladder_configs_switch_the_mode_and_apply_the_finetune_settings():
    run = RunConfig(mode="probe", finetune=FinetuneConfig(max_steps=100, lr=1e-5, batch_size=16))
    p, f = ladder_configs(run, ProbeLadderConfig(ft_steps=3, ft_lr=1e-3, lora=True))
    assert p.mode == "probe" and p.probe == run.probe and p.finetune == run.finetune
    assert f.mode == "finetune" and (f.finetune.max_steps, f.finetune.lr, f.finetune.lora) == (3, 1e-3, True)
    assert f.finetune.batch_size == 16 and run.finetune.max_steps == 100  # the run's config is untouched
    _, f = ladder_configs(run, ProbeLadderConfig())
    assert (f.finetune.max_steps, f.finetune.lr, f.finetune.lora) == (100, 1e-5, False)


def test_accuracy_and_settings():
    assert accuracy(np.array([0, 1, 1]), np.array([[0.9, 0.1], [0.4, 0.6], [0.7, 0.3]])) == pytest.approx(2 / 3)
    for bad in ({"ft_steps": 0}, {"ft_lr": 0.0}, {"x": 1}):
        with pytest.raises(W2SError, match="probe_ladder"):
            METHODS.get("probe_ladder").config(bad)
    with pytest.raises(W2SError, match="does not compose"):
        parse("probe_ladder+logconf")


_config = toy_config


def _preds(rec, name: str) -> pd.DataFrame:
    return pd.read_parquet(f"{rec['_dir']}/predictions/{name}.parquet").sort_values(["split", "id"])


def test_probe_mode_ladder(tmp_path, tiny_encoders, cache_dir):
    """lp(weak) is the run's xent student and lp(gt) its ceiling (same stages, same probabilities);
    the finetuning rungs run a few steps on the tiny strong model."""
    weak, strong = tiny_encoders
    toy = write_toy_task(tmp_path / "toy.jsonl")
    cfg = _config(toy, weak, strong, tmp_path / "out", methods=["xent", "probe_ladder"],
                  method_args={"probe_ladder": {"ft_steps": 3, "ft_lr": 1e-3}},
                  finetune=FinetuneConfig(batch_size=8))
    rec = w2sgen.run(cfg, cache_dir=cache_dir).runs[0]
    st = rec["stages"]
    lad = st["students"]["probe_ladder"]
    info = lad["train"]
    assert set(info["ladder"]) == set(RUNGS) and all(0 <= v <= 1 for v in info["ladder"].values())
    assert info["ladder_keys"]["lp_weak"] == st["students"]["xent"]["key"]
    assert info["ladder_keys"]["lp_gt"] == st["ceiling"]["key"]
    assert info["ladder"]["lp_weak"] == pytest.approx(st["students"]["xent"]["test"]["acc"])
    assert info["ladder"]["lp_gt"] == pytest.approx(st["ceiling"]["test"]["acc"])
    assert info["ladder_val"]["lp_gt"] == pytest.approx(st["ceiling"]["val"]["acc"])
    assert lad["test"]["acc"] == pytest.approx(info["ladder"]["lp_weak"])
    assert info["ladder_settings"]["ft_steps"] == 3 and info["ladder_settings"]["lora"] is False
    a, b = _preds(rec, "student-probe_ladder"), _preds(rec, "student-xent")
    np.testing.assert_array_equal(a["id"].to_numpy(), b["id"].to_numpy())
    np.testing.assert_array_equal(a[["prob_0", "prob_1"]].to_numpy(), b[["prob_0", "prob_1"]].to_numpy())
    # the finetuned model was stored whole and probed: its own stage, its own features
    assert info["ladder_keys"]["ft_weak_lp_gt"] not in (st["ceiling"]["key"], info["ladder_keys"]["lp_gt"])
    ft = list(cache_dir.rglob("ladder-ft/*/config.json"))
    assert len(ft) == 1 and list(ft[0].parent.glob("model*.safetensors"))
    manifest = json.loads((ft[0].parent / "manifest.json").read_text())["files"]
    assert "config.json" in manifest and any(f.startswith("model") for f in manifest)
    # a rerun trains nothing
    again = w2sgen.run(cfg, cache_dir=cache_dir).runs[0]["stages"]["students"]["probe_ladder"]
    assert again["cached"] and again["train"]["ladder"] == info["ladder"]


def test_finetune_mode_ladder_shares_the_run_stages(tmp_path, tiny_encoders, cache_dir):
    """In a finetune run with the same settings, ft(gt) is the run's ceiling and ft(weak) equals the
    run's xent student (the ladder's own finetuning reproduces ``finetune``)."""
    weak, strong = tiny_encoders
    toy = write_toy_task(tmp_path / "toy.jsonl")
    cfg = _config(toy, weak, strong, tmp_path / "out", methods=["xent", "probe_ladder"], mode="finetune",
                  finetune=FinetuneConfig(max_steps=3, batch_size=8, lr=1e-3))
    rec = w2sgen.run(cfg, cache_dir=cache_dir).runs[0]
    st = rec["stages"]
    info = st["students"]["probe_ladder"]["train"]
    assert info["ladder_keys"]["ft_gt"] == st["ceiling"]["key"]
    assert info["ladder"]["ft_gt"] == pytest.approx(st["ceiling"]["test"]["acc"])
    assert info["ladder"]["ft_weak"] == pytest.approx(st["students"]["xent"]["test"]["acc"])
    ft = pd.read_parquet(next(cache_dir.rglob("ladder-ft/*/predictions.parquet"))).sort_values(["split", "id"])
    xent = _preds(rec, "student-xent")
    np.testing.assert_allclose(ft[["prob_0", "prob_1"]].to_numpy(), xent[["prob_0", "prob_1"]].to_numpy(),
                               atol=1e-5)
