"""``logconf``: the auxiliary confidence loss of Burns et al. (2023)."""

from dataclasses import dataclass

from .base import Method


@dataclass
class LogconfConfig:
    alpha_max: float = 0.5
    """Final weight of the student's own hardened predictions (the paper used 0.75 for its largest students)."""
    warmup_frac: float = 0.2
    """Fraction of steps over which α rises linearly from 0 to alpha_max."""


def _make(cfg: LogconfConfig):
    from ..train.losses import logconf, warmup_alpha

    def loss(logits, weak, step, total, window=None):
        return logconf(logits, weak, warmup_alpha(step, total, cfg.alpha_max, cfg.warmup_frac), window)

    loss.heads_batched = True  # logits (A, B, K) -> (A,): each head's own threshold (train.probe)
    loss.needs_window = True  # its threshold is over the effective batch (w2sgen.train.finetune.WINDOW_ATTR)
    return loss


METHOD = Method(
    name="logconf",
    description="Auxiliary confidence loss: (1-α)·CE(f, weak) + α·CE(f, f hardened at the weak positive rate).",
    config_cls=LogconfConfig,
    make_loss=_make,
)
