"""What each stage reads of the run config, recorded: the proof that stage keys are complete.

A stage's cache key (``protocol.StageKey``) is built from declared inputs, and each declared input
*covers* the config fields whose values (or resolved values) it puts in the key:

    config path "probe"        covers probe.lr, probe.epochs, ...   (the section's values are in the key)
    a model side (its key)     covers embed.max_length, embed.pooling, ... (the resolved meta is in it)
    a method part's settings   covers method_args.<name>

While a stage runs, every read of the run config goes through a *tracked* config (``tracked``)
that records the dotted path read (``probe.lr``, ``method_args.logconf``) into every open
scope. Before a stage entry is committed to the cache, each open scope's reads must be covered
by its key (or be execution-only, :data:`NEUTRAL`); otherwise the build fails with
:class:`StageKeyError`, so an entry whose key misses something it read is never written.

Reads outside any scope (loading the task, drawing splits) are not recorded: their effect enters
the keys as data (the task fingerprint, the split ids).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

NEUTRAL = frozenset({
    "out", "seeds", "methods",
    # where and how often a crashed stage resumes; never what it computes
    "finetune.checkpoint_every",
    # execution-only: how many texts go through the backbone at once, and on which device; the
    # features are the same up to float rounding (the activation cache mixes batches anyway)
    "embed.batch_size", "embed.device",
    # a permission to run a repository's code, not an input of what it computes
    "trust_remote_code",
})
"""Run-config fields that change no stage's result: no key needs them."""

def side_covers(mode: str, key: str | None = None) -> frozenset[str]:
    """What a model side's key covers: the fields that reach a side only through its meta (model
    fingerprint, resolved layer, pooling, max_length and compute dtype of its mode), which its key
    hashes; and, with ``key``, the side itself (``@side:<key>``: a stage that uses a side whose key it
    does not hold reads something its key misses)."""
    fields = {"mode", "embed.pooling", "embed.weak_layer", "embed.strong_layer"}
    fields |= {"embed.max_length", "embed.dtype"} if mode == "probe" else {"finetune.max_length", "finetune.dtype"}
    return frozenset(fields | ({side_ident(key)} if key else set()))


def side_ident(key: str) -> str:
    """The pseudo-path a model side's use records (covered only by a key that holds the side)."""
    return f"@side:{key}"


class StageKeyError(RuntimeError):
    """A stage read a config field that its cache key does not hold (a programming error)."""


def covered(path: str, covers: Iterable[str]) -> bool:
    """Whether a read of ``path`` is covered: it is neutral, or it equals or lies under a cover."""
    if path.startswith("@"):
        return path in covers
    if path in NEUTRAL or any(path.startswith(n + ".") for n in NEUTRAL):
        return True
    return any(path == c or path.startswith(c + ".") or c == "" for c in covers)


def touches(read: str, field_path: str) -> bool:
    """Whether a read of ``read`` depends on ``field_path``: one lies under (or is) the other."""
    if read.startswith("@"):
        return False
    return (read == field_path or field_path.startswith(read + ".") or read.startswith(field_path + ".")
            or read == "")


# --------------------------------------------------------------------------- scopes


@dataclass
class Scope:
    """One stage (or a model side) being computed: what it read and what its key covers."""

    name: str
    covers: set[str] = field(default_factory=set)
    reads: set[str] = field(default_factory=set)
    check: bool = True
    """False: only collect (a model side's reads, replayed into the stages that use it)."""
    refused: list[str] = field(default_factory=list)
    """Reads the label firewall refused inside this scope (each one fails the stage, even if the
    method caught the error)."""

    def uncovered(self) -> list[str]:
        return sorted(p for p in self.reads if not covered(p, self.covers))


_local = threading.local()
_listeners: list[Any] = []


def _stack() -> list[Scope]:
    s = getattr(_local, "stack", None)
    if s is None:
        s = _local.stack = []
    return s


def record(path: str) -> None:
    """Record a read of ``path`` in every open scope (and in the listeners: tests)."""
    for s in _stack():
        s.reads.add(path)


def replay(paths: Iterable[str]) -> None:
    """Record reads made earlier on behalf of the open scopes (e.g. a model side's meta)."""
    stack = _stack()
    if stack:
        paths = list(paths)
        for s in stack:
            s.reads.update(paths)


@contextmanager
def scope(name: str, covers: Iterable[str] = (), check: bool = True) -> Iterator[Scope]:
    """Open a scope; on a normal exit its reads are checked against its covers (when ``check``)."""
    sc = Scope(name, set(covers), set(), check)
    stack = _stack()
    stack.append(sc)
    try:
        yield sc
    finally:
        stack.remove(sc)
        for lis in list(_listeners):
            lis(sc)
    if check:
        verify(sc)


def verify(sc: Scope) -> None:
    if sc.refused:
        from .errors import W2SError

        raise W2SError(sc.refused[0])
    bad = sc.uncovered()
    if bad:
        raise StageKeyError(
            f"stage {sc.name!r} read config field(s) {', '.join(bad)} that its cache key does not hold; "
            "a rerun with another value would return a stale result. Put them in the stage's key (a "
            "method declares them in its key_fn: env.config(path) or env.model_key(...)).")


