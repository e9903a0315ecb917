"""Fused activations: the same outputs and gradients as transformers' op-by-op tanh-GELU."""

from __future__ import annotations

import copy

import torch
from conftest import build_tiny_model

from w2sgen.models.fused import fuse_activations


def test_fused_gelu_equals_the_original(tmp_path):
    from transformers import AutoModel

    model = AutoModel.from_pretrained(build_tiny_model(tmp_path / "gpt2", "gpt2"))  # activation gelu_new
    fused = copy.deepcopy(model)
    assert fuse_activations(fused) == 2 and fuse_activations(fused) == 0  # one per layer, then none left
    ids = torch.randint(5, 40, (3, 9))
    outs = []
    for m in (model, fused):
        h = m(input_ids=ids).last_hidden_state
        h.pow(2).sum().backward()
        outs.append((h.detach(), [p.grad.clone() for p in m.parameters()]))
    torch.testing.assert_close(outs[0][0], outs[1][0], rtol=0, atol=1e-6)
    for a, b in zip(outs[0][1], outs[1][1]):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
