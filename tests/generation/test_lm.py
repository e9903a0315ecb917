"""SFT on answer tokens and greedy decoding, on a tiny random decoder."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import build_tiny_lm

from w2sgen.config import FinetuneConfig
from w2sgen.generation.lm import (
    IGNORE,
    answer_xent,
    encode,
    generate,
    left_pad,
    load_lm,
    render,
    sft,
    stop_ids,
)
from w2sgen.models.lm import sequence_logprobs

PAIRS = [("paris", "france"), ("berlin", "germany"), ("rome", "italy"), ("madrid", "spain")]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny_lm(tmp_path_factory.mktemp("lm") / "tiny")


def _lm(path):
    return load_lm(str(path), device="cpu", dtype="fp32")


def _prompts(n: int = 4) -> tuple[list[str], list[str]]:
    rows = (PAIRS * 4)[:n]
    return [render("{prompt}\nAnswer:", f"the city of {c} is in ?") for c, _ in rows], [k for _, k in rows]


def test_encode_puts_the_loss_on_answer_and_eos_only(tiny):
    tok = _lm(tiny).tokenizer
    ids, n = encode(tok, "the city of paris is in ?", "france", max_length=64)
    assert ids[n:] == tok(" france", add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    assert ids[0] == tok.cls_token_id  # the tokenizer's leading special token stays
    cut, m = encode(tok, "the city of paris is in ?", "france", max_length=5)
    assert len(cut) == 5 and cut[m:] == ids[n:] and cut[0] == ids[0]  # the prompt lost tokens, not the answer


def test_left_pad_counts_positions_from_the_first_real_token():
    ids, mask, pos, lab = left_pad([[5, 6, 7], [8]], pad_id=0, labels=[[IGNORE, 6, 7], [8]])
    assert ids.tolist() == [[5, 6, 7], [0, 0, 8]] and mask.tolist() == [[1, 1, 1], [0, 0, 1]]
    assert pos.tolist() == [[0, 1, 2], [0, 0, 0]] and lab.tolist() == [[IGNORE, 6, 7], [IGNORE, IGNORE, 8]]


def test_answer_xent_is_the_mean_over_labelled_positions():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 5)
    labels = torch.tensor([[IGNORE, 1, 2], [IGNORE, IGNORE, 4]])
    lp = torch.log_softmax(logits, -1)
    want = -(lp[0, 1, 1] + lp[0, 2, 2] + lp[1, 2, 4]) / 3
    assert torch.allclose(answer_xent(logits, labels), want)


def test_greedy_answers_are_batch_invariant_and_their_logprob_is_the_sequence_logprob(tiny):
    lm = _lm(tiny)
    prompts, _ = _prompts(3)
    prompts[1] = prompts[1].replace("the city of", "a")  # rows of different lengths: left padding matters
    one = generate(lm, prompts, max_new_tokens=4, batch_size=1)
    many = generate(lm, prompts, max_new_tokens=4, batch_size=3)
    assert one.texts == many.texts
    np.testing.assert_allclose(one.logprob, many.logprob, atol=1e-4)
    from w2sgen.models.lm import prompt_ids

    tok = lm.tokenizer
    for i, p in enumerate(prompts):  # teacher-forced log-probability of the written tokens (+ the stop token)
        out = lm.model.generate(torch.tensor([prompt_ids(tok, p)]), max_new_tokens=4, do_sample=False,
                                eos_token_id=stop_ids(tok), pad_token_id=tok.pad_token_id)[0].tolist()
        start = len(prompt_ids(tok, p))
        seq = out[:start + one.n_tokens[i] + int(one.stopped[i])]
        ref = sequence_logprobs(lm.model, [seq], [start], pad_id=tok.pad_token_id)[0]
        assert one.logprob[i] == pytest.approx(ref, abs=1e-4)
    assert many.tokens == int((many.n_tokens + many.stopped).sum()) and many.tokens_per_s > 0


def _hand_greedy(lm, prompt: str, max_new_tokens: int) -> tuple[str, float]:
    """(answer, log-probability) by argmax of the raw logits, one token at a time, stopping as generate does."""
    from w2sgen.models.lm import prompt_ids

    tok = lm.tokenizer
    stops, ids, new, total = set(stop_ids(tok)), prompt_ids(tok, prompt), [], 0.0
    with torch.inference_mode():
        for _ in range(max_new_tokens):
            lp = torch.log_softmax(lm.model(torch.tensor([ids + new])).logits[0, -1].double(), -1)
            t = int(lp.argmax())
            total += float(lp[t])
            if t in stops:
                break
            new.append(t)
    return tok.decode(new, skip_special_tokens=True).split("\n")[0].strip(), total


def test_greedy_ignores_the_checkpoints_generation_config(tiny, tmp_path):
    import json
    import shutil

    path = tmp_path / "penalised"
    shutil.copytree(tiny, path)  # a hub-style generation_config.json that penalises repeats
    (path / "generation_config.json").write_text(json.dumps({"repetition_penalty": 3.0, "no_repeat_ngram_size": 1}))
    lm = _lm(path)
    assert lm.model.generation_config.repetition_penalty == 3.0
    prompts, _ = _prompts(4)
    got = generate(lm, prompts, max_new_tokens=5, batch_size=4)
    hand = [_hand_greedy(lm, p, 5) for p in prompts]
    assert got.texts == [t for t, _ in hand]
    np.testing.assert_allclose(got.logprob, [lp for _, lp in hand], atol=1e-4)
    assert lm.model.generation_config.repetition_penalty == 3.0  # the model's own config is back
    # the fixture bites: generate() with the checkpoint's config writes other answers
    from w2sgen.models.lm import prompt_ids

    tok = lm.tokenizer
    inherited = [tok.decode(lm.model.generate(torch.tensor([prompt_ids(tok, p)]), max_new_tokens=5, do_sample=False,
                                              eos_token_id=stop_ids(tok), pad_token_id=tok.pad_token_id
                                              )[0, len(prompt_ids(tok, p)):].tolist(), skip_special_tokens=True).strip()
                 for p in prompts]
    assert inherited != got.texts


def test_sft_counts_the_prompts_cut_to_max_length_and_timings_carry_the_load(tiny):
    lm = _lm(tiny)
    prompts, answers = _prompts(4)
    prompts[1] = prompts[1].replace("the city of", "a")  # shorter: fits where the others are cut
    full = [len(encode(lm.tokenizer, p, a, 10_000)[0]) for p, a in zip(prompts, answers, strict=True)]
    assert full[1] < full[0]
    res = sft(lm, prompts, answers, lr=1e-3, lora=True, seed=0,
              cfg=FinetuneConfig(max_steps=1, batch_size=4, max_length=full[1]))
    assert res.info["n_truncated"] == 3 and res.info["truncated_share"] == 0.75
    assert res.info["train_tokens"] == sum(min(n, full[1]) for n in full)  # real tokens: prompt, answer, EOS
    assert len(res.info["train_load_1min"]) == 2 and all(isinstance(x, float) for x in res.info["train_load_1min"])
    g = generate(res.lm, prompts, max_new_tokens=2, batch_size=4)
    assert len(g.load_1min) == 2 and all(isinstance(x, float) for x in g.load_1min)


@pytest.mark.parametrize("lora", [False, True])
def test_sft_learns_the_answers(tiny, lora):
    lm = _lm(tiny)
    prompts, answers = _prompts(16)
    before = generate(lm, prompts[:4], max_new_tokens=3, batch_size=4).texts
    # the tiny random LM head (std 0.02, width 16) barely moves the logits when frozen: LoRA adapts it too
    cfg = FinetuneConfig(epochs=30, batch_size=8, micro_batch_size=4, lora_rank=8,
                         lora_targets=["q_proj", "v_proj", "up_proj", "down_proj", "lm_head"])
    res = sft(lm, prompts, answers, lr=3e-2, lora=lora, cfg=cfg, seed=0)
    assert res.info["steps"] == 60 and res.info["effective_batch"] == 8 and res.info["train_tokens_per_s"] > 0
    assert res.losses[-1] < res.losses[0] / 3
    after = generate(res.lm, prompts[:4], max_new_tokens=3, batch_size=4).texts
    right = sum(a == k for a, k in zip(after, answers[:4], strict=True))
    assert right >= 2 and sum(a == k for a, k in zip(before, answers[:4], strict=True)) == 0
    assert bool(res.adapters) is lora and all("lora" in k for k in res.adapters)


def test_stop_ids_are_eos_and_newline_tokens():
    from w2sgen.models import resolve_model
    from w2sgen.models.backbone import local_dir

    try:
        path = local_dir(resolve_model("smollm2-135m"))
    except Exception:  # noqa: BLE001 - the packaged model is optional here
        pytest.skip("smollm2-135m is not installed")
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    stops = stop_ids(tok)
    assert tok.eos_token_id in stops and tok("\n", add_special_tokens=False)["input_ids"][0] in stops
    assert all("\n" in tok.decode([i]) for i in stops if i != tok.eos_token_id)
    assert tok(" France", add_special_tokens=False)["input_ids"][0] not in stops
