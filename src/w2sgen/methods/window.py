"""``window``: cross-entropy only on the examples the student is still unsure about."""

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..errors import W2SError
from .base import Method


@dataclass
class WindowConfig:
    radius: float | str = "midweak"
    """r: train on an example while the student's max probability < 0.5 + r. A number >= 0, or
    "midweak": the median over the transfer set of the weak labels' margin |p_weak − 0.5|."""

    def __post_init__(self) -> None:
        r = self.radius
        if r != "midweak" and (isinstance(r, str) or not r >= 0):
            raise W2SError(f"method 'window': radius must be a number >= 0 or 'midweak', got {r!r}")


def midweak(weak: np.ndarray) -> float:
    """Median of the weak labels' margin max_k p_k − 0.5 (= |p_1 − 0.5| for binary labels). weak: (N, K)."""
    return float(np.median(np.asarray(weak, dtype=np.float64).max(-1) - 0.5))


def _prepare(cfg: WindowConfig, weak: np.ndarray) -> WindowConfig:
    return dataclasses.replace(cfg, radius=midweak(weak)) if cfg.radius == "midweak" else cfg


def _make(cfg: WindowConfig):
    from ..train import losses

    if isinstance(cfg.radius, str):
        raise ValueError("window: resolve radius='midweak' with METHOD.prepare(cfg, weak_labels) first")
    radius = float(cfg.radius)
    return lambda logits, weak, step, total, window=None: losses.window(logits, weak, radius)


METHOD = Method(
    name="window",
    description="Cross-entropy only where the student's max probability < 0.5 + r "
                "(r fixed, or 'midweak': median |p_weak − 0.5|).",
    config_cls=WindowConfig,
    make_loss=_make,
    prepare_fn=_prepare,
)
