"""What a method is: a name, a one-line description, a config dataclass and a loss.

Two optional hooks see the weak labels on the transfer set before a student trains:
``prepare`` resolves settings that depend on them (``window``'s "midweak" radius), and
``select`` keeps a subset of the examples and may replace their targets (``confidence_filter``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

from ..errors import W2SError


@dataclass
class Method:
    """A student-training method registered by name."""

    name: str
    description: str
    config_cls: type
    """Dataclass of the method's settings (``--set NAME.FIELD=value``)."""
    make_loss: Callable[[Any], Callable[[torch.Tensor, torch.Tensor, int, int], torch.Tensor]]  # noqa: F821
    """config -> loss(logits, weak_target, step, total_steps, window=None); ``window`` holds the
    (probs, targets) of the rest of the effective batch under gradient accumulation."""
    prepare_fn: Callable[[Any, np.ndarray], Any] | None = None
    """(config, weak (N, K)) -> config with settings resolved from the weak labels; None: unchanged."""
    select_fn: Callable[[Any, np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None
    """(config, weak (N, K)) -> (keep (N,) bool, targets (N, K)); None: keep every example as is."""

    def config(self, overrides: dict[str, Any] | None = None) -> Any:
        from ..config import from_dict

        try:
            return from_dict(self.config_cls, dict(overrides or {}), where=f"method {self.name!r}")
        except TypeError as e:
            raise W2SError(f"method {self.name!r}: {e}") from None

    def settings(self, cfg: Any) -> dict[str, Any]:
        return dataclasses.asdict(cfg)

    def prepare(self, cfg: Any, weak: np.ndarray) -> Any:
        """The config with any setting that depends on the transfer set's weak labels (N, K) resolved."""
        return self.prepare_fn(cfg, weak) if self.prepare_fn is not None else cfg

    def select(self, cfg: Any, weak: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Which transfer examples the student trains on, and their targets: (keep (N,) bool, targets (N, K)).

        Default: every example, with the weak labels as targets.
        """
        if self.select_fn is None:
            return np.ones(len(weak), dtype=bool), weak
        keep, target = self.select_fn(cfg, weak)
        keep = np.asarray(keep, dtype=bool)
        if keep.shape != (len(weak),) or np.shape(target) != np.shape(weak):
            raise ValueError(f"method {self.name!r}: select returned shapes {keep.shape}, {np.shape(target)} "
                             f"for weak labels {np.shape(weak)}")
        if not keep.any():
            raise W2SError(f"method {self.name!r}: kept none of the {len(weak)} transfer examples; "
                           "loosen its settings (w2s list methods)")
        return keep, np.asarray(target, dtype=np.float32)
