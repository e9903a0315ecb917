"""Model names: short names (packaged offline models), hub ids and local directories."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import W2SError
from ..registry import Registry


@dataclass
class ModelSpec:
    """A registered model name and its defaults."""

    name: str
    source: str
    """Hub id, or where the packaged weights come from."""
    kind: str = "encoder"
    """encoder or decoder (sets the default pooling)."""
    pooling: str = "mean"
    """Default pooling: mean/cls for encoders, last for decoders."""
    layer: int = -1
    """Default probed hidden layer (negative counts from the top; for decoders a middle-to-late layer often probes best)."""
    params: str = ""
    description: str = ""
    license: str = ""
    resolve: Callable[[], Path] | None = None
    """Returns a local directory (packaged models); None means ``source`` is a hub id."""
    revision: str | None = None
    family: str = ""
    """Architecture family (model_type): gpt2, qwen2, llama, mistral, gpt_neox, gemma, bert, mpnet, ..."""
    lr: float = 5e-5
    """Full-finetuning learning rate at batch size 32 (scaled linearly for other batch sizes)."""
    lora_lr: float = 5e-4
    """LoRA learning rate at batch size 32."""
    dtype: str = "fp32"
    """Weight dtype for finetuning: fp32 (small models, with bf16 autocast) or bf16 (large models)."""
    grad_checkpointing: bool = False
    """Default for gradient checkpointing (on for large models)."""
    memory_gb: float = 0.0
    """Rough GPU memory for full finetuning at batch 32 with AdamW (weights+grads+optimizer), in GiB."""
    probe_choice: str = ""
    """How ``layer`` and ``pooling`` were chosen (the packaged decoders: bench/probe_layers.py, once)."""
    notice: str = ""
    """A notice ``w2s list models`` prints under its table (e.g. the terms that apply to the weights)."""


MODELS: Registry[ModelSpec] = Registry(
    "model", hint=" A hub id (org/name) or a local model directory also works."
)


def register_model(spec: ModelSpec, *, overwrite: bool = False) -> ModelSpec:
    """Register a short model name."""
    return MODELS.register(spec.name, spec, overwrite=overwrite)


@dataclass
class ResolvedModel:
    """What a model argument points at, after short names are resolved."""

    name: str
    """What the user wrote (used in tables)."""
    path: str
    """A local directory or a hub id."""
    kind: str
    pooling: str
    layer: int
    revision: str | None = None
    spec: ModelSpec | None = None


def resolve_model(name: str) -> ResolvedModel:
    """A short name, local directory or hub id -> :class:`ResolvedModel` (nothing is loaded)."""
    if name in MODELS:
        spec = MODELS.get(name)
        path = str(spec.resolve()) if spec.resolve else spec.source
        return ResolvedModel(name, path, spec.kind, spec.pooling, spec.layer, spec.revision, spec)
    p = Path(name).expanduser()
    if p.exists():
        if not p.is_dir():
            raise W2SError(f"model {name}: not a directory (expected a folder with config.json and weights)")
        kind = detect_kind(p)
        return ResolvedModel(name, str(p), kind, "last" if kind == "decoder" else "mean", -1)
    if "/" in name and not name.startswith((".", "/", "~")):
        return ResolvedModel(name, name, "auto", "auto", -1)
    raise MODELS_unknown(name)


def MODELS_unknown(name: str) -> W2SError:  # noqa: N802 - reads as a constructor
    from ..errors import unknown

    return unknown("model", name, MODELS.names(), MODELS.hint)


DECODER_TYPES = {"gpt2", "gpt_neox", "llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3_text",
                 "phi", "phi3", "opt", "gptj", "bloom", "falcon", "olmo", "olmo2", "smollm3", "mixtral"}


def detect_kind(path: Path) -> str:
    """encoder or decoder, from config.json (architectures or model_type)."""
    import json

    cfg_path = path / "config.json"
    if not cfg_path.is_file():
        return "encoder"
    try:
        cfg = json.loads(cfg_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise W2SError(f"{cfg_path}: not valid JSON; the model directory is damaged") from None
    if not isinstance(cfg, dict):
        raise W2SError(f"{cfg_path}: expected a JSON object of model settings; the model directory is damaged")
    archs = cfg.get("architectures") or []
    archs = [a for a in archs if isinstance(a, str)] if isinstance(archs, list) else []
    if any(a.endswith("ForCausalLM") or a.endswith("LMHeadModel") for a in archs):
        return "decoder"
    return "decoder" if cfg.get("model_type") in DECODER_TYPES else "encoder"
