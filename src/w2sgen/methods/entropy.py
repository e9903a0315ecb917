"""``entropy``: logconf with the student's soft prediction as self-target, i.e. an entropy penalty."""

from dataclasses import dataclass

from .base import Method


@dataclass
class EntropyConfig:
    alpha_max: float = 0.5
    """Final weight of the entropy term H(f)."""
    warmup_frac: float = 0.2
    """Fraction of steps over which α rises linearly from 0 to alpha_max (as in logconf)."""


def _make(cfg: EntropyConfig):
    from ..train.losses import entropy, warmup_alpha

    def loss(logits, weak, step, total, window=None):
        return entropy(logits, weak, warmup_alpha(step, total, cfg.alpha_max, cfg.warmup_frac))

    return loss


METHOD = Method(
    name="entropy",
    description="Entropy penalty: (1-α)·CE(f, weak) + α·H(f) (logconf with the soft self-target), α warmed up.",
    config_cls=EntropyConfig,
    make_loss=_make,
)