def refuse(message: str) -> None:
    """Record a refused read (the label firewall) in every open scope: none of them may commit."""
    for s in _stack():
        s.refused.append(message)


def verify_open() -> None:
    """Check every open checking scope (called before a cache entry is committed)."""
    for sc in _stack():
        if sc.check:
            verify(sc)


@contextmanager
def listening(fn) -> Iterator[None]:
    """Call ``fn(scope)`` whenever a scope closes (tests record every stage's reads this way)."""
    _listeners.append(fn)
    try:
        yield
    finally:
        _listeners.remove(fn)


# --------------------------------------------------------------------------- tracked configs

_TRACKED: dict[type, type] = {}


def _tracked_class(cls: type) -> type:
    """A subclass of the dataclass ``cls`` whose field reads are recorded."""
    if cls in _TRACKED:
        return _TRACKED[cls]
    names = frozenset(f.name for f in dataclasses.fields(cls))

    def __getattribute__(self, name):  # noqa: N807
        value = object.__getattribute__(self, name)
        if name not in names:
            return value
        path = object.__getattribute__(self, "_w2s_path")
        p = f"{path}.{name}" if path else name
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return tracked(value, p)
        if isinstance(value, dict):
            return TrackedDict(value, p)
        record(p)
        return value

    def __eq__(self, other):  # noqa: N807
        record(object.__getattribute__(self, "_w2s_path"))
        return dataclasses.astuple(untracked(self)) == dataclasses.astuple(untracked(other)) \
            if dataclasses.is_dataclass(other) and type(untracked(other)) is cls else NotImplemented

    sub = type(f"Tracked{cls.__name__}", (cls,), {"__getattribute__": __getattribute__, "__eq__": __eq__,
                                                   "__hash__": None, "_w2s_base": cls})
    _TRACKED[cls] = sub
    return sub


def tracked(obj: Any, path: str = "") -> Any:
    """``obj`` (a config dataclass) with its field reads recorded under ``path`` (idempotent)."""
    if isinstance(obj, TrackedDict) or getattr(type(obj), "_w2s_base", None) is not None:
        return obj
    if not dataclasses.is_dataclass(obj):
        return obj
    new = object.__new__(_tracked_class(type(obj)))
    new.__dict__.update(obj.__dict__)
    object.__setattr__(new, "_w2s_path", path)
    return new


def untracked(obj: Any) -> Any:
    """The plain dataclass (or dict) behind a tracked one; reads nothing."""
    if isinstance(obj, TrackedDict):
        return dict(obj.items_untracked())
    base = getattr(type(obj), "_w2s_base", None)
    if base is None:
        return obj
    plain = object.__new__(base)
    d = dict(object.__getattribute__(obj, "__dict__"))
    d.pop("_w2s_path", None)
    plain.__dict__.update({k: untracked(v) for k, v in d.items()})
    return plain


def with_changes(obj: Any, **changes: Any) -> Any:
    """``dataclasses.replace`` without reading the fields it copies (a tracked config stays tracked;
    reads of the copy are recorded under the same paths)."""
    base = getattr(type(obj), "_w2s_base", None)
    if base is None:
        return dataclasses.replace(obj, **changes)
    plain = untracked(obj)
    return tracked(dataclasses.replace(plain, **{k: untracked(v) for k, v in changes.items()}),
                   object.__getattribute__(obj, "_w2s_path"))


def path_of(obj: Any) -> str | None:
    """The config path of a tracked object (None for a plain one)."""
    if isinstance(obj, TrackedDict):
        return obj._w2s_path
    if getattr(type(obj), "_w2s_base", None) is None:
        return None
    return object.__getattribute__(obj, "_w2s_path")


def read_all(obj: Any) -> Any:
    """The plain value of a tracked object, recording that all of it was read (e.g. for a key)."""
    p = path_of(obj)
    if p is not None:
        record(p)
    return untracked(obj)


class TrackedDict(dict):
    """A dict config field (``method_args``) whose entry reads are recorded as ``path.<key>``."""

    def __init__(self, data: Any = (), path: str | None = None):
        super().__init__(data)
        self._w2s_path = path  # None: a plain copy (dataclasses.asdict builds one), nothing recorded

    def _rec(self, key: Any) -> None:
        if self._w2s_path is not None:
            record(f"{self._w2s_path}.{key}" if self._w2s_path else str(key))

    def __getitem__(self, key):
        self._rec(key)
        return super().__getitem__(key)

    def get(self, key, default=None):
        self._rec(key)
        return super().get(key, default)

    def __contains__(self, key):
        self._rec(key)
        return super().__contains__(key)

    def _all(self) -> None:
        if self._w2s_path is not None:
            record(self._w2s_path)

    def keys(self):
        self._all()
        return super().keys()

    def items(self):
        self._all()
        return super().items()

    def values(self):
        self._all()
        return super().values()

    def __iter__(self):
        self._all()
        return super().__iter__()

    def __len__(self):
        self._all()
        return super().__len__()

    def items_untracked(self):
        return list(super().items())
