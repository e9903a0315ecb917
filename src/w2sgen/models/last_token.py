"""GPT-2's final block at the last token only: what "last" pooling of the top layer reads.

A classifier that pools the last non-pad token of the top layer reads one position of the final
block's output. That position needs the final block's keys and values at every position, but
its query, attention output, projection and MLP at one position only. Per token the block costs
12·C² multiply-adds (QKV 3C², projection C², MLP 8C²); at the last token only, the other
positions cost 2·C² (their keys and values), so a 6-layer GPT-2 saves up to 10/72 ≈ 14% of its
block FLOPs, forward and backward (less for short rows; the attention scores are left out of this
count; the speed-up is measured in bench/speed.py). The result equals the full model's to float
rounding (tests/models/test_last_token.py).

Only GPT-2 blocks (``transformers``' ``GPT2Block``, self-attention, plain ``Conv1D`` weights:
not LoRA-wrapped) take this path; everything else runs the model whole.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .pooling import last_token_index
from .truncate import blocks_of, blocks_path, hidden_at, is_transformers_model


def final_block(backbone: nn.Module, path: str | None = None) -> nn.Module | None:
    """The GPT-2 model's final block when this path computes it exactly, else None.

    Not for other families or remote code, LoRA-wrapped weights, cross-attention, eager upcast
    attention, pruned heads, or dropout that is active (a training module with a nonzero dropout
    probability).
    """
    if getattr(getattr(backbone, "config", None), "model_type", None) != "gpt2" or not hasattr(backbone, "ln_f") \
            or not is_transformers_model(backbone):
        return None
    blocks = blocks_of(backbone, path)
    if blocks is None or not len(blocks):
        return None
    block = blocks[-1]
    attn = getattr(block, "attn", None)
    cfg = backbone.config
    plain = {type(m).__name__ for m in (getattr(attn, "c_attn", None), getattr(attn, "c_proj", None),
                                        getattr(getattr(block, "mlp", None), "c_fc", None),
                                        getattr(getattr(block, "mlp", None), "c_proj", None))}
    if type(block).__name__ != "GPT2Block" or plain != {"Conv1D"} or getattr(attn, "is_cross_attention", True) \
            or getattr(cfg, "add_cross_attention", False) or getattr(cfg, "reorder_and_upcast_attn", False) \
            or getattr(attn, "split_size", None) != cfg.hidden_size:
        return None
    drops = [m.p for m in block.modules() if isinstance(m, nn.Dropout)]
    if block.training and any(drops):
        return None
    return block


def last_token_hidden(backbone: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                      path: str | None = None) -> torch.Tensor:
    """(B, C): the top layer's hidden state (after ``ln_f``) at each row's last non-pad token.

    Equal to ``pool(backbone(input_ids, attention_mask).last_hidden_state, attention_mask, "last")``;
    the final block runs its query, attention, projection and MLP at that token only. The caller
    checks :func:`final_block` first; ``path`` is the blocks' :func:`blocks_path` when known.
    """
    path = path if path is not None else blocks_path(backbone)
    blocks = blocks_of(backbone, path)
    block = blocks[-1]
    h = hidden_at(backbone, len(blocks) - 1, path, input_ids=input_ids, attention_mask=attention_mask)  # (B, T, C)
    B, T, C = h.shape
    attn = block.attn
    H, D = attn.num_heads, attn.head_dim
    idx = last_token_index(attention_mask)  # (B,)
    rows = torch.arange(B, device=h.device)
    x = block.ln_1(h)  # (B, T, C)
    W, b = attn.c_attn.weight, attn.c_attn.bias  # (C, 3C), (3C,): [q | k | v]
    kv = torch.addmm(b[C:], x.reshape(B * T, C), W[:, C:]).view(B, T, 2, H, D)
    k, v = kv[:, :, 0].transpose(1, 2), kv[:, :, 1].transpose(1, 2)  # (B, H, T, D) each
    q = torch.addmm(b[:C], x[rows, idx], W[:, :C]).view(B, H, 1, D)  # (B, H, 1, D)
    pos = torch.arange(T, device=h.device)
    keep = (pos[None, :] <= idx[:, None]) & attention_mask.bool()  # (B, T): causal and not padding
    o = F.scaled_dot_product_attention(q, k.to(q.dtype), v.to(q.dtype), attn_mask=keep[:, None, None, :],
                                       scale=attn.scaling)  # (B, H, 1, D)
    out = h[rows, idx] + attn.c_proj(o.reshape(B, C))  # (B, C)
    out = out + block.mlp(block.ln_2(out))
    return backbone.ln_f(out)
