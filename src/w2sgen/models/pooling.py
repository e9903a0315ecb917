"""Pooling a sequence of hidden states into one vector per example (pure functions)."""

from __future__ import annotations

import torch

POOLINGS = ("mean", "cls", "last")


def last_token_index(attention_mask: torch.Tensor) -> torch.Tensor:
    """Index of the last non-pad token of each row, from the attention mask alone.

    Works for right and left padding and never looks at token ids (OpenAI's code counted
    ``input_ids != 0``, which breaks whenever token 0 occurs in the text).

    attention_mask: (B, T) of 0/1  ->  (B,) long
    """
    T = attention_mask.shape[1]
    flipped = attention_mask.flip(1).to(torch.long)  # (B, T)
    return (T - 1 - flipped.argmax(dim=1)).to(torch.long)


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, how: str) -> torch.Tensor:
    """(B, T, C) hidden states, (B, T) mask -> (B, C).

    * ``mean``: Σ_t m_t h_t / Σ_t m_t over non-pad tokens;
    * ``cls``: h_0 (first token);
    * ``last``: h_{t*} with t* the last non-pad position (:func:`last_token_index`).
    """
    if how == "mean":
        m = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
        return (hidden * m).sum(1) / m.sum(1).clamp_min(1.0)
    if how == "cls":
        return hidden[:, 0]
    if how == "last":
        idx = last_token_index(attention_mask)  # (B,)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), idx]
    raise ValueError(f"unknown pooling {how!r}; use one of {POOLINGS}")
