"""w2sgen: weak-to-strong generalization experiments (Burns et al. 2023), from a laptop to a cluster.

Heavy libraries (torch, transformers) load only when a run needs them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # pragma: no cover
    from .api import Results, load_results, run
    from .config import RunConfig
    from .methods import register_method
    from .models import register_model
    from .tasks import register_task

_LAZY = {
    "run": ("api", "run"),
    "load_results": ("api", "load_results"),
    "Results": ("api", "Results"),
    "RunConfig": ("config", "RunConfig"),
    "W2SError": ("errors", "W2SError"),
    "register_task": ("tasks", "register_task"),
    "TaskSpec": ("tasks", "TaskSpec"),
    "register_model": ("models", "register_model"),
    "ModelSpec": ("models", "ModelSpec"),
    "register_method": ("methods", "register_method"),
    "Method": ("methods", "Method"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        mod, attr = _LAZY[name]
        return getattr(importlib.import_module(f".{mod}", __name__), attr)
    raise AttributeError(f"module 'w2sgen' has no attribute {name!r}")


__all__ = [  # noqa: F822 - resolved lazily by __getattr__
    "run", "load_results", "Results", "RunConfig", "W2SError", "register_task", "TaskSpec",
    "register_model", "ModelSpec", "register_method", "Method",
]
