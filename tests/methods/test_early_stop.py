"""``early_stop``: the checkpoint rule on hand-made curves, and end-to-end runs (probe and finetune)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import toy_config, write_toy_task

import w2sgen
from w2sgen.config import FinetuneConfig
from w2sgen.errors import W2SError
from w2sgen.methods import METHODS
from w2sgen.methods.early_stop import (
    agreement,
    choose,
    default_eval_steps,
    eval_epochs,
    select_checkpoint,
    soft_xent,
    truth_curve,
    weak_curve,
)


def test_select_checkpoint_takes_the_best_and_the_earliest_on_ties():
    assert select_checkpoint([0.5, 0.7, 0.7, 0.6]) == 1
    assert select_checkpoint([0.9]) == 0
    assert select_checkpoint([0.3, 0.2, 0.2, 0.4], higher_is_better=False) == 1
    assert select_checkpoint([float("nan"), 0.4, 0.1]) == 1  # NaN never wins
    assert select_checkpoint([float("nan"), 0.4, 0.1], higher_is_better=False) == 2
    assert select_checkpoint([float("nan"), float("nan")]) == 0
    with pytest.raises(ValueError, match="non-empty"):
        select_checkpoint([])


def test_scores_on_hand_made_probabilities():
    weak = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    p = np.array([[0.8, 0.2], [0.4, 0.6], [0.1, 0.9], [0.5, 0.5]])  # argmax 0, 1, 1, 0 (tie -> 0)
    assert agreement(p, weak) == pytest.approx(0.5)
    want = -np.mean([0.9 * np.log(0.8) + 0.1 * np.log(0.2), 0.2 * np.log(0.4) + 0.8 * np.log(0.6),
                     0.6 * np.log(0.1) + 0.4 * np.log(0.9), 0.3 * np.log(0.5) + 0.7 * np.log(0.5)])
    assert soft_xent(p, weak) == pytest.approx(want)
    assert eval_epochs(5, 2) == [2, 4, 5]
    assert eval_epochs(4, 1) == [1, 2, 3, 4]
    assert eval_epochs(3, 10) == [3]
    assert default_eval_steps(100) == 10 and default_eval_steps(4) == 1 and default_eval_steps(25) == 2


def test_choose_on_a_hand_made_curve_keeps_weak_agreement_and_the_analysis_finds_the_oracle():
    """Three checkpoints on 4 val / 2 test examples: the student drifts towards the weak labels
    (agreement rises) while ground-truth accuracy peaks at the middle checkpoint."""
    weak_val = np.eye(2)[[0, 1, 1, 0]]  # weak labels: 0 1 1 0; truth: 0 1 0 0 (weak is wrong on #2)
    y_val, y_test = np.array([0, 1, 0, 0]), np.array([1, 0])
    oh = np.eye(2)
    val = [oh[[1, 1, 0, 1]], oh[[0, 1, 0, 0]], oh[[0, 1, 1, 0]]]  # agreement 1/4, 3/4, 1; acc 2/4, 1, 3/4
    test = [oh[[0, 0]], oh[[1, 0]], oh[[1, 1]]]  # test acc 1/2, 1, 1/2
    curve = weak_curve(val, weak_val)
    truth = truth_curve(val, test, y_val, y_test)
    assert [c["val_weak_agreement"] for c in curve] == [0.25, 0.75, 1.0]
    assert [c["val_acc"] for c in truth] == [0.5, 1.0, 0.75]
    assert [c["test_acc"] for c in truth] == [0.5, 1.0, 0.5]
    assert choose(curve, "weak_agreement") == 2
    assert select_checkpoint([c["val_acc"] for c in truth]) == 1  # the oracle (the protocol's analysis)
    assert choose(curve, "weak_xent") == 2  # one-hot val probs: xent is finite only where all agree
    assert "val_acc" not in curve[0]  # the method's own curve holds no ground truth


@pytest.mark.parametrize("bad", [{"every": 0}, {"every": 1.5}, {"eval_steps": 0}, {"select": "oracle"}])
def test_bad_settings_are_user_errors(bad):
    with pytest.raises(W2SError, match="early_stop"):
        METHODS.get("early_stop").config(bad)


# --------------------------------------------------------------------------- end to end


_config = toy_config


def _preds(rec, name: str, split: str) -> np.ndarray:
    f = pd.read_parquet(f"{rec['_dir']}/predictions/student-{name.replace('+', '_')}.parquet").query("split == @split")
    return f[["prob_0", "prob_1"]].to_numpy(np.float32)


def _weak(rec, split: str) -> np.ndarray:
    f = pd.read_parquet(f"{rec['_dir']}/predictions/weak.parquet").query("split == @split")
    return f[["prob_0", "prob_1"]].to_numpy(np.float32)


@pytest.fixture(scope="module")
def probe_run(tmp_path_factory, tiny_encoders):
    tmp = tmp_path_factory.mktemp("es")
    toy = write_toy_task(tmp / "toy.jsonl")
    weak, strong = tiny_encoders
    mp = pytest.MonkeyPatch()
    mp.setenv("W2S_CACHE_DIR", str(tmp / "cache"))
    try:
        cfg = _config(toy, weak, strong, tmp / "out", methods=["xent", "early_stop", "xent+early_stop",
                                                                "logconf+early_stop"],
                      method_args={"early_stop": {"every": 2}})
        cfg.probe.solver = "adam"  # the plain students train as early_stop's do (minibatch epochs), to compare
        return w2sgen.run(cfg, cache_dir=tmp / "cache")
    finally:
        mp.undo()


@pytest.mark.parametrize("name", ["early_stop", "xent+early_stop", "logconf+early_stop"])
def test_probe_curve_has_one_point_per_eval_and_the_kept_point_is_the_student(probe_run, name):
    rec = probe_run.runs[0]
    st = rec["stages"]["students"][name]
    es = st["train"]["early_stop"]
    an = st["analysis"]["early_stop"]  # ground-truth facts: computed by the protocol after the method
    assert [p["epoch"] for p in es["curve"]] == [2, 4, 5] and es["n_points"] == 3
    assert [p["step"] for p in es["curve"]] == [2, 4, 5]  # 40 examples, batch 64: one step per epoch
    assert not any("acc" in k for p in es["curve"] for k in p)  # the method's record has no ground truth
    kept = es["selected"]["index"]
    assert kept == select_checkpoint([p["val_weak_agreement"] for p in es["curve"]])
    assert an["oracle"]["index"] == select_checkpoint([p["val_acc"] for p in an["curve"]])
    assert an["selected"]["index"] == kept and an["selected"]["epoch"] == es["selected"]["epoch"]
    assert an["selected"]["test_acc"] == pytest.approx(st["test"]["acc"])
    assert an["curve"][kept]["val_acc"] == pytest.approx(st["val"]["acc"])
    assert es["selected"]["val_weak_agreement"] == pytest.approx(agreement(_preds(rec, name, "val"), _weak(rec, "val")))
    assert st["n_train"] == 40 and np.isfinite(st["final_loss"])


def test_probe_curve_ends_at_the_plain_student(probe_run):
    """The last checkpoint is the plain student: early_stop only watches the same training."""
    st = probe_run.runs[0]["stages"]["students"]
    xent = st["xent"]
    for name in ("early_stop", "xent+early_stop"):
        last = st[name]["analysis"]["early_stop"]["last"]
        assert last["test_acc"] == pytest.approx(xent["test"]["acc"])
        assert last["val_acc"] == pytest.approx(xent["val"]["acc"])
        assert st[name]["losses"] == pytest.approx(xent["losses"])
    assert st["early_stop"]["train"]["early_stop"]["curve"] == st["xent+early_stop"]["train"]["early_stop"]["curve"]
    assert st["logconf+early_stop"]["losses"] != pytest.approx(xent["losses"])  # the loss part is used


def test_finetune_mode_uses_the_eval_curve(tmp_path, tiny_encoders, cache_dir):
    weak, strong = tiny_encoders
    toy = write_toy_task(tmp_path / "toy.jsonl")
    cfg = _config(toy, weak, strong, tmp_path / "out", methods=["early_stop"], mode="finetune",
                  method_args={"early_stop": {"eval_steps": 2}},
                  finetune=FinetuneConfig(max_steps=4, batch_size=8, lr=1e-3))
    rec = w2sgen.run(cfg, cache_dir=cache_dir).runs[0]
    st = rec["stages"]["students"]["early_stop"]
    es = st["train"]["early_stop"]
    assert [p["step"] for p in es["curve"]] == [2, 4] and es["unit"] == "step"
    assert st["analysis"]["early_stop"]["selected"]["test_acc"] == pytest.approx(st["test"]["acc"])
    assert es["selected"]["val_weak_agreement"] == pytest.approx(agreement(_preds(rec, "early_stop", "val"),
                                                                           _weak(rec, "val")))
