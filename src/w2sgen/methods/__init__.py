"""Method registry: one file per method, registered by name."""

from __future__ import annotations

from ..registry import Registry
from . import adaptconf, confidence_filter, entropy, kl, logconf, product, reverse_ce, window, xent
from .base import Method

METHODS: Registry[Method] = Registry("method")


def register_method(method: Method, *, overwrite: bool = False) -> Method:
    """Register a student-training method under ``method.name``."""
    return METHODS.register(method.name, method, overwrite=overwrite)


for _m in (xent.METHOD, logconf.METHOD, product.METHOD, kl.METHOD, entropy.METHOD, window.METHOD,
           adaptconf.METHOD, reverse_ce.METHOD, confidence_filter.METHOD):
    register_method(_m)

__all__ = ["METHODS", "Method", "register_method"]
