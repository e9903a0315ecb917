"""Sparse input-embedding gradients with AdamW on the active rows give dense AdamW's result."""

from __future__ import annotations

import copy
import io

import numpy as np
import pytest
import torch
from conftest import build_tiny_model, toy_texts

from w2sgen.config import FinetuneConfig
from w2sgen.train import finetune as ft
from w2sgen.train.losses import xent
from w2sgen.train.optim import AdamW, clip_grad_norm, sparse_input_embedding


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.emb = torch.nn.Embedding(50, 8, padding_idx=0)
        self.out = torch.nn.Linear(8, 1)

    def get_input_embeddings(self):
        return self.emb

    def forward(self, ids):
        return self.out(torch.tanh(self.emb(ids))).pow(2).mean()


# later batches bring rows never seen before; 0 is padding; rows repeat within a batch
BATCHES = [[[1, 2, 2, 0]], [[3, 4, 1, 0]], [[7, 7, 8, 9]], [[1, 30, 31, 0]], [[2, 2, 2, 2]], [[45, 3, 0, 0]]]


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
@pytest.mark.parametrize("max_norm", [0.0, 1e-3])
def test_rows_adamw_equals_dense_adamw(weight_decay, max_norm):
    dense, sparse = Tiny(), Tiny()
    assert sparse_input_embedding(sparse) and sparse.emb.sparse
    opts = [torch.optim.AdamW(dense.parameters(), lr=0.05, weight_decay=weight_decay, fused=True),
            AdamW(sparse.parameters(), lr=0.05, weight_decay=weight_decay, fused=True)]
    for step, ids in enumerate(BATCHES):
        for model, opt in zip((dense, sparse), opts):
            opt.zero_grad(set_to_none=True)
            for half in (ids, [list(reversed(ids[0]))]):  # two micro-batches: sparse gradients accumulate
                model(torch.tensor(half)).backward()
            if max_norm:  # small enough to clip every step
                if model is dense:
                    torch.nn.utils.clip_grad_norm_(list(model.parameters()), max_norm)
                else:
                    clip_grad_norm(list(model.parameters()), max_norm)
            opt.step()
        assert sparse.emb.weight.grad.is_sparse and not dense.emb.weight.grad.is_sparse
        for a, b in zip(dense.parameters(), sparse.parameters()):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-6, msg=f"step {step}")
    active = opts[1].state[sparse.emb.weight]["active"]
    assert active.sum() == len({i for b in BATCHES for i in b[0]} - {0})  # padding never gets a gradient
    # the rows no batch touched did not move unless decayed
    untouched = sparse.emb.weight[10:30]
    assert torch.equal(untouched, Tiny().emb.weight[10:30]) == (weight_decay == 0)


def test_state_dict_round_trip_continues_identically():
    a = Tiny()
    sparse_input_embedding(a)
    opt = AdamW(a.parameters(), lr=0.05)
    for ids in BATCHES[:3]:
        opt.zero_grad()
        a(torch.tensor(ids)).backward()
        opt.step()
    b = copy.deepcopy(a)
    opt_b = AdamW(b.parameters(), lr=0.05)
    buf = io.BytesIO()  # as a checkpoint stores it (an in-memory state_dict shares the step tensors)
    torch.save(opt.state_dict(), buf)
    buf.seek(0)
    opt_b.load_state_dict(torch.load(buf))
    for ids in BATCHES[3:]:
        for m, o in ((a, opt), (b, opt_b)):
            o.zero_grad()
            m(torch.tensor(ids)).backward()
            o.step()
    for x, y in zip(a.parameters(), b.parameters()):
        assert torch.equal(x, y)


def test_shared_or_frozen_embeddings_stay_dense():
    m = Tiny()
    m.out2 = torch.nn.Linear(8, 50)
    m.out2.weight = m.emb.weight  # tied: another module adds a dense gradient
    assert not sparse_input_embedding(m) and not m.emb.sparse
    f = Tiny()
    f.emb.weight.requires_grad_(False)
    assert not sparse_input_embedding(f)


def test_loop_with_sparse_embedding_equals_dense(tmp_path, monkeypatch):
    """train_steps on a tiny GPT-2: the sparse-embedding path ends where the dense one does."""
    from w2sgen.models.registry import resolve_model

    model = resolve_model(str(build_tiny_model(tmp_path / "gpt2", "gpt2")))
    texts, y = toy_texts(24)
    target = np.eye(2, dtype=np.float32)[y] * 0.8 + 0.1
    cfg = FinetuneConfig(lr=1e-2, epochs=2, batch_size=8, micro_batch_size=4, weight_decay=0.01, max_grad_norm=0.5)
    out = {}
    for kind in ("sparse", "dense"):
        if kind == "dense":
            monkeypatch.setattr(ft, "sparse_input_embedding", lambda m: False)
        torch.manual_seed(0)
        clf, tok, _ = ft.build_model(model, 2, "last", -1, cfg, False, "cpu")
        run = ft.train_steps(clf, tok, texts, target, lambda lg, t, s, T, window=None: xent(lg, t), cfg,
                             lr=1e-2, head_lr=1e-2, gen=torch.Generator().manual_seed(0))
        out[kind] = (run.losses, [p.detach().clone() for p in clf.parameters()])
        assert clf.backbone.get_input_embeddings().sparse == (kind == "sparse")
    np.testing.assert_allclose(out["sparse"][0], out["dense"][0], rtol=0, atol=1e-6)
    for a, b in zip(out["sparse"][1], out["dense"][1]):  # the clipped norm sums in another order: float noise
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5)
