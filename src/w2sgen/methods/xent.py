"""``xent``: naive finetuning on the weak soft labels (the paper's baseline)."""

from dataclasses import dataclass

from .base import Method


@dataclass
class XentConfig:
    pass


def _loss(logits, weak, step, total, window=None):
    from ..train.losses import xent

    return xent(logits, weak)


_loss.heads_batched = True  # logits (A, B, K) -> (A,) (train.probe)
_loss.full_batch = True  # a fixed mean of per-example terms: full-batch solvers may train it (train.probe)

METHOD = Method(
    name="xent",
    description="Cross-entropy on the weak soft labels (naive weak-to-strong training).",
    config_cls=XentConfig,
    make_loss=lambda cfg: _loss,
)
