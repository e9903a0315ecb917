"""Methods for generation tasks: how the strong student learns from the weak model's written answers.

A generation method has a name, a settings dataclass (``--set NAME.FIELD=value``, the student's key
holds them) and a kind; methods compose with ``+`` as classification methods do, in kind order:

    labels : replaces the supervision: answers on transfer (e.g. a vote over several sampled weak
             answers) -- ``supervise_fn(cfg, ctx) -> Answers``
    select : keeps part of the transfer examples (e.g. by the weak answer's log-probability) --
             ``select_fn(cfg, answers) -> keep (n,) bool``; selects chain in the order written
    loss   : the student's SFT objective (e.g. a sequence-level confidence loss) --
             ``make_loss(cfg) -> loss(logits (B, T, V), labels (B, T), step, total)``; default the
             answer-token cross-entropy (``lm.answer_xent``)
    alone  : writes the student's answers by itself, composes with nothing --
             ``run_fn(cfg, ctx, key) -> GenStage``

Hooks receive a :class:`~w2sgen.generation.context.GenContext`: prompts, the weak model's answers
(with their log-probabilities), the models and the stage cache, but no gold answer of transfer, val
or test. ``key_fn(cfg, env)`` declares what else a method reads (other models, config fields), as
for classification (``protocol.KeyEnv``); ``analyze_fn(cfg, student, truth, ctx)`` runs in the
protocol after the method returned, with the gold answers.

Adding a method is one file in this package that defines ``METHOD = GenMethod(...)`` (found and
registered at import, as ``xent.py`` and ``zero_shot.py`` are), or one file anywhere that calls
:func:`register` once imported; see the module docstring of :mod:`w2sgen.generation` for the three
planned ones.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...errors import W2SError, did_you_mean
from ...registry import Registry

KINDS = ("labels", "select", "loss", "alone")


@dataclass
class Answers:
    """Answers written for one split: ids, texts and the writer's sequence log-probabilities."""

    ids: list[str]
    texts: list[str]
    logprob: np.ndarray
    """(n,) log-probability of each answer (its tokens and the stop token) under the model that wrote it."""
    n_tokens: np.ndarray
    """(n,) tokens of each answer."""

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, keep: np.ndarray) -> Answers:
        idx = np.flatnonzero(np.asarray(keep, dtype=bool))
        return Answers([self.ids[i] for i in idx], [self.texts[i] for i in idx], self.logprob[idx], self.n_tokens[idx])


@dataclass
class GenMethod:
    """A student method for generation tasks, registered by name."""

    name: str
    description: str
    config_cls: type
    """Dataclass of the method's settings."""
    kind: str = "loss"
    """labels, select, loss or alone (the module docstring)."""
    make_loss: Callable[[Any], Callable[..., Any]] | None = None
    select_fn: Callable[[Any, Answers], np.ndarray] | None = None
    supervise_fn: Callable[[Any, Any], Answers] | None = None
    run_fn: Callable[[Any, Any, Any], Any] | None = None
    key_fn: Callable[[Any, Any], dict[str, Any]] | None = None
    """(config, env: protocol.KeyEnv) -> what else the student's key must hold (a labels or alone method)."""
    analyze_fn: Callable[[Any, Any, dict[str, list[str]], Any], dict[str, Any]] | None = None
    """(config, student GenStage, gold answers {split: texts}, ctx) -> facts for run.json (after the method)."""
    trains: bool = True
    """The student is finetuned (its key holds finetune.*); False: prompting only."""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"generation method {self.name!r}: kind {self.kind!r} is not one of {KINDS}")

    def config(self, overrides: dict[str, Any] | None = None) -> Any:
        from ...config import from_dict

        return from_dict(self.config_cls, dict(overrides or {}), where=f"method {self.name!r}")


GEN_METHODS: Registry[GenMethod] = Registry("generation method")


def register(method: GenMethod, *, overwrite: bool = False) -> GenMethod:
    """Register a generation method under its name."""
    return GEN_METHODS.register(method.name, method, overwrite=overwrite)


@dataclass
class Part:
    method: GenMethod
    cfg: Any


@dataclass
class GenSpec:
    """A parsed (possibly composed) generation method with its settings."""

    name: str
    parts: list[Part]

    def one(self, kind: str) -> Part | None:
        got = [p for p in self.parts if p.method.kind == kind]
        return got[0] if got else None

    def of_kind(self, kind: str) -> list[Part]:
        return [p for p in self.parts if p.method.kind == kind]

    def settings(self) -> dict[str, Any]:
        return {p.method.name: dataclasses.asdict(p.cfg) for p in self.parts}

    @property
    def trains(self) -> bool:
        return all(p.method.trains for p in self.parts)

    @property
    def needs_context(self) -> bool:
        """The student's plan needs the run's models (a labels method); its key then holds what
        ``key_fn`` declares."""
        return any(p.method.kind in ("labels", "alone") for p in self.parts)


def parse(name: str, method_args: dict[str, dict[str, Any]] | None = None) -> GenSpec:
    """``name`` (``a`` or ``a+b``) as a checked GenSpec with its settings from ``method_args``.

    A method that exists only for classification is refused with the list of those that apply."""
    from ...methods import METHODS

    parts = []
    for raw in [p.strip() for p in str(name).split("+")]:
        if raw not in GEN_METHODS:
            applies = ", ".join(GEN_METHODS.names())
            if raw in METHODS:
                raise W2SError(f"method {raw!r} does not apply to generation tasks (answers written as text); "
                               f"methods that do: {applies}")
            close = did_you_mean(raw, GEN_METHODS.names())
            hint = close if close.startswith(" Did you mean") else ""
            raise W2SError(f"unknown method {raw!r} for a generation task.{hint} Methods for generation tasks: "
                           f"{applies} (a new one is a file in w2sgen/generation/methods/ defining METHOD)")
        m = GEN_METHODS.get(raw)
        # .get, not truthiness: a tracked method_args records only the entry read
        parts.append(Part(m, m.config(method_args.get(m.name) if method_args is not None else None)))
    for kind in ("labels", "loss", "alone"):
        got = [p.method.name for p in parts if p.method.kind == kind]
        if len(got) > 1:
            raise W2SError(f"method {name!r}: at most one {kind} method ({' and '.join(got)} are both {kind})")
    alone = [p.method.name for p in parts if p.method.kind == "alone"]
    if alone and len(parts) > 1:
        raise W2SError(f"method {name!r}: {alone[0]} writes its answers by itself and composes with nothing")
    parts.sort(key=lambda p: KINDS.index(p.method.kind))  # stable: selects keep their order
    return GenSpec("+".join(p.method.name for p in parts), parts)


def _discover() -> None:
    """Register the ``METHOD`` of every module of this package (one file per method)."""
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        method = getattr(importlib.import_module(f"{__name__}.{info.name}"), "METHOD", None)
        if isinstance(method, GenMethod) and not (method.name in GEN_METHODS and GEN_METHODS.get(method.name) is method):
            register(method)


_discover()
