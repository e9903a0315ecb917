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
    select_fn(cfg, weak[, ctx, pos])    -> (keep (n,) bool, targets (n, K)[, info dict]) over the n
                                           transfer examples still kept (positions ``pos`` in transfer)
    supervise_fn(cfg, ctx)              -> Supervision: new weak probabilities on transfer/val/test
    train_fn(cfg, ctx, plan)            -> StageResult of the student (default: ctx.train_student)
    run_fn(cfg, ctx, plan)              -> StageResult with predictions on transfer/val/test
    key_fn(cfg, env)                    -> dict of what else the student's key must hold (other
                                           models' keys, run-config fields the method reads)
    analyze_fn(cfg, student, truth, ctx) -> dict of ground-truth analyses (run by the protocol after
                                           the method returned; see ``protocol.analyze_student``)

``ctx`` is a ``w2sgen.methods.context.StudentContext``: the run's task, splits, models, stage cache
and the finished weak floor, with helpers that train cached stages, behind the label firewall (no
ground truth of transfer, val or test; weak_train's stays readable).
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
    key_fn: Callable[[Any, Any], dict[str, Any]] | None = None
    """(config, env: protocol.KeyEnv) -> what the student's key must hold beyond the method's own
    settings and the weak labels: ``env.model_key(name)`` of every other model it uses,
    ``env.config(path)`` of every run-config field it reads (a context method only)."""
    analyze_fn: Callable[[Any, Any, dict[str, np.ndarray], Any], dict[str, Any]] | None = None
    """(config, student StageResult, truth {split: labels}, ctx) -> ground-truth analysis facts of
    the student's record (from the arrays the method kept in its train.json); run by the protocol
    after the method has returned, outside the label firewall."""
    trains: bool = True
    """The method trains a model under the run's training config (``probe.*`` or ``finetune.*``),
    which its student's key then holds; prompting baselines train nothing."""
    uses_ground_truth: bool = False
    """The method reads ground truth of transfer, val or test (e.g. probe_ladder's gt rungs): the
    firewall lets it, and every table marks it (*) and leaves it out of rankings."""

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

    def select(self, cfg: Any, weak: np.ndarray, ctx: Any = None, info: dict[str, Any] | None = None,
               positions: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Which of the candidate transfer examples the student trains on, and their targets:
        (keep (n,) bool, targets (n, K)) for the n candidates' weak labels ``weak`` (n, K).

        ``positions`` (n,): the candidates' positions in transfer (all of transfer by default; in a
        chain of filters, what the previous ones kept). Default: every example, with the weak labels
        as targets. ``info``: a dict that receives ``{name: facts}`` when select_fn returns facts as
        a third element.
        """
        if self.select_fn is None:
            return np.ones(len(weak), dtype=bool), weak
        if self.select_uses_context:
            if ctx is None:
                raise ValueError(f"method {self.name!r}: select needs the run context (strong features)")
            pos = np.arange(len(weak)) if positions is None else np.asarray(positions)
            out = self.select_fn(cfg, weak, ctx, pos)
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
