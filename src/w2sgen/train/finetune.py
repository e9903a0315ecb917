"""Finetuning a backbone + classification head: full or LoRA, one readable loop.

AdamW, linear warmup then cosine decay, gradient accumulation to an effective batch,
length-grouped micro-batches with dynamic padding, bf16 autocast where the hardware has it,
optional gradient checkpointing, dropout off by default, evaluation batched and only at the end.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from ..config import FinetuneConfig
from ..errors import W2SError
from ..models.registry import ResolvedModel

# loss(logits (B, K), target (B, K), step, total_steps, window=(probs (M, K), target (M, K)) | None)
LossFn = Callable[..., torch.Tensor]


@dataclass
class FinetuneResult:
    probs: dict[str, np.ndarray]
    """Predicted class probabilities (N, K) for each evaluation set."""
    trainable: dict[str, torch.Tensor]
    """What is worth caching: the head, and the adapters under LoRA (never the base weights)."""
    losses: list[float] = field(default_factory=list)
    """Loss of every optimizer step."""
    info: dict[str, Any] = field(default_factory=dict)


def length_grouped_batches(lengths: np.ndarray, micro: int, gen: torch.Generator, chunk: int = 50) -> list[np.ndarray]:
    """Shuffle, sort by length within chunks of ``chunk`` micro-batches, cut, shuffle the batches.

    Neighbouring examples have similar lengths, so dynamic padding wastes little; the order of
    the batches stays random.
    """
    perm = torch.randperm(len(lengths), generator=gen).numpy()
    size = micro * chunk
    batches = []
    for start in range(0, len(perm), size):
        part = perm[start : start + size]
        part = part[np.argsort(-lengths[part], kind="stable")]
        batches.extend(part[i : i + micro] for i in range(0, len(part), micro))
    order = torch.randperm(len(batches), generator=gen).numpy()
    return [batches[i] for i in order]


def build_model(model: ResolvedModel, num_classes: int, pooling: str, layer: int, cfg: FinetuneConfig,
                trust_remote_code: bool, device: str):
    """(classifier, tokenizer, family) with dropout off, LoRA/checkpointing as configured."""
    import warnings

    import transformers
    from transformers import AutoModel, AutoTokenizer

    from ..models.backbone import local_dir

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    # peft still calls transformers' deprecated is_gradient_checkpointing: not the user's concern
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
    from ..models.classifier import Classifier, enable_checkpointing, lora_wrap, no_dropout_config

    path = local_dir(model)
    spec = model.spec
    wdtype = cfg.weights_dtype or (spec.dtype if spec else "fp32")
    hf_cfg = no_dropout_config(path, trust_remote_code) if not cfg.dropout else None
    kw = {"config": hf_cfg} if hf_cfg is not None else {}
    backbone = AutoModel.from_pretrained(path, trust_remote_code=trust_remote_code,
                                         dtype=torch.bfloat16 if wdtype == "bf16" else torch.float32, **kw)
    tok = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token or tok.unk_token
    tok.padding_side = "right"
    family = backbone.config.model_type
    ckpt = cfg.grad_checkpointing if cfg.grad_checkpointing is not None else bool(spec and spec.grad_checkpointing)
    if ckpt:
        enable_checkpointing(backbone)
        backbone.config.use_cache = False
    if cfg.lora:
        backbone = lora_wrap(backbone, family, cfg.lora_rank, cfg.lora_alpha, cfg.lora_targets)
        if ckpt:
            backbone.enable_input_require_grads()
    clf = Classifier(backbone, num_classes, pooling, layer).to(device)
    return clf, tok, family


def default_lr(model: ResolvedModel, cfg: FinetuneConfig) -> float:
    spec = model.spec
    base = (spec.lora_lr if cfg.lora else spec.lr) if spec else (5e-4 if cfg.lora else 5e-5)
    return base * cfg.batch_size / 32


def finetune(
    model: ResolvedModel, train_texts: list[str], target: np.ndarray, loss_fn: LossFn, cfg: FinetuneConfig,
    *, seed: int, num_classes: int, pooling: str, layer: int, eval_sets: dict[str, list[str]],
    device: str = "cpu", compute_dtype: str = "fp32", trust_remote_code: bool = False, desc: str = "finetune",
) -> FinetuneResult:
    """Train on ``train_texts`` with soft targets (N, K), then predict every evaluation set."""
    t_load = time.time()
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    clf, tok, family = build_model(model, num_classes, pooling, layer, cfg, trust_remote_code, device)
    load_s = time.time() - t_load
    t0 = time.time()  # training time excludes model loading
    lr = cfg.lr if cfg.lr is not None else default_lr(model, cfg)
    head_lr = cfg.head_lr if cfg.head_lr is not None else max(10 * lr, 1e-3)
    losses, tokens = train_steps(clf, tok, train_texts, target, loss_fn, cfg, lr=lr, head_lr=head_lr, gen=gen,
                                 device=device, compute_dtype=compute_dtype, desc=desc)
    step = len(losses)
    train_s = time.time() - t0
    clf.eval()
    probs = {name: predict_texts(clf, tok, texts, cfg, device, compute_dtype) for name, texts in eval_sets.items()}
    trainable = {k: v.detach().cpu().contiguous() for k, v in clf.named_parameters()
                 if v.requires_grad and (cfg.lora or k.startswith("head."))}
    info = {"steps": step, "lr": lr, "head_lr": head_lr, "load_s": round(load_s, 3), "train_wall_s": round(train_s, 3), "tokens": tokens,
            "tokens_per_s": round(tokens / max(train_s, 1e-9), 1), "s_per_step": round(train_s / max(step, 1), 4),
            "family": family, "lora": cfg.lora, "effective_batch": math.prod(micro_accum(cfg))}
    return FinetuneResult(probs, trainable, losses, info)


def micro_accum(cfg: FinetuneConfig) -> tuple[int, int]:
    """(examples per forward/backward, micro-batches accumulated per optimizer step)."""
    micro = max(1, min(cfg.micro_batch_size or cfg.batch_size, cfg.batch_size))
    return micro, max(1, cfg.batch_size // micro)


def total_steps(n_examples: int, cfg: FinetuneConfig) -> int:
    """Optimizer steps of a run: epochs over the effective batch, capped by ``max_steps``."""
    micro, accum = micro_accum(cfg)
    total = max(1, int(math.ceil(max(1, math.ceil(n_examples / (micro * accum))) * cfg.epochs)))
    return min(total, cfg.max_steps) if cfg.max_steps is not None else total


def make_optimizer(clf, cfg: FinetuneConfig, lr: float, head_lr: float, total: int):
    """(trainable params, AdamW with body and head groups, warmup-then-cosine schedule over ``total`` steps)."""
    params = [p for p in clf.parameters() if p.requires_grad]
    head = list(clf.head.parameters())
    body = [p for n, p in clf.named_parameters() if p.requires_grad and not n.startswith("head.")]
    # fused: one kernel over all tensors per step (MiniLM-L6 on a 2-core CPU: 8 ms instead of 78 ms)
    fused = all(p.device.type in ("cpu", "cuda") for p in params) or None
    opt = torch.optim.AdamW([{"params": body, "lr": lr}, {"params": head, "lr": head_lr}],
                            weight_decay=cfg.weight_decay, fused=fused)
    warm = int(cfg.warmup_frac * total)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / max(1, warm) if s < warm else 0.5 * (1 + math.cos(math.pi * (s - warm) / max(1, total - warm))))
    return params, opt, sched


def train_steps(clf, tok, train_texts: list[str], target: np.ndarray, loss_fn: LossFn, cfg: FinetuneConfig, *,
                lr: float, head_lr: float, gen: torch.Generator, device: str = "cpu", compute_dtype: str = "fp32",
                desc: str = "finetune") -> tuple[list[float], int]:
    """The training loop of :func:`finetune` on a built classifier: (loss of every step, non-pad tokens seen)."""
    from ..log import progress

    clf.train()
    micro, accum = micro_accum(cfg)
    enc = tok(train_texts, truncation=True, max_length=cfg.max_length, padding=False)["input_ids"]
    lengths = np.array([len(x) for x in enc])
    total = total_steps(len(train_texts), cfg)
    params, opt, sched = make_optimizer(clf, cfg, lr, head_lr, total)
    y = torch.from_numpy(np.array(target, dtype=np.float32))  # (N, K), a private copy
    autocast = dict(device_type=torch.device(device).type, dtype=torch.bfloat16, enabled=compute_dtype == "bf16")
    # CPU + bf16: the flash-attention backward is slow for short rows; the math kernel is faster there
    # (MiniLM-L6, SST-2, batch 32 on a 2-core CPU: 0.23 instead of 0.27 s per step)
    math_attn = autocast["enabled"] and autocast["device_type"] == "cpu"
    window_probs: list[torch.Tensor] = []
    window_targets: list[torch.Tensor] = []
    losses: list[float] = []
    tokens = 0
    step = 0
    batches: list[np.ndarray] = []
    with progress(total=total, desc=desc, unit="step") as bar:
        while step < total:
            if not batches:
                batches = length_grouped_batches(lengths, micro, gen)
            opt.zero_grad(set_to_none=True)
            group = [batches.pop() for _ in range(min(accum, len(batches)))]
            n_group = sum(len(b) for b in group)
            step_loss = 0.0
            for rows in group:
                batch = tok.pad({"input_ids": [enc[i] for i in rows]}, return_tensors="pt").to(device)
                tokens += int(batch["attention_mask"].sum())
                t = y[rows].to(device)
                short = math_attn and batch["input_ids"].shape[1] <= 128
                with torch.autocast(**autocast), sdpa_kernel(SDPBackend.MATH) if short else nullcontext():
                    logits = clf(batch["input_ids"], batch["attention_mask"])  # (B, K) fp32
                window = (torch.cat(window_probs), torch.cat(window_targets)) if window_probs else None
                loss = loss_fn(logits, t, step, total, window=window)
                if not torch.isfinite(loss):
                    raise W2SError(f"{desc}: loss is {loss.item()} at step {step}; lower finetune.lr or check labels")
                (loss * (len(rows) / n_group)).backward()
                step_loss += loss.item() * len(rows) / n_group
                # keep the last effective batch of predictions (bounded) for batch-level thresholds
                window_probs.append(torch.softmax(logits.detach().float(), -1))
                window_targets.append(t)
                while sum(len(w) for w in window_probs) > cfg.batch_size - micro and len(window_probs) > 1:
                    window_probs.pop(0)
                    window_targets.pop(0)
            if cfg.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
            opt.step()
            sched.step()
            losses.append(step_loss)
            step += 1
            bar.update(1)
    return losses, tokens


@torch.inference_mode()
def predict_texts(clf, tok, texts: list[str], cfg: FinetuneConfig, device: str, compute_dtype: str) -> np.ndarray:
    """Class probabilities (N, K), batched by length."""
    if not texts:
        return np.zeros((0, clf.head.out_features), dtype=np.float32)
    enc = tok(texts, truncation=True, max_length=cfg.max_length, padding=False)["input_ids"]
    order = np.argsort([-len(x) for x in enc], kind="stable")
    out = np.empty((len(texts), clf.head.out_features), dtype=np.float32)
    with torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=compute_dtype == "bf16"):
        for s in range(0, len(texts), cfg.eval_batch_size):
            rows = order[s : s + cfg.eval_batch_size]
            batch = tok.pad({"input_ids": [enc[i] for i in rows]}, return_tensors="pt").to(device)
            out[rows] = torch.softmax(clf(batch["input_ids"], batch["attention_mask"]).float(), -1).cpu().numpy()
    return out
