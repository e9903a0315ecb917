"""Method registry: one file per method, registered by name.

Every module of this package that defines ``METHOD`` (a ``Method``) is registered at import, so
adding a method is adding one file. ``base``, ``compose`` and ``context`` are the machinery.
"""

from __future__ import annotations

import importlib
import pkgutil

from ..registry import Registry
from .base import Method

METHODS: Registry[Method] = Registry("method", hint=" Methods compose with '+', e.g. logconf+early_stop.")


def register_method(method: Method, *, overwrite: bool = False) -> Method:
    """Register a student-training method under ``method.name``."""
    return METHODS.register(method.name, method, overwrite=overwrite)


def _discover() -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name.startswith("_") or info.name in ("base", "compose", "context"):
            continue
        mod = importlib.import_module(f"{__name__}.{info.name}")
        method = getattr(mod, "METHOD", None)
        if isinstance(method, Method):
            register_method(method)


_discover()

__all__ = ["METHODS", "Method", "register_method"]
