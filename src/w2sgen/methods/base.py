"""What a method is: a name, a one-line description, a config dataclass, a kind and its hooks.

Kinds, in the order a composed method (``ensemble+knn_filter+logconf+early_stop``) applies them:

    labels  : replaces the supervision on the transfer set (``ensemble``, ``bootstrap``)
    select  : keeps a subset of the transfer examples and may relabel them (``*_filter``)
    loss    : the student's training objective (``xent``, ``logconf``, ...; default ``xent``)
    train   : how the student is trained or which checkpoint is kept (``early_stop``, ``s2s``,
              ``generative``)
    alone   : a method that produces its predictions by itself and does not compose
              (``zero_shot``, ``few_shot``, ``probe_ladder``)

A composition holds at most one method of each kind except ``select`` (filters chain in order),
and an ``alone`` method only by itself. Hooks (all optional, by kind):

    prepare_fn(cfg, weak)               -> cfg resolved from the weak labels on transfer (N, K)
    select_fn(cfg, weak[, ctx])         -> (keep (N,) bool, targets (N, K)[, info dict])
    supervise_fn(cfg, ctx)              -> Supervision: new weak probabilities on transfer/val/test
    train_fn(cfg, ctx, plan)            -> StageResult of the student (default: ctx.train_student)
    run_fn(cfg, ctx)                    -> StageResult with predictions on transfer/val/test

``ctx`` is a ``w2sgen.methods.context.StudentContext``: the run's task, splits, models, stage cache
and the finished weak floor and ceiling, with helpers that train cached stages.
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

KINDS = ("labels", "select", "loss", "train", "alone")


def _no_loss(cfg: Any):
    def loss(logits, weak, step, total, window=None):
        from ..train.losses import xent

        return xent(logits, weak)

    loss.full_batch = True  # a fixed mean of per-example terms (see w2sgen.train.probe.full_batch)
    return loss


@dataclass
class Method:
    """A student-training method registered by name."""

    name: str
    description: str
    config_cls: type
    """Dataclass of the method's settings (``--set NAME.FIELD=value``)."""
    make_loss: Callable[[Any], Callable[[torch.Tensor, torch.Tensor, int, int], torch.Tensor]] = _no_loss  # noqa: F821
    """config -> loss(logits, weak_target, step, total_steps, window=None); ``window`` holds the
    (probs, targets) of the rest of the effective batch under gradient accumulation."""
    prepare_fn: Callable[[Any, np.ndarray], Any] | None = None
    """(config, weak (N, K)) -> config with settings resolved from the weak labels; None: unchanged."""
    select_fn: Callable[..., tuple[np.ndarray, np.ndarray]] | None = None
    """(config, weak (N, K)[, ctx]) -> (keep (N,) bool, targets (N, K)[, info dict]); None: keep every
    example as is. An optional third element (facts about the selection) goes to the student's train.json
    under ``select.<method name>``."""
    kind: str = "loss"
    """labels, select, loss, train or alone (see the module docstring)."""
    supervise_fn: Callable[[Any, Any], Any] | None = None
    """(config, ctx) -> Supervision (kind ``labels``)."""
    train_fn: Callable[[Any, Any, Any], Any] | None = None
    """(config, ctx, plan) -> StageResult (kind ``train``)."""
    run_fn: Callable[[Any, Any], Any] | None = None
    """(config, ctx) -> StageResult (kind ``alone``)."""
    select_uses_context: bool = False
    """select_fn takes the StudentContext as a third argument (it reads the strong model's features)."""
    modes: tuple[str, ...] = ("probe", "finetune")
    """Modes the method supports."""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"method {self.name!r}: kind {self.kind!r} is not one of {KINDS}")

    @property
    def needs_context(self) -> bool:
        """Whether the method needs the run's models or stages, beyond the weak labels, to plan its student."""
        return bool(self.supervise_fn or self.train_fn or self.run_fn or self.select_uses_context)

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

    def select(self, cfg: Any, weak: np.ndarray, ctx: Any = None,
               info: dict[str, Any] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Which transfer examples the student trains on, and their targets: (keep (N,) bool, targets (N, K)).

        Default: every example, with the weak labels as targets. ``info``: a dict that receives
        ``{name: facts}`` when select_fn returns facts as a third element.
        """
        if self.select_fn is None:
            return np.ones(len(weak), dtype=bool), weak
        if self.select_uses_context:
            if ctx is None:
                raise ValueError(f"method {self.name!r}: select needs the run context (strong features)")
            out = self.select_fn(cfg, weak, ctx)
        else:
            out = self.select_fn(cfg, weak)
        keep, target = out[0], out[1]
        if len(out) > 2 and info is not None:
            info[self.name] = out[2]
        keep = np.asarray(keep, dtype=bool)
        if keep.shape != (len(weak),) or np.shape(target) != np.shape(weak):
            raise ValueError(f"method {self.name!r}: select returned shapes {keep.shape}, {np.shape(target)} "
                             f"for weak labels {np.shape(weak)}")
        if not keep.any():
            raise W2SError(f"method {self.name!r}: kept none of the {len(weak)} transfer examples; "
                           "loosen its settings (w2s list methods)")
        return keep, np.asarray(target, dtype=np.float32)
