"""zero_shot and few_shot: label-word scoring, prompt construction, the decoder check, end-to-end runs."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from conftest import build_tiny_lm, toy_config, write_toy_task

import w2sgen
from w2sgen.config import RunConfig, SplitConfig
from w2sgen.errors import W2SError
from w2sgen.methods import METHODS
from w2sgen.methods.few_shot import choose_shots
from w2sgen.models import resolve_model
from w2sgen.models.lm import (
    BINARY_WORDS,
    few_shot_prompt,
    label_probs,
    label_words,
    load_causal_lm,
    prompt_ids,
    render,
    require_decoder,
    score_label_words,
)


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    return build_tiny_lm(tmp_path_factory.mktemp("lm") / "llama")


# --------------------------------------------------------------------------- scoring


@pytest.mark.parametrize("family, words", [("llama", [" false", " true", " good movie"]),  # " good movie": two tokens
                                           ("llama", [" false", " true"]),  # single tokens: one pass per prompt
                                           ("gpt2", [" false", " true", " good movie"])])
def test_label_word_scores_equal_a_hand_computation(tmp_path, family, words):
    path = build_tiny_lm(tmp_path / family, family)
    lm = load_causal_lm(resolve_model(str(path)))
    tok = lm.tokenizer
    prompts = ["paris is in france\nanswer :", "the movie", "rome is in a city of italy . true or false ?",
               "oslo", "good film : 1 2 3 4 5 6"]
    got = score_label_words(lm, prompts, words, batch_size=4)  # (5, K), padded batches
    assert got.shape == (5, len(words))
    for i, p in enumerate(prompts):
        p_ids = prompt_ids(tok, p)
        assert p_ids[0] == tok.cls_token_id and tok.sep_token_id not in p_ids  # leading special kept, trailing dropped
        for k, w in enumerate(words):
            w_ids = tok(w, add_special_tokens=False)["input_ids"]
            ids = torch.tensor([p_ids + w_ids])
            with torch.no_grad():
                lp = torch.log_softmax(lm.model(input_ids=ids).logits[0], dim=-1)  # (L, V)
            want = sum(lp[len(p_ids) + j - 1, t].item() for j, t in enumerate(w_ids))
            assert got[i, k] == pytest.approx(want, abs=1e-4)
    p = label_probs(got)
    np.testing.assert_allclose(p, torch.softmax(torch.tensor(got), dim=1).numpy(), atol=1e-6)
    np.testing.assert_allclose(p.sum(1), 1, atol=1e-6)


@pytest.mark.parametrize("family, words", [("llama", [" false", " true"]), ("llama", [" false", " good movie"]),
                                           ("gpt2", [" false", " good movie"])])
def test_a_shared_prefix_runs_once_and_scores_the_same(tmp_path, family, words, monkeypatch):
    """Few-shot prompts share their demonstrations: their keys and values are computed once per call
    (a cache the batches extend). The scores equal those of running every prompt whole."""
    import w2sgen.models.lm as lm_mod

    path = build_tiny_lm(tmp_path / family, family)
    lm = load_causal_lm(resolve_model(str(path)))
    shots = "paris is in france . true\n\nrome is in spain . false\n\noslo is in norway . true\n\n"
    prompts = [shots + q for q in ["lima is in peru .", "the movie", "good film : 1 2 3 4 5 6", "oslo"]]
    calls = []
    real = lm.model.forward

    @functools.wraps(real)  # keeps the signature (which names the cache argument)
    def spy(*a, **kw):
        calls.append(kw["input_ids"].shape[1])
        return real(*a, **kw)

    monkeypatch.setattr(lm.model, "forward", spy)
    reused = score_label_words(lm, prompts, words, batch_size=3)
    assert calls[0] >= lm_mod.MIN_SHARED and max(calls[1:]) < calls[0]  # the prefix once, then short tails
    monkeypatch.setattr(lm_mod, "MIN_SHARED", 10**9)  # off: every prompt runs whole
    whole = score_label_words(lm, prompts, words, batch_size=3)
    np.testing.assert_allclose(reused, whole, atol=1e-4)


def test_label_probs_is_the_softmax_over_words():
    lp = np.log(np.array([[0.2, 0.6], [0.01, 0.03]]))
    np.testing.assert_allclose(label_probs(lp), [[0.25, 0.75], [0.25, 0.75]], atol=1e-6)


def test_label_words_default_from_names():
    assert label_words(["false", "true"], None) == [" false", " true"]
    assert label_words(["contradiction", "entailment"], None) == [" contradiction", " entailment"]
    assert label_words(["0", "1"], None) == BINARY_WORDS == [" false", " true"]
    assert label_words(["0", "1"], [" no", " yes"]) == [" no", " yes"]
    with pytest.raises(W2SError, match="label_words"):
        label_words(["0", "1", "2"], None)
    with pytest.raises(W2SError, match="one word per class"):
        label_words(["a", "b"], [" x"])


def test_few_shot_prompt_is_exact():
    t = "{text}\nAnswer:"
    words = [" false", " true"]
    got = few_shot_prompt(t, [("Paris is in France.", 1), ("Rome is in Spain.", 0)], "Oslo is in Norway.", words)
    assert got == ("Paris is in France.\nAnswer: true\n\n"
                   "Rome is in Spain.\nAnswer: false\n\n"
                   "Oslo is in Norway.\nAnswer:")
    assert render("Q: {text} ({choices})?\nA:", "x", words) == "Q: x (false or true)?\nA:"


def test_choose_shots_balances_the_classes():
    labels = np.array([0] * 10 + [1] * 6)
    pos = choose_shots(labels, 4, 2, np.random.default_rng(0))
    assert len(set(pos.tolist())) == 4 and np.bincount(labels[pos], minlength=2).tolist() == [2, 2]
    np.testing.assert_array_equal(pos, choose_shots(labels, 4, 2, np.random.default_rng(0)))  # seeded
    pos = choose_shots(labels, 5, 2, np.random.default_rng(1))
    assert sorted(np.bincount(labels[pos], minlength=2).tolist()) == [2, 3]
    rare = np.array([0] * 10 + [1])  # class 1 has one example: it gives it, class 0 fills the rest
    pos = choose_shots(rare, 4, 2, np.random.default_rng(0))
    assert np.bincount(rare[pos], minlength=2).tolist() == [3, 1] and len(set(pos.tolist())) == 4
    with pytest.raises(W2SError, match="shots"):
        choose_shots(np.array([0, 1]), 3, 2, np.random.default_rng(0))


@pytest.mark.parametrize("name, bad", [("zero_shot", {"template": "no text"}), ("zero_shot", {"label_words": [" x"]}),
                                       ("few_shot", {"shots": 0}), ("few_shot", {"source": "oracle"}),
                                       ("few_shot", {"label_words": [" a", " a"]})])
def test_bad_settings_are_user_errors(name, bad):
    with pytest.raises(W2SError, match=name):
        METHODS.get(name).config(bad)


def test_an_encoder_is_refused(tiny_encoders, tiny_lm):
    _, enc = tiny_encoders
    with pytest.raises(W2SError, match=r"zero_shot needs a decoder \(causal LM\), e.g. --strong smollm2-135m "
                                       r"or --set zero_shot.model=smollm2-135m"):
        require_decoder(resolve_model(str(enc)), "zero_shot")
    require_decoder(resolve_model(str(tiny_lm)), "zero_shot")


# --------------------------------------------------------------------------- end to end


_config = toy_config


def test_end_to_end_prompting(tmp_path, tiny_encoders, tiny_lm, cache_dir):
    weak, _ = tiny_encoders
    toy = write_toy_task(tmp_path / "toy.jsonl")
    methods = ["zero_shot", "few_shot"]
    cfg = _config(toy, weak, tiny_lm, tmp_path / "out", methods=methods,
                  method_args={"few_shot": {"shots": 3, "template": "{text} ({choices}) :"}})
    res = w2sgen.run(cfg, cache_dir=cache_dir)
    sts = res.runs[0]["stages"]["students"]
    for name in methods:
        st = sts[name]
        assert 0 <= st["test"]["acc"] <= 1 and not st["cached"] and st["n_train"] == 0
        assert st["train"]["label_words"] == [" false", " true"]  # toy labels are 0/1
        # a flagged run (gap under the threshold or its interval holding 0) stores no PGR
        assert st["pgr_acc"] is None or np.isfinite(st["pgr_acc"])
    assert sts["zero_shot"]["train"]["template"] == "{text}\nAnswer:" and sts["zero_shot"]["train"]["shots"] == 0
    fs = sts["few_shot"]["train"]
    assert fs["shots"] == 3 and fs["source"] == "gt" and len(fs["shot_examples"]) == 3
    assert fs["example_prompt"].count(" (false or true) :") == 4  # three demonstrations and the query
    again = w2sgen.run(cfg, cache_dir=cache_dir).runs[0]["stages"]["students"]
    assert all(again[m]["cached"] for m in methods)
    assert again["zero_shot"]["test"] == sts["zero_shot"]["test"]
    scores = sorted((cache_dir / "stages" / "prompt-scores").glob("[!.]*"))
    assert len(scores) == 2 and all((d / "logprobs.safetensors").is_file() for d in scores)
    # other probe settings: prompting trains nothing, so its students come back from the cache
    cfg.probe.epochs = 6
    other = w2sgen.run(cfg, cache_dir=cache_dir).runs[0]["stages"]["students"]
    assert other["zero_shot"]["cached"] and other["zero_shot"]["test"] == sts["zero_shot"]["test"]
    assert sorted((cache_dir / "stages" / "prompt-scores").glob("[!.]*")) == scores
    # weak-labelled demonstrations are a different student
    cfg.method_args = {"few_shot": {"shots": 3, "source": "weak"}}
    cfg.methods = ["few_shot"]
    w = w2sgen.run(cfg, cache_dir=cache_dir).runs[0]["stages"]["students"]["few_shot"]
    assert not w["cached"] and w["train"]["source"] == "weak"


def test_an_encoder_strong_model_fails_with_the_fix(tmp_path, tiny_encoders, cache_dir):
    weak, strong = tiny_encoders
    toy = write_toy_task(tmp_path / "toy.jsonl")
    with pytest.raises(W2SError, match="zero_shot needs a decoder"):
        w2sgen.run(_config(toy, weak, strong, tmp_path / "out", methods=["zero_shot"]), cache_dir=cache_dir)


# --------------------------------------------------------------------------- real model


@pytest.mark.integration
def test_zero_shot_cities_smollm2(tmp_path, cache_dir):
    """zero_shot on cities with smollm2-135m (~200 test examples): the accuracy is finite."""
    cfg = RunConfig(task="cities", weak="minilm-l6", strong="smollm2-135m", out=str(tmp_path / "out"), seeds=[0],
                    methods=["zero_shot"], splits=SplitConfig(n_weak_train=20, n_transfer=20, n_val=10, n_test=200, min_val=10))
    cfg.probe.epochs = 5
    res = w2sgen.run(cfg, cache_dir=cache_dir)
    st = res.runs[0]["stages"]["students"]["zero_shot"]
    print("zero_shot cities smollm2-135m test acc:", st["test"]["acc"], "auroc:", st["test"]["auroc"])
    assert np.isfinite(st["test"]["acc"])
