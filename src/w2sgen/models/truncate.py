"""Stop a transformer at the layer we read: the blocks above it are never run.

``hidden_states[k]`` of a transformers model is the input of block ``k`` (the embeddings for
``k = 0``). A probe or a classifier that reads layer ``k < L`` (of ``L`` blocks) has no use for
blocks ``k .. L-1``, yet ``model(..., output_hidden_states=True)`` runs them all: on the packaged
``smollm2-135m`` (layer −11 of 30 blocks) that is a third of every forward pass. Here a forward
pre-hook on block ``k`` raises with that block's input, so the model's own code (embeddings,
masks, positions) runs unchanged up to the layer and nothing above it.

Families are listed only where a test checks the result equals ``hidden_states[k]``
(tests/models/test_truncate.py).
"""

from __future__ import annotations

import torch
from torch import nn

TRUNCATE_FAMILIES = ("gpt2", "llama", "mistral", "qwen2", "gemma", "gemma3_text", "gpt_neox", "bert", "mpnet")
"""``config.model_type`` values whose block ``k`` receives exactly ``hidden_states[k]`` (tested)."""


class _Reached(Exception):
    """Raised by the pre-hook with the hidden states entering the block; caught in :func:`hidden_at`."""

    def __init__(self, hidden: torch.Tensor):
        super().__init__("reached the probed layer")
        self.hidden = hidden


def blocks_path(model: nn.Module) -> str | None:
    """Dotted name of the model's list of transformer blocks (the ModuleList of ``config.num_hidden_layers``)."""
    n = getattr(getattr(model, "config", None), "num_hidden_layers", None)
    if not n:
        return None
    for name, mod in model.named_modules():
        if isinstance(mod, nn.ModuleList) and len(mod) == n:
            return name
    return None


def blocks_of(model: nn.Module, path: str | None = None) -> nn.ModuleList | None:
    """The model's list of transformer blocks (found by :func:`blocks_path` unless ``path`` is given)."""
    path = path if path is not None else blocks_path(model)
    return None if path is None else model.get_submodule(path)


def is_transformers_model(model: nn.Module) -> bool:
    """Whether the model (under a peft wrapper, its base model) is transformers' own code, not remote code."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return type(base).__module__.startswith("transformers.models.")


def stop_block(model: nn.Module, layer: int) -> int | None:
    """Index of the block whose input is ``hidden_states[layer]``, or None when nothing can be skipped.

    None for the top layer (``hidden_states[L]``, after any final norm), for families not in
    :data:`TRUNCATE_FAMILIES` or not transformers' own code (``trust_remote_code`` models), and for
    models whose blocks are not found.
    """
    cfg = getattr(model, "config", None)
    if getattr(cfg, "model_type", None) not in TRUNCATE_FAMILIES or not is_transformers_model(model):
        return None
    blocks = blocks_of(model)
    if blocks is None:
        return None
    L = len(blocks)
    k = layer if layer >= 0 else L + 1 + layer
    return k if 0 <= k < L else None


def hidden_at(model: nn.Module, block: int, path: str | None = None, **inputs) -> torch.Tensor:
    """Hidden states (B, T, C) entering block ``block``; the blocks from ``block`` up are not run.

    Equal to ``model(**inputs, output_hidden_states=True).hidden_states[block]`` for the families
    of :data:`TRUNCATE_FAMILIES`. The autograd graph up to that point is kept (training works).
    ``path``: the blocks' :func:`blocks_path`, when the caller has it (saves a walk over the modules).
    """
    def reached(_mod, args, kwargs):
        raise _Reached(args[0] if args else kwargs["hidden_states"])

    handle = blocks_of(model, path)[block].register_forward_pre_hook(reached, with_kwargs=True)
    try:
        model(**inputs)
    except _Reached as r:
        return r.hidden
    finally:
        handle.remove()
    raise RuntimeError(f"block {block} was never called: the model does not run its blocks in order")


def layer_hidden(model: nn.Module, layer: int, stop: int | None, path: str | None = None, **inputs) -> torch.Tensor:
    """(B, T, C) ``hidden_states[layer]``: stopped at block ``stop`` when given (:func:`stop_block`),
    else from the whole model (``last_hidden_state`` for the top layer, -1)."""
    if stop is not None:
        return hidden_at(model, stop, path, **inputs)
    if layer == -1:
        return model(**inputs).last_hidden_state
    return model(**inputs, output_hidden_states=True).hidden_states[layer]
