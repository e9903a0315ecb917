"""What a method is: a name, a one-line description, a config dataclass and a loss."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

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

    def config(self, overrides: dict[str, Any] | None = None) -> Any:
        from ..config import from_dict

        try:
            return from_dict(self.config_cls, dict(overrides or {}), where=f"method {self.name!r}")
        except TypeError as e:
            raise W2SError(f"method {self.name!r}: {e}") from None

    def settings(self, cfg: Any) -> dict[str, Any]:
        return dataclasses.asdict(cfg)
