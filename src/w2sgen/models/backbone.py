"""Loading a transformers backbone (frozen) and fingerprinting its weights for cache keys."""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import W2SError
from .registry import ResolvedModel, detect_kind

WEIGHT_GLOBS = ("*.safetensors", "pytorch_model*.bin", "*.gguf")
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer.model", "spiece.model", "vocab.json", "sentencepiece.bpe.model")


def check_model_dir(path: Path) -> None:
    """Raise a W2SError that names what a local model directory lacks."""
    missing = []
    if not (path / "config.json").is_file():
        missing.append("config.json")
    if not any(any(path.glob(g)) for g in WEIGHT_GLOBS):
        missing.append("weights (model.safetensors)")
    if not any((path / f).is_file() for f in TOKENIZER_FILES):
        missing.append("tokenizer (tokenizer.json or vocab files)")
    if missing:
        raise W2SError(f"model directory {path}: missing {', '.join(missing)}; "
                       "save the model with save_pretrained() and its tokenizer into this folder")


def local_dir(model: ResolvedModel) -> Path:
    """The local directory of the model; hub ids are fetched (or found in the HF cache) here."""
    p = Path(model.path).expanduser()
    if p.is_dir():
        check_model_dir(p)
        return p
    from huggingface_hub import snapshot_download

    try:
        d = Path(snapshot_download(model.path, revision=model.revision,
                                   allow_patterns=["*.json", "*.safetensors", "*.txt", "*.model", "*.py"]))
    except Exception as e:
        raise W2SError(f"model {model.name!r}: could not get {model.path!r} from the Hugging Face hub "
                       f"({type(e).__name__}). Offline? Use a packaged short name (w2s list models) "
                       "or a local directory.") from None
    check_model_dir(d)
    return d


def fingerprint(path: Path) -> str:
    """sha256 over config.json and each weight file's name, size and safetensors header.

    The header lists every tensor's name, dtype, shape and byte offsets; with the size it
    changes whenever the architecture or file changes (full hashing of GBs is left out).
    """
    h = hashlib.sha256()
    h.update((path / "config.json").read_bytes())
    for g in WEIGHT_GLOBS:
        for f in sorted(path.glob(g)):
            st = f.stat()
            h.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns}".encode())
            if f.suffix == ".safetensors":
                try:
                    with f.open("rb") as fh:
                        raw = fh.read(8)
                        if len(raw) < 8:
                            raise W2SError(f"{f}: not a safetensors file (only {len(raw)} bytes); "
                                           "re-download or re-save the model")
                        n = struct.unpack("<Q", raw)[0]
                        h.update(fh.read(min(n, 64 << 20)))
                except OSError as e:
                    raise W2SError(f"{f}: cannot read ({e.strerror}); check the model directory") from None
    return h.hexdigest()[:16]


@dataclass
class Backbone:
    """A frozen model and its tokenizer."""

    name: str
    path: Path
    kind: str
    model: Any
    tokenizer: Any
    num_layers: int
    hidden_size: int


def load_backbone(model: ResolvedModel, *, trust_remote_code: bool = False, device: str = "cpu") -> Backbone:
    """Tokenizer + base model (no task head) in eval mode, fp32 weights on ``device``."""
    import transformers
    from transformers import AutoModel, AutoTokenizer

    path = local_dir(model)
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    try:
        tok = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
        net = AutoModel.from_pretrained(path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as e:
        raise W2SError(f"model {model.name!r} at {path}: cannot load ({str(e).splitlines()[0]})") from None
    kind = model.kind if model.kind != "auto" else detect_kind(path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token or tok.unk_token
    tok.padding_side = "right"
    from .fused import fuse_activations

    fuse_activations(net)
    net.eval().requires_grad_(False).to(device)
    cfg = net.config
    layers = getattr(cfg, "num_hidden_layers", None) or getattr(cfg, "n_layer", None) or 0
    hidden = getattr(cfg, "hidden_size", None) or getattr(cfg, "n_embd", None) or 0
    return Backbone(model.name, path, kind, net, tok, int(layers), int(hidden))


def model_width(path: Path) -> int | None:
    """The hidden size C in a model directory's config.json (None when it names none)."""
    try:
        cfg = json.loads((Path(path) / "config.json").read_text())
    except (OSError, ValueError):
        return None
    for c in (cfg, cfg.get("text_config") or {}):
        for k in ("hidden_size", "n_embd", "d_model", "dim"):
            if isinstance(c.get(k), int) and c[k] > 0:
                return int(c[k])
    return None


def describe(path: Path) -> dict[str, Any]:
    cfg = json.loads((path / "config.json").read_text())
    return {k: cfg.get(k) for k in ("model_type", "hidden_size", "num_hidden_layers", "architectures")}
