"""generative: LM finetuning on the task's unlabelled text, then ceiling and student on that model."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import build_tiny_lm, toy_config, write_toy_task

import w2sgen
from w2sgen.config import FinetuneConfig
from w2sgen.errors import W2SError
from w2sgen.methods import METHODS
from w2sgen.models import resolve_model
from w2sgen.models.lm import lm_finetune, lm_loss, load_causal_lm, save_causal_lm


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    return build_tiny_lm(tmp_path_factory.mktemp("lm") / "llama")


@pytest.mark.parametrize("lora", [True, False])
def test_lm_steps_lower_the_loss_on_the_text(tmp_path, tiny_lm, lora):
    text = ["paris is in france . the city of paris is good"]
    lm = load_causal_lm(resolve_model(str(tiny_lm)))
    before = lm_loss(lm, text)
    model, losses = lm_finetune(lm, text * 4, steps=8, lr=1e-2, batch_size=2, max_length=32, lora=lora, seed=0)
    lm.model = model
    after = lm_loss(lm, text)
    assert len(losses) == 8 and losses[0] == pytest.approx(before, rel=1e-4)
    assert after < before - 0.1
    assert not any(n for n, _ in model.named_parameters() if "lora" in n)  # adapters merged away
    # saved, it loads back as a local model directory with the same loss
    save_causal_lm(model, lm.tokenizer, tmp_path / "ft")
    again = load_causal_lm(resolve_model(str(tmp_path / "ft")))
    assert resolve_model(str(tmp_path / "ft")).kind == "decoder"
    assert lm_loss(again, text) == pytest.approx(after, abs=1e-5)


@pytest.mark.parametrize("bad", [{"steps": 0}, {"lr": 0}, {"batch_size": 0}, {"max_length": 1}])
def test_bad_settings_are_user_errors(bad):
    with pytest.raises(W2SError, match="generative"):
        METHODS.get("generative").config(bad)


_config = toy_config


def _lm_entries(cache_dir):
    return sorted((cache_dir / "stages" / "lm-finetune").glob("[!.]*"))


@pytest.mark.parametrize("mode", ["probe", "finetune"])
def test_end_to_end(tmp_path, tiny_encoders, tiny_lm, cache_dir, mode):
    weak, _ = tiny_encoders
    toy = write_toy_task(tmp_path / "toy.jsonl")
    kw = {"finetune": FinetuneConfig(max_steps=2, batch_size=8, micro_batch_size=8, lr=1e-3)} if mode == "finetune" else {}
    cfg = _config(toy, weak, tiny_lm, tmp_path / "out", methods=["xent", "generative", "generative+logconf"],
                  mode=mode, method_args={"generative": {"steps": 3, "batch_size": 4, "max_length": 16}}, **kw)
    res = w2sgen.run(cfg, cache_dir=cache_dir)
    sts = res.runs[0]["stages"]["students"]
    for name in ("generative", "generative+logconf"):
        st = sts[name]
        tr = st["train"]
        assert 0 <= st["test"]["acc"] <= 1 and st["n_train"] == 40 and not st["cached"]
        assert tr["lm_finetune"]["steps"] == 3 and tr["lm_finetune"]["n_texts"] == 80  # weak_train + transfer
        an = st["analysis"]["generative"]  # the own ceiling is ground truth: the protocol's analysis
        assert "own_ceiling" not in tr and 0 <= an["own_ceiling"]["test"]["acc"] <= 1
        assert "pgr_acc_own_ceiling" in an and "gap_acc_own_ceiling" in an and "flagged_own_ceiling" in an
        assert (an["pgr_acc_own_ceiling"] is None) == an["flagged_own_ceiling"]
    assert sts["generative"]["key"] != sts["xent"]["key"]
    (entry,) = _lm_entries(cache_dir)  # one LM finetune serves both students
    assert (entry / "model.safetensors").is_file() and (entry / "config.json").is_file()
    assert json.loads((entry / "lm_train.json").read_text())["n_texts"] == 80
    # the own ceiling differs from the run's ceiling (other weights), and the rerun is cached
    ceilings = sorted((cache_dir / "stages" / "ceiling").glob("[!.]*"))
    assert len(ceilings) == 2
    again = w2sgen.run(cfg, cache_dir=cache_dir).runs[0]["stages"]["students"]["generative"]
    assert again["cached"]  # the cached student reports the same facts (PGR against the own ceiling included)
    np.testing.assert_equal(again["analysis"]["generative"]["pgr_acc_own_ceiling"],
                            sts["generative"]["analysis"]["generative"]["pgr_acc_own_ceiling"])


def test_an_encoder_strong_model_fails_with_the_fix(tmp_path, tiny_encoders, cache_dir):
    weak, strong = tiny_encoders
    toy = write_toy_task(tmp_path / "toy.jsonl")
    with pytest.raises(W2SError, match="generative needs a decoder"):
        w2sgen.run(_config(toy, weak, strong, tmp_path / "out", methods=["generative"]), cache_dir=cache_dir)
