"""Registered hub models of the paper's and EleutherAI's families, with finetuning defaults.

Learning rates are for batch size 32 (the paper's); memory is a rough estimate for full
finetuning with AdamW in mixed precision (≈ 16 bytes per parameter, activations aside).
"""

from __future__ import annotations

from .registry import ModelSpec, register_model

DECODER_LORA = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

LORA_TARGETS: dict[str, list[str]] = {
    "gpt2": ["c_attn", "c_proj", "c_fc"],
    "gpt_neox": ["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"],
    "llama": DECODER_LORA,
    "mistral": DECODER_LORA,
    "qwen2": DECODER_LORA,
    "gemma": DECODER_LORA,
    "gemma2": DECODER_LORA,
    "gemma3_text": DECODER_LORA,
    "bert": ["query", "key", "value", "dense"],
    "mpnet": ["q", "k", "v", "o", "dense"],
}
"""LoRA target modules per family (model_type)."""


def _mem(params_b: float) -> float:
    return round(16 * params_b, 1)


def _decoder(name: str, hub: str, family: str, params_b: float, lr: float, layers: int, **kw) -> None:
    big = params_b >= 1.0
    register_model(ModelSpec(
        name=name, source=hub, kind="decoder", pooling="last", layer=-max(1, layers // 4),
        params=f"{params_b:g}B" if params_b >= 1 else f"{int(params_b * 1000)}M", family=family,
        lr=lr, lora_lr=kw.pop("lora_lr", 5e-4 if not big else 2e-4), dtype="bf16" if big else "fp32",
        grad_checkpointing=big, memory_gb=_mem(params_b), description=kw.pop("description", ""),
        license=kw.pop("license", ""),
    ))


# GPT-2 (the paper's main ladder; OpenAI's code uses lr 5e-5 at batch 32)
_decoder("gpt2", "openai-community/gpt2", "gpt2", 0.124, 5e-5, 12, license="MIT")
_decoder("gpt2-medium", "openai-community/gpt2-medium", "gpt2", 0.355, 5e-5, 24, license="MIT")
_decoder("gpt2-large", "openai-community/gpt2-large", "gpt2", 0.774, 1e-5, 36, license="MIT")
_decoder("gpt2-xl", "openai-community/gpt2-xl", "gpt2", 1.5, 1e-5, 48, license="MIT")
# Qwen2.5 (OpenAI's code added Qwen; EleutherAI's w2s used Qwen2.5 with LoRA)
for size, b, layers in (("0.5b", 0.49, 24), ("1.5b", 1.5, 28), ("3b", 3.1, 36), ("7b", 7.6, 28)):
    _decoder(f"qwen2.5-{size}", f"Qwen/Qwen2.5-{size.upper()}", "qwen2", b, 1e-5 if b >= 1 else 2e-5, layers,
             license="Apache-2.0 (3B: Qwen research)")
# Pythia
for size, b, layers in (("70m", 0.07, 6), ("160m", 0.16, 12), ("410m", 0.41, 24), ("1b", 1.0, 16),
                        ("1.4b", 1.4, 24), ("2.8b", 2.8, 32), ("6.9b", 6.9, 32)):
    _decoder(f"pythia-{size}", f"EleutherAI/pythia-{size}", "gpt_neox", b, 5e-5 if b < 1 else 1e-5, layers,
             license="Apache-2.0")
# Llama-3, Mistral, Gemma (gated on the hub: accept their licenses there first)
_decoder("llama-3.2-1b", "meta-llama/Llama-3.2-1B", "llama", 1.2, 1e-5, 16, license="Llama 3.2 Community")
_decoder("llama-3.2-3b", "meta-llama/Llama-3.2-3B", "llama", 3.2, 1e-5, 28, license="Llama 3.2 Community")
_decoder("llama-3-8b", "meta-llama/Meta-Llama-3-8B", "llama", 8.0, 1e-5, 32, license="Llama 3 Community")
_decoder("llama-3.1-8b", "meta-llama/Llama-3.1-8B", "llama", 8.0, 1e-5, 32, license="Llama 3.1 Community")
_decoder("mistral-7b", "mistralai/Mistral-7B-v0.1", "mistral", 7.2, 1e-5, 32, license="Apache-2.0")
_decoder("gemma-2b", "google/gemma-2b", "gemma", 2.5, 1e-5, 18, license="Gemma")
_decoder("gemma-7b", "google/gemma-7b", "gemma", 8.5, 1e-5, 28, license="Gemma")
