"""``confidence_filter``: train (with xent) only on the weak labels that are not near 0.5."""

from dataclasses import dataclass

import numpy as np

from ..errors import W2SError
from .base import Method


@dataclass
class ConfidenceFilterConfig:
    radius: float = 0.1
    """r: drop the examples whose weak probability lies in [0.5 − r, 0.5 + r]."""

    def __post_init__(self) -> None:
        if not 0 <= self.radius < 0.5:
            raise W2SError(f"method 'confidence_filter': radius must be in [0, 0.5), got {self.radius!r}")


def keep_mask(weak: np.ndarray, radius: float) -> np.ndarray:
    """keep_i = max_k w_ik > 0.5 + r (for binary labels: w_i1 ∉ [0.5 − r, 0.5 + r]). weak (N, K) -> (N,) bool."""
    return np.asarray(weak).max(-1) > 0.5 + radius


def _select(cfg: ConfidenceFilterConfig, weak: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return keep_mask(weak, cfg.radius), weak


METHOD = Method(
    name="confidence_filter",
    description="Drop weak labels with probability in [0.5 − r, 0.5 + r], then train on the rest (xent, or the loss it is composed with).",
    config_cls=ConfidenceFilterConfig,
    select_fn=_select,
    kind="select",
)
