"""Models: short names, packaged offline weights, loading and pooling."""

from . import packaged  # noqa: F401  (registers minilm-l6, mpnet-base)
from .registry import MODELS, ModelSpec, ResolvedModel, register_model, resolve_model

__all__ = ["MODELS", "ModelSpec", "ResolvedModel", "register_model", "resolve_model"]
