"""Composed methods: ``logconf+early_stop``, ``ensemble+knn_filter+logconf``.

A composition names methods joined by ``+``. Each part keeps its own settings
(``--set logconf.alpha_max=0.75``). The parts apply in kind order (labels → select → loss →
train); at most one part of each kind except ``select`` (filters chain in the order written);
no loss part means ``xent``. ``alone`` methods (``zero_shot``, ``few_shot``, ``probe_ladder``)
do not compose.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import W2SError
from .base import KINDS, Method


@dataclass
class Part:
    method: Method
    cfg: Any


@dataclass
class Composite:
    """A method or a composition of methods, each part with its config."""

    name: str
    """Canonical name: the registered names joined by '+' in the order given."""
    parts: list[Part]

    def of_kind(self, kind: str) -> list[Part]:
        return [p for p in self.parts if p.method.kind == kind]

    def one(self, kind: str) -> Part | None:
        found = self.of_kind(kind)
        return found[0] if found else None

    @property
    def loss(self) -> Part:
        """The loss part (``xent`` when the composition names none)."""
        from . import METHODS

        p = self.one("loss")
        if p is None:
            m = METHODS.get("xent")
            p = Part(m, m.config())
        return p

    @property
    def needs_context(self) -> bool:
        return any(p.method.needs_context for p in self.parts)

    @property
    def uses_ground_truth(self) -> bool:
        """Whether a part reads ground truth of transfer, val or test (then it is marked, never ranked)."""
        return any(p.method.uses_ground_truth for p in self.parts)

    @property
    def trains(self) -> bool:
        """Whether a part trains under the run's training config (its key holds that config then)."""
        return any(p.method.trains for p in self.parts)

    def key_inputs(self, env: Any) -> dict[str, Any]:
        """What the parts' ``key_fn`` add to the student's key, by part name (env: protocol.KeyEnv)."""
        return {p.method.name: p.method.key_fn(p.cfg, env) for p in self.parts if p.method.key_fn is not None}

    @property
    def single(self) -> bool:
        return len(self.parts) == 1

    def settings(self) -> Any:
        """What the stage key records of the settings: the single method's, or {name: settings} per part."""
        if self.single:
            return self.parts[0].method.settings(self.parts[0].cfg)
        return {p.method.name: p.method.settings(p.cfg) for p in self.parts}


def split_name(name: str) -> list[str]:
    parts = [p.strip() for p in str(name).split("+")]
    if not all(parts):
        raise W2SError(f"method {name!r}: empty part; compose methods as a+b, e.g. logconf+early_stop")
    return parts


def parse(name: str, method_args: dict[str, dict[str, Any]] | None = None, mode: str | None = None) -> Composite:
    """Resolve ``name`` (``a`` or ``a+b+...``) to a checked Composite; errors name the fix."""
    from . import METHODS

    method_args = {} if method_args is None else method_args  # (no truth test: a tracked dict records it)
    parts = []
    for raw in split_name(name):
        m = METHODS.get(raw)
        if mode is not None and mode not in m.modes:
            raise W2SError(f"method {m.name!r} does not support mode {mode!r} (it supports: {', '.join(m.modes)})")
        parts.append(Part(m, m.config(method_args.get(m.name))))
    names = [p.method.name for p in parts]
    if len(set(names)) != len(names):
        raise W2SError(f"method {name!r}: a method appears twice")
    if len(parts) > 1:
        for p in parts:
            if p.method.kind == "alone":
                raise W2SError(f"method {name!r}: {p.method.name!r} does not compose; run it by itself "
                               f"(--methods {p.method.name},...)")
        for kind in KINDS:
            if kind == "select":
                continue
            same = [p.method.name for p in parts if p.method.kind == kind]
            if len(same) > 1:
                raise W2SError(f"method {name!r}: {' and '.join(same)} are both {kind} methods; "
                               f"a composition takes at most one {kind} method")
    order = {k: i for i, k in enumerate(KINDS)}
    parts.sort(key=lambda p: order[p.method.kind])  # stable: filters keep the order written
    return Composite("+".join(names), parts)


def describe_composition() -> str:
    """One paragraph for `w2s list methods`."""
    return ("Compose with '+': at most one of each kind (labels → select → loss → train; filters may chain), "
            "e.g. logconf+early_stop, ensemble+knn_filter+logconf. 'alone' methods run by themselves.")
