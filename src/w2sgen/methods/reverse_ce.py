"""``reverse_ce``: reverse cross-entropy −Σ p_student · log p_weak."""

from dataclasses import dataclass

from .base import Method


@dataclass
class ReverseCeConfig:
    pass


def _loss(logits, weak, step, total, window=None):
    from ..train.losses import reverse_ce

    return reverse_ce(logits, weak)


METHOD = Method(
    name="reverse_ce",
    description="Reverse cross-entropy −Σ p_student · log p_weak (bias-variance view of W2S, 2025).",
    config_cls=ReverseCeConfig,
    make_loss=lambda cfg: _loss,
)
