"""``kl``: KL(p_student ‖ p_weak), the mode-seeking direction."""

from dataclasses import dataclass

from .base import Method


@dataclass
class KlConfig:
    pass


def _loss(logits, weak, step, total, window=None):
    from ..train.losses import kl

    return kl(logits, weak)


METHOD = Method(
    name="kl",
    description="KL(p_student ‖ p_weak): mode-seeking divergence to the weak labels (the reverse has xent's gradient).",
    config_cls=KlConfig,
    make_loss=lambda cfg: _loss,
)
