"""A transformers backbone with a classification head, for full and LoRA finetuning."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import W2SError
from .last_token import final_block, last_token_hidden
from .pooling import pool
from .truncate import blocks_path, layer_hidden, stop_block


class Classifier(nn.Module):
    """backbone -> hidden states of ``layer`` -> pooled (B, C) -> fp32 linear head -> logits (B, K).

    The head is small-initialised (N(0, init_std²), zero bias) and always kept in fp32.
    With ``shortcuts`` the backbone runs only what the pooled vector reads: no block above
    ``layer`` (:mod:`.truncate`), and for "last" pooling of GPT-2's top layer the final block at the
    last token only (:mod:`.last_token`); the logits and gradients are the same to float rounding.
    ``shortcuts=None`` (the default) turns them on in a single process and off under several (FSDP
    gathers a block's sharded weights only inside that block's own forward). They are also off
    while dropout is active in training, so that a run draws the same dropout masks as the whole
    model would. ``backbone`` and ``layer`` are fixed at construction (the shortcut is planned then).
    """

    def __init__(self, backbone: nn.Module, num_classes: int, pooling: str, layer: int = -1,
                 init_std: float = 1e-3, shortcuts: bool | None = None):
        super().__init__()
        if shortcuts is None:
            from ..train.distributed import is_distributed

            shortcuts = not is_distributed()
        self.backbone = backbone
        self.pooling = pooling
        self.layer = layer
        self.shortcuts = shortcuts
        self._blocks = blocks_path(backbone) if shortcuts else None  # dotted name of the block list
        self._stop = stop_block(backbone, layer) if shortcuts else None  # first block not run, if any
        self._last_token = bool(shortcuts and pooling == "last" and layer == -1
                                and final_block(backbone, self._blocks) is not None)  # GPT-2's top block at one token
        self._dropout = has_dropout(backbone)
        hidden = backbone.config.hidden_size
        self.head = nn.Linear(hidden, num_classes, dtype=torch.float32)
        nn.init.normal_(self.head.weight, std=init_std)
        nn.init.zeros_(self.head.bias)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        pooled = self.pooled(input_ids, attention_mask)  # (B, C)
        with torch.autocast(pooled.device.type, enabled=False):  # the head stays fp32 under autocast
            return self.head(pooled.float())  # (B, K)

    def pooled(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, T) ids and mask -> (B, C): the pooled hidden states of ``layer``."""
        short = self.shortcuts and not (self.training and self._dropout)
        if short and self._last_token:
            return last_token_hidden(self.backbone, input_ids, attention_mask, self._blocks)
        h = layer_hidden(self.backbone, self.layer, self._stop if short else None, self._blocks,
                         input_ids=input_ids, attention_mask=attention_mask)  # (B, T, C)
        return pool(h, attention_mask, self.pooling)


def has_dropout(backbone: nn.Module) -> bool:
    """Whether training draws dropout masks: a Dropout module, or a dropout probability in the config
    (attention dropout is often applied functionally), above 0. The config's task-head settings
    (``summary_*``, ``classifier_*``) do not count: the backbone has no such head."""
    if any(isinstance(m, nn.Dropout) and m.p > 0 for m in backbone.modules()):
        return True
    probs = _dropout_probs(getattr(backbone, "config", None))
    return any(v > 0 for k, v in probs.items() if not k.startswith(("summary_", "classifier_")))


def _dropout_probs(cfg: Any) -> dict[str, float]:
    """The config's dropout probabilities: its float fields named ``*dropout*`` or ``*pdrop*``."""
    items = cfg.to_dict().items() if hasattr(cfg, "to_dict") else ()
    return {k: v for k, v in items if isinstance(v, float) and ("dropout" in k or "pdrop" in k)}


def no_dropout_config(path: str | Path, trust_remote_code: bool = False) -> Any:
    """The model's config with every dropout probability set to 0 (training is deterministic)."""
    from transformers import AutoConfig

    cfg = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
    for key in _dropout_probs(cfg):
        setattr(cfg, key, 0.0)
    return cfg


def enable_checkpointing(backbone: nn.Module) -> None:
    """Recompute activations in backward (non-reentrant), across transformers versions."""
    if hasattr(backbone, "activation_checkpointing_enable"):  # transformers >= 5.x
        backbone.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        backbone.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})


def lora_wrap(backbone: nn.Module, family: str, rank: int, alpha: float, targets: list[str] | None) -> nn.Module:
    """Wrap the backbone with LoRA adapters (peft); base weights stay frozen and untouched."""
    from peft import LoraConfig, get_peft_model

    from .families import LORA_TARGETS

    targets = targets or LORA_TARGETS.get(family)
    if not targets:
        raise W2SError(f"no LoRA target modules known for model family {family!r}; "
                       "set finetune.lora_targets=[...] (names of Linear modules)")
    cfg = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=0.0, bias="none", target_modules=targets,
                     fan_in_fan_out=family == "gpt2")
    with warnings.catch_warnings():  # peft calls transformers' deprecated is_gradient_checkpointing
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        return get_peft_model(backbone, cfg)
