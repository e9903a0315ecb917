"""A transformers backbone with a classification head, for full and LoRA finetuning."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import W2SError
from .pooling import pool


class Classifier(nn.Module):
    """backbone -> hidden states of ``layer`` -> pooled (B, C) -> fp32 linear head -> logits (B, K).

    The head is small-initialised (N(0, init_std²), zero bias) and always kept in fp32.
    """

    def __init__(self, backbone: nn.Module, num_classes: int, pooling: str, layer: int = -1,
                 init_std: float = 1e-3):
        super().__init__()
        self.backbone = backbone
        self.pooling = pooling
        self.layer = layer
        hidden = backbone.config.hidden_size
        self.head = nn.Linear(hidden, num_classes, dtype=torch.float32)
        nn.init.normal_(self.head.weight, std=init_std)
        nn.init.zeros_(self.head.bias)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        want_hidden = self.layer != -1
        out = self.backbone(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=want_hidden)
        h = out.hidden_states[self.layer] if want_hidden else out.last_hidden_state  # (B, T, C)
        pooled = pool(h, attention_mask, self.pooling)  # (B, C)
        with torch.autocast(pooled.device.type, enabled=False):  # the head stays fp32 under autocast
            return self.head(pooled.float())  # (B, K)


def no_dropout_config(path: str | Path, trust_remote_code: bool = False) -> Any:
    """The model's config with every dropout probability set to 0 (training is deterministic)."""
    from transformers import AutoConfig

    cfg = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
    for key, value in list(cfg.to_dict().items()):
        if isinstance(value, float) and ("dropout" in key or "pdrop" in key):
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
    return get_peft_model(backbone, cfg)
