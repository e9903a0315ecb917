"""``product``: a product-of-experts target of student and supervisor."""

from dataclasses import dataclass

from .base import Method


@dataclass
class ProductConfig:
    alpha: float = 1.0
    """Exponent of the weak label."""
    beta: float = 1.0
    """Exponent of the student's own (detached) prediction."""


def _make(cfg: ProductConfig):
    from ..train.losses import product

    return lambda logits, weak, step, total, window=None: product(logits, weak, cfg.alpha, cfg.beta)


METHOD = Method(
    name="product",
    description="Cross-entropy to t ∝ p_strong^β · p_weak^α (student and supervisor as experts).",
    config_cls=ProductConfig,
    make_loss=lambda cfg: _make(cfg),
)
