"""Models: short names, packaged offline weights, loading and pooling."""

from . import families, packaged  # noqa: F401  (register the hub families and the packaged models)
from .registry import MODELS, ModelSpec, ResolvedModel, register_model, resolve_model

__all__ = ["MODELS", "ModelSpec", "ResolvedModel", "register_model", "resolve_model"]
