"""A small named registry with "did you mean" errors (tasks, models, methods share it)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, TypeVar

from .errors import W2SError, unknown

T = TypeVar("T")


def normalize_name(name: str) -> str:
    """Registry names are snake_case; hyphens and case are accepted as aliases."""
    return name.strip().lower().replace("-", "_")


class Registry(Generic[T]):
    def __init__(self, kind: str, hint: str = ""):
        self.kind = kind
        self.hint = hint
        self._items: dict[str, T] = {}
        self._display: dict[str, str] = {}

    def register(self, name: str, item: T, *, overwrite: bool = False) -> T:
        key = normalize_name(name)
        if key in self._items and not overwrite:
            raise W2SError(f"{self.kind} {name!r} is already registered (pass overwrite=True)")
        self._items[key] = item
        self._display[key] = name
        return item

    def unregister(self, name: str) -> None:
        """Remove ``name`` (e.g. a method a test or a plug-in registered for a while); absent is fine."""
        key = normalize_name(name)
        self._items.pop(key, None)
        self._display.pop(key, None)

    def get(self, name: str) -> T:
        key = normalize_name(name)
        if key not in self._items:
            raise unknown(self.kind, name, self.names(), self.hint)
        return self._items[key]

    def __contains__(self, name: str) -> bool:
        return normalize_name(name) in self._items

    def names(self) -> list[str]:
        """Names as registered (for display)."""
        return sorted(self._display.values())

    def items(self) -> Iterator[tuple[str, T]]:
        return iter(sorted((self._display[k], v) for k, v in self._items.items()))
