"""GPT-2's final block at the last token only: same logits and gradients, one position through the MLP."""

from __future__ import annotations

import torch
from conftest import tiny_config

from w2sgen.models.classifier import Classifier, lora_wrap
from w2sgen.models.last_token import final_block, last_token_hidden
from w2sgen.models.pooling import pool


def gpt2(dropout: float = 0.0, **kw):
    from transformers import GPT2Model

    torch.manual_seed(0)
    cfg = tiny_config("gpt2", 60, layers=3)
    cfg.resid_pdrop = cfg.embd_pdrop = cfg.attn_pdrop = dropout
    for k, v in kw.items():
        setattr(cfg, k, v)
    return GPT2Model(cfg)


def batch():
    g = torch.Generator().manual_seed(2)
    ids = torch.randint(5, 60, (4, 8), generator=g)
    mask = torch.tensor([[1] * 8, [1] * 5 + [0] * 3, [1] + [0] * 7, [1] * 7 + [0]])
    return ids * mask, mask


def test_last_token_hidden_equals_the_whole_model_pooled_at_the_last_token():
    model = gpt2().eval()
    ids, mask = batch()
    with torch.no_grad():
        ref = pool(model(input_ids=ids, attention_mask=mask).last_hidden_state, mask, "last")
        got = last_token_hidden(model, ids, mask)
    assert got.shape == (4, 16)
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-6)


def test_the_final_mlp_sees_one_position_per_row_and_gradients_match():
    ids, mask = batch()
    y = torch.tensor([0, 1, 1, 0])
    grads, shapes = [], []
    for shortcuts in (False, True):
        torch.manual_seed(5)
        clf = Classifier(gpt2(), 2, "last", -1, shortcuts=shortcuts)
        clf.backbone.h[-1].mlp.c_fc.register_forward_hook(lambda _m, inp, _o: shapes.append(tuple(inp[0].shape)))
        logits = clf(ids, mask)
        torch.nn.functional.cross_entropy(logits, y).backward()
        grads.append({k: p.grad.clone() for k, p in clf.named_parameters()})
    assert shapes == [(4, 8, 16), (4, 16)], shapes  # whole sequence, then the last token only
    for k, g in grads[0].items():
        torch.testing.assert_close(grads[1][k], g, rtol=1e-5, atol=1e-7, msg=k)


def test_left_padding_is_handled_through_the_mask():
    model = gpt2().eval()
    ids, mask = batch()
    left_mask = mask.flip(1)
    left_ids = ids.flip(1)
    with torch.no_grad():
        ref = pool(model(input_ids=left_ids, attention_mask=left_mask).last_hidden_state, left_mask, "last")
        got = last_token_hidden(model, left_ids, left_mask)
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-5)


def test_the_path_is_refused_where_it_would_not_be_exact():
    assert final_block(gpt2().eval()) is not None
    assert final_block(gpt2(dropout=0.1).train()) is None  # dropout would be skipped
    assert final_block(gpt2(dropout=0.1).eval()) is not None  # eval: dropout is off
    assert final_block(gpt2(reorder_and_upcast_attn=True)) is None
    assert final_block(lora_wrap(gpt2(), "gpt2", rank=2, alpha=4, targets=None)) is None  # adapters on c_attn
    from transformers import LlamaModel

    assert final_block(LlamaModel(tiny_config("llama", 60))) is None
