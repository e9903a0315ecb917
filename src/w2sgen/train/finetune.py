"""Finetuning a backbone + classification head: full or LoRA, one readable loop.

AdamW, linear warmup then cosine decay, gradient accumulation to an effective batch,
length-grouped micro-batches with dynamic padding, bf16 autocast where the hardware has it,
optional gradient checkpointing, dropout off by default, evaluation batched at the end (and every
``eval_every`` steps if asked). Checkpoints every ``checkpoint_every`` steps with exact resume
(:mod:`w2sgen.train.checkpoint`); several processes under ``accelerate launch`` / ``torchrun``
(:mod:`w2sgen.train.distributed`).
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from ..config import FinetuneConfig
from ..errors import W2SError
from ..models.registry import ResolvedModel
from .checkpoint import (
    fingerprint,
    latest_checkpoint,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from .distributed import (
    all_reduce_sum,
    barrier,
    broadcast_from_main,
    gather_shards,
    is_distributed,
    is_main_process,
    rank,
    shard,
    unshard,
    world_size,
)
from .optim import AdamW, clip_grad_norm, sparse_input_embedding

log = logging.getLogger("w2sgen")

# loss(logits (B, K), target (B, K), step, total_steps, window=(probs (M, K), target (M, K)) | None)
LossFn = Callable[..., torch.Tensor]
LOOP_VERSION = 2
"""Part of a checkpoint's fingerprint: a checkpoint of an older loop (2: the batch-level window holds
exactly the step's effective batch) is not resumed."""
WINDOW_ATTR = "needs_window"
"""A loss with this attribute set to True is batch-level (e.g. logconf's threshold): it receives, as
``window``, the predictions (with the current weights) and targets of the rest of its optimizer step's
effective batch, the other micro-batches and the other processes' rows. Other losses get ``None``."""


def needs_window(loss_fn: LossFn) -> bool:
    """Whether ``loss_fn`` declared (:data:`WINDOW_ATTR`) that it thresholds over the effective batch."""
    return bool(getattr(loss_fn, WINDOW_ATTR, False))


@dataclass
class FinetuneResult:
    probs: dict[str, np.ndarray]
    """Predicted class probabilities (N, K) for each evaluation set."""
    trainable: dict[str, torch.Tensor]
    """What is worth caching: the head, and the adapters under LoRA (never the base weights)."""
    losses: list[float] = field(default_factory=list)
    """Loss of every optimizer step."""
    info: dict[str, Any] = field(default_factory=dict)
    curve: list[dict[str, Any]] = field(default_factory=list)
    """With ``eval_every``: ``{"step": s, "probs": {split: (n, K)}}`` every ``eval_every`` optimizer
    steps and at the end (the last point's probs are ``probs``); empty otherwise."""
    model: Any = None
    """The trained classifier (in memory only; e.g. to save its finetuned backbone)."""
    tokenizer: Any = None


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


def in_order_batches(lengths: np.ndarray, micro: int, gen: torch.Generator) -> list[np.ndarray]:
    """Micro-batches of consecutive examples in data order (no shuffling, no grouping by length).

    Listed last-first, as :func:`train_steps` pops them from the end; ``gen`` is unused.
    """
    n = len(lengths)
    return [np.arange(i, min(i + micro, n)) for i in range(0, n, micro)][::-1]


def build_model(model: ResolvedModel, num_classes: int, pooling: str, layer: int, cfg: FinetuneConfig,
                trust_remote_code: bool, device: str):
    """(classifier, tokenizer, family) with dropout off, LoRA/checkpointing as configured."""
    import transformers
    from transformers import AutoModel, AutoTokenizer

    from ..models.backbone import local_dir

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    from ..models.classifier import Classifier, enable_checkpointing, lora_wrap, no_dropout_config
    from ..models.fused import fuse_activations

    path = local_dir(model)
    spec = model.spec
    wdtype = cfg.weights_dtype or (spec.dtype if spec else "fp32")
    hf_cfg = no_dropout_config(path, trust_remote_code) if not cfg.dropout else None
    kw = {"config": hf_cfg} if hf_cfg is not None else {}
    backbone = AutoModel.from_pretrained(path, trust_remote_code=trust_remote_code,
                                         dtype=torch.bfloat16 if wdtype == "bf16" else torch.float32, **kw)
    fuse_activations(backbone)
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
    clf = Classifier(backbone, num_classes, pooling, layer).to(device)  # shortcuts in one process only
    return clf, tok, family


def default_lr(model: ResolvedModel, cfg: FinetuneConfig) -> float:
    spec = model.spec
    base = (spec.lora_lr if cfg.lora else spec.lr) if spec else (5e-4 if cfg.lora else 5e-5)
    return base * cfg.batch_size / 32


def finetune(
    model: ResolvedModel, train_texts: list[str], target: np.ndarray, loss_fn: LossFn, cfg: FinetuneConfig,
    *, seed: int, num_classes: int, pooling: str, layer: int, eval_sets: dict[str, list[str]],
    device: str = "cpu", compute_dtype: str = "fp32", trust_remote_code: bool = False, desc: str = "finetune",
    checkpoint_dir: str | Path | None = None, eval_every: int | None = None,
    on_step: Callable[[int], None] | None = None,
) -> FinetuneResult:
    """Train on ``train_texts`` with soft targets (N, K), then predict every evaluation set.

    ``checkpoint_dir``: with ``cfg.checkpoint_every`` set, a checkpoint (trainable weights,
    optimizer, schedule, RNG states, data-order position) is written there every that many
    optimizer steps, and a run that finds a checkpoint of itself there resumes from it, to the
    same result as an uninterrupted run. ``eval_every``: also evaluate every ``eval_sets`` every
    that many steps (and at the end) into ``res.curve``. ``on_step(step)`` is called after each
    optimizer step (and its checkpoint), e.g. to stop early by raising.

    Under a multi-process launch (``accelerate launch``, ``torchrun``) the model and optimizer are
    wrapped by ``accelerate.Accelerator``; each process trains on a disjoint shard of every batch
    and evaluates a disjoint part of every set, and all of them return the same, full, result.
    """
    t_load = time.time()
    if eval_every is not None and eval_every < 1:
        raise W2SError(f"{desc}: eval_every must be >= 1 (or None), got {eval_every}")
    if cfg.checkpoint_every is not None and cfg.checkpoint_every < 1:
        raise W2SError(f"{desc}: finetune.checkpoint_every must be >= 1 (or None), got {cfg.checkpoint_every}")
    accelerator = _accelerator(device) if is_distributed() else None
    if accelerator is not None:
        device = str(accelerator.device)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    clf, tok, family = build_model(model, num_classes, pooling, layer, cfg, trust_remote_code, device)
    load_s = time.time() - t_load
    t0 = time.time()  # training time excludes model loading
    lr = cfg.lr if cfg.lr is not None else default_lr(model, cfg)
    head_lr = cfg.head_lr if cfg.head_lr is not None else max(10 * lr, 1e-3)
    fp = None
    if checkpoint_dir is not None and cfg.checkpoint_every:
        from dataclasses import asdict

        fp = fingerprint(cfg={k: v for k, v in asdict(cfg).items() if k != "checkpoint_every"}, seed=seed,
                         model=model.name, num_classes=num_classes, pooling=pooling, layer=layer, lr=lr,
                         head_lr=head_lr, compute_dtype=compute_dtype, eval_every=eval_every, loop=LOOP_VERSION,
                         data=_data_hash(train_texts, target),
                         evals=_data_hash([f"{k}\x00{t}" for k, ts in sorted(eval_sets.items()) for t in ts]))

    def evaluate(module) -> dict[str, np.ndarray]:
        module.eval()
        out = {name: predict_texts(module, tok, texts, cfg, device, compute_dtype) for name, texts in eval_sets.items()}
        module.train()
        return out

    run = train_steps(clf, tok, train_texts, target, loss_fn, cfg, lr=lr, head_lr=head_lr, gen=gen, device=device,
                      compute_dtype=compute_dtype, desc=desc, accelerator=accelerator,
                      checkpoint_dir=Path(checkpoint_dir) if fp else None, checkpoint_fp=fp,
                      eval_every=eval_every, evaluate=evaluate if eval_every else None, on_step=on_step)
    step = len(run.losses)
    train_s = time.time() - t0
    if run.final_probs is not None:  # the curve's last point was evaluated at the last step
        probs = run.final_probs
    else:
        probs = evaluate(_eval_module(run.model, accelerator))
    clf.eval()
    trainable = {k: v.detach().cpu().contiguous() for k, v in clf.named_parameters()
                 if v.requires_grad and (cfg.lora or k.startswith("head."))}
    info = {"steps": step, "lr": lr, "head_lr": head_lr, "load_s": round(load_s, 3), "train_wall_s": round(train_s, 3),
            "tokens": run.tokens, "tokens_per_s": round(run.tokens / max(train_s, 1e-9), 1),
            "s_per_step": round(train_s / max(step, 1), 4), "family": family, "lora": cfg.lora,
            "effective_batch": math.prod(micro_accum(cfg)),
            "world_size": accelerator.num_processes if accelerator is not None else 1}
    if run.resumed_from is not None:
        info["resumed_from_step"] = run.resumed_from
    return FinetuneResult(probs, trainable, run.losses, info, run.curve, clf, tok)


def _data_hash(texts: list[str], target: np.ndarray | None = None) -> str:
    """sha256 of texts (and targets): part of a checkpoint's fingerprint."""
    h = hashlib.sha256()
    for t in texts:
        h.update(t.encode("utf-8", "surrogatepass") + b"\x00")
    if target is not None:
        h.update(np.ascontiguousarray(target, dtype=np.float32).tobytes())
    return h.hexdigest()[:24]


def _accelerator(device: str):
    """An ``accelerate.Accelerator`` for a multi-process run (DDP, or FSDP/DeepSpeed from its config).

    ``find_unused_parameters``: backbones carry weights the classifier never uses (BERT's pooler,
    layers above ``layer``), which plain DDP rejects.
    """
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs

    acc = Accelerator(cpu=torch.device(device).type == "cpu",
                      kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])
    if acc.num_processes != world_size():
        raise W2SError(f"accelerate sees {acc.num_processes} process(es) but the launch has {world_size()} "
                       f"(distributed type {acc.distributed_type}); launch with `accelerate launch` or `torchrun`")
    return acc


def _eval_module(clf, accelerator):
    """The module to predict with: the plain one, except where the wrapper holds the weights (FSDP, DeepSpeed).

    Under DDP the plain module gives the same outputs without DDP's per-forward collectives, so
    ranks may run different numbers of evaluation batches.
    """
    if accelerator is None:
        return clf
    from accelerate.utils import DistributedType

    if accelerator.distributed_type in (DistributedType.MULTI_CPU, DistributedType.MULTI_GPU, DistributedType.NO):
        return accelerator.unwrap_model(clf)
    return clf


def micro_accum(cfg: FinetuneConfig) -> tuple[int, int]:
    """(examples per forward/backward, micro-batches accumulated per optimizer step).

    Under P processes a micro-batch is global: each process runs ceil(micro / P) of its examples.
    """
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
    # AdamW: torch's, which also takes an input embedding's sparse gradient (train.optim), exactly
    opt = AdamW([{"params": body, "lr": lr}, {"params": head, "lr": head_lr}], weight_decay=cfg.weight_decay,
                fused=fused)
    warm = int(cfg.warmup_frac * total)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / max(1, warm) if s < warm else 0.5 * (1 + math.cos(math.pi * (s - warm) / max(1, total - warm))))
    return params, opt, sched


@dataclass
class TrainRun:
    """What :func:`train_steps` returns."""

    losses: list[float]
    """Loss of every optimizer step (summed over processes: the global batch's loss)."""
    tokens: int
    """Non-pad tokens trained on (all processes)."""
    model: Any
    """The trained module as wrapped for this launch (the classifier itself when single-process)."""
    curve: list[dict[str, Any]] = field(default_factory=list)
    """``{"step", "probs": {split: (n, K)}}`` every ``eval_every`` steps and at the end."""
    final_probs: dict[str, np.ndarray] | None = None
    """The curve's last point when it is the final step (saves evaluating twice)."""
    resumed_from: int | None = None
    """Step of the checkpoint this run resumed from."""


def train_steps(clf, tok, train_texts: list[str], target: np.ndarray, loss_fn: LossFn, cfg: FinetuneConfig, *,
                lr: float, head_lr: float, gen: torch.Generator, device: str = "cpu", compute_dtype: str = "fp32",
                desc: str = "finetune", accelerator=None, checkpoint_dir: Path | None = None,
                checkpoint_fp: str | None = None, eval_every: int | None = None,
                evaluate: Callable[[Any], dict[str, np.ndarray]] | None = None,
                on_step: Callable[[int], None] | None = None,
                batcher: Callable[[np.ndarray, int, torch.Generator], list[np.ndarray]] = length_grouped_batches,
                ) -> TrainRun:
    """The training loop of :func:`finetune` on a built classifier.

    ``batcher(lengths, micro, gen)`` cuts each epoch into micro-batches, popped from the end of its
    list (default :func:`length_grouped_batches`; :func:`in_order_batches` keeps the data order).

    Every process builds the same global micro-batches; process r of P trains on rows r, r+P, ...
    of each (:func:`~w2sgen.train.distributed.shard`), its loss weighted by its share of the
    global batch, so the averaged gradient is the single-process one (also for the last, uneven
    batch).

    Batch-level losses (:func:`needs_window`) see, through ``window``, exactly the rest of the
    step's effective batch scored by the step's weights: with several micro-batches per step a
    no-grad forward over all of them runs first (the later micro-batches' predictions are needed
    by the first one's loss); with one, its own predictions (gathered from the other processes).
    """
    from ..log import progress

    clf.train()
    micro, accum = micro_accum(cfg)
    P, R = (accelerator.num_processes, accelerator.process_index) if accelerator is not None else (1, 0)
    enc = tok(train_texts, truncation=True, max_length=cfg.max_length, padding=False)["input_ids"]
    lengths = np.array([len(x) for x in enc])
    total = total_steps(len(train_texts), cfg)
    if accelerator is None:  # single process: the input embedding's gradient holds only the batch's rows
        sparse_input_embedding(clf.backbone)
    params, opt, sched = make_optimizer(clf, cfg, lr, head_lr, total)
    y = torch.from_numpy(np.array(target, dtype=np.float32))  # (N, K), a private copy
    autocast = dict(device_type=torch.device(device).type, dtype=torch.bfloat16, enabled=compute_dtype == "bf16")
    math_attn = autocast["enabled"] and autocast["device_type"] == "cpu"
    batch_level = needs_window(loss_fn)
    losses: list[float] = []
    curve: list[dict[str, Any]] = []
    tokens = 0
    step = 0
    batches: list[np.ndarray] = []
    resumed_from = None

    every = cfg.checkpoint_every if checkpoint_dir is not None else None
    if every is not None and accelerator is not None:
        from accelerate.utils import DistributedType

        if accelerator.distributed_type not in (DistributedType.MULTI_CPU, DistributedType.MULTI_GPU):
            raise W2SError(f"{desc}: finetune.checkpoint_every works single-process and under DDP, not under "
                           f"{accelerator.distributed_type} (its weights and optimizer are sharded); unset it")
    ckpt = broadcast_from_main(str(latest_checkpoint(checkpoint_dir, checkpoint_fp) or "") if every else "")
    if ckpt:
        s = load_checkpoint(Path(ckpt))
        missing = set(s["trainable"]) - {k for k, _ in clf.named_parameters()}
        if missing:
            raise W2SError(f"{desc}: checkpoint {ckpt} has weights this model lacks: {sorted(missing)[:3]}")
        clf.load_state_dict(s["trainable"], strict=False)
        opt.load_state_dict(s["optimizer"])
        sched.load_state_dict(s["scheduler"])
        step, losses, tokens = int(s["step"]), list(s["losses"]), int(s["tokens"])
        batches = [b.numpy() for b in s["batches"]]
        curve = [{"step": c["step"], "probs": {k: v.numpy() for k, v in c["probs"].items()}} for c in s["curve"]]
        gen.set_state(s["gen"])
        set_rng_state(s["rng"])
        resumed_from = step
        log.info("%s: resuming from checkpoint %s (step %d of %d)", desc, ckpt, step, total)

    model = clf
    if accelerator is not None:
        model, opt = accelerator.prepare(clf, opt)  # the schedule stays unwrapped: one step per optimizer step
        params = [p for p in model.parameters() if p.requires_grad]
    eval_model = _eval_module(model, accelerator)
    final_probs = None

    def save() -> None:
        raw = accelerator.unwrap_model(model) if accelerator is not None else clf
        if is_main_process():
            state = {
                "step": step, "losses": list(losses), "tokens": tokens,
                "trainable": {k: v.detach().cpu().clone() for k, v in raw.named_parameters() if v.requires_grad},
                "optimizer": (opt.optimizer if accelerator is not None else opt).state_dict(),
                "scheduler": sched.state_dict(), "gen": gen.get_state(), "rng": rng_state(),
                "batches": [torch.from_numpy(np.asarray(b, dtype=np.int64)) for b in batches],
                "curve": [{"step": c["step"], "probs": {k: torch.from_numpy(v) for k, v in c["probs"].items()}}
                          for c in curve],
            }
            save_checkpoint(checkpoint_dir, step, state, checkpoint_fp)
        barrier()

    with progress(total=total, desc=desc, unit="step") as bar:
        bar.update(step)
        while step < total:
            if not batches:
                batches = batcher(lengths, micro, gen)
            opt.zero_grad(set_to_none=True)
            group = [batches.pop() for _ in range(min(accum, len(batches)))]
            n_group = sum(len(b) for b in group)
            micros = [_micro_batch(rows, R, P, enc, tok, device) for rows in group]
            # batch-level loss over several micro-batches: every one's predictions first (no grad)
            step_probs = (_predict_micro_batches(eval_model, micros, P, device, autocast, math_attn)
                          if batch_level and len(group) > 1 else None)
            step_loss = 0.0
            for j, (rows, local, batch) in enumerate(micros):
                if len(local):
                    tokens += int(batch["attention_mask"].sum())
                t = y[local if len(local) else rows[:1]].to(device)  # (b, K)
                sync = accelerator is None or j == len(group) - 1
                no_sync = accelerator.no_sync(model) if not sync else nullcontext()
                with no_sync:
                    with torch.autocast(**autocast), _attention_kernel(batch, math_attn):
                        logits = model(batch["input_ids"], batch["attention_mask"])  # (b, K) fp32
                    window = None
                    if batch_level:
                        probs = step_probs
                        if probs is None:  # one micro-batch per step: its own predictions, all processes'
                            own = torch.softmax(logits.detach().float(), -1)[: len(local)]  # (b_local, K)
                            probs = [_gather_rows(own, rows, P, device)]
                        window = _window(probs, group, j, R, P, y, device)
                    loss = loss_fn(logits, t, step, total, window=window)
                    if not torch.isfinite(loss):
                        raise W2SError(f"{desc}: loss is {loss.item()} at step {step}; "
                                       "lower finetune.lr or check labels")
                    share = len(local) / n_group  # this shard's weight in the global batch (0 for a dummy)
                    # DDP averages gradients over P processes: scale by P so that they sum instead
                    scaled = loss * (share * P)
                    if accelerator is not None:
                        accelerator.backward(scaled)
                    else:
                        scaled.backward()
                step_loss += loss.item() * len(local) / n_group
            if cfg.max_grad_norm > 0:
                if accelerator is not None:
                    accelerator.clip_grad_norm_(params, cfg.max_grad_norm)
                else:
                    clip_grad_norm(params, cfg.max_grad_norm)
            opt.step()
            sched.step()
            if P > 1:  # the global batch's loss: the shards' weighted losses summed
                step_loss = float(all_reduce_sum(torch.tensor(step_loss, dtype=torch.float64, device=device)).item())
            losses.append(step_loss)
            step += 1
            bar.update(1)
            if evaluate is not None and eval_every and (step % eval_every == 0 or step == total):
                point = evaluate(eval_model)
                curve.append({"step": step, "probs": point})
                if step == total:
                    final_probs = point
            if every and step % every == 0 and step < total:
                save()
            if on_step is not None:
                on_step(step)
    if evaluate is not None and eval_every and final_probs is None:  # resumed at the end: evaluate now
        final_probs = evaluate(eval_model)
        if not curve or curve[-1]["step"] != step:
            curve.append({"step": step, "probs": final_probs})
    if P > 1:
        tokens = int(all_reduce_sum(torch.tensor(tokens, device=device)).item())
    return TrainRun(losses, tokens, model, curve, final_probs, resumed_from)


def _micro_batch(rows: np.ndarray, R: int, P: int, enc: list[list[int]], tok, device: str):
    """(global rows, this process's rows, its padded batch on ``device``) of one micro-batch.

    An empty shard runs the first row of the micro-batch (weighted 0) so that it still joins the
    collectives of the forward and backward passes.
    """
    local = shard(rows, R, P)
    run_rows = local if len(local) else rows[:1]
    batch = tok.pad({"input_ids": [enc[i] for i in run_rows]}, return_tensors="pt").to(device)
    return rows, local, batch


def _attention_kernel(batch, math_attn: bool):
    # CPU + bf16: the flash-attention backward is slow for short rows; the math kernel is faster there
    # (MiniLM-L6, SST-2, batch 32 on a 2-core CPU: 0.23 instead of 0.27 s per step)
    short = math_attn and batch["input_ids"].shape[1] <= 128
    return sdpa_kernel(SDPBackend.MATH) if short else nullcontext()


def _gather_rows(probs: torch.Tensor, rows: np.ndarray, P: int, device: str) -> torch.Tensor:
    """This process's (b_local, K) predictions -> the whole micro-batch's (len(rows), K), in its order."""
    if P == 1:
        return probs
    sizes = [len(shard(rows, q, P)) for q in range(P)]
    return unshard(gather_shards(probs, sizes, device), len(rows), P).to(probs.dtype)


@torch.no_grad()
def _predict_micro_batches(model, micros, P: int, device: str, autocast: dict, math_attn: bool) -> list[torch.Tensor]:
    """Predicted probabilities (len(rows), K) of every micro-batch of a step, with the step's weights.

    The module stays in training mode (as the step's own forward passes run it); every process
    runs one forward per micro-batch and the shards are gathered.
    """
    out = []
    for rows, local, batch in micros:
        with torch.autocast(**autocast), _attention_kernel(batch, math_attn):
            logits = model(batch["input_ids"], batch["attention_mask"])  # (b, K)
        out.append(_gather_rows(torch.softmax(logits.float(), -1)[: len(local)], rows, P, device))
    return out


def _window(probs: list[torch.Tensor], group: list[np.ndarray], j: int, R: int, P: int, y: torch.Tensor,
            device: str) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(probs (M, K), targets (M, K)) of the step's effective batch minus the rows this process's loss
    of micro-batch ``j`` scores itself: every other micro-batch, and the other processes' rows of ``j``.

    ``probs[i]`` holds the predictions of ``group[i]`` (all its rows, in order); None when nothing is left.
    """
    parts_p, parts_t = [], []
    for i, (rows, p) in enumerate(zip(group, probs)):
        keep = np.arange(len(rows))
        if i == j:
            keep = keep[keep % P != R]  # shard() gives this process positions R, R + P, ...
        if len(keep):
            parts_p.append(p[torch.from_numpy(keep).to(p.device)])
            parts_t.append(y[rows[keep]].to(device))
    if not parts_p:
        return None
    return torch.cat(parts_p), torch.cat(parts_t)


@torch.inference_mode()
def predict_texts(clf, tok, texts: list[str], cfg: FinetuneConfig, device: str, compute_dtype: str) -> np.ndarray:
    """Class probabilities (N, K), batched by length.

    Under P processes, process r predicts batches r, r+P, ... (all run the same number of forward
    passes, padding with a discarded repeat) and the rows are summed across processes, each
    written by exactly one: every process returns the full (N, K) array.
    """
    head = clf.module.head if hasattr(clf, "module") and not hasattr(clf, "head") else clf.head
    K = head.out_features
    if not texts:
        return np.zeros((0, K), dtype=np.float32)
    P, R = (world_size(), rank()) if torch.distributed.is_available() and torch.distributed.is_initialized() else (1, 0)
    enc = tok(texts, truncation=True, max_length=cfg.max_length, padding=False)["input_ids"]
    order = np.argsort([-len(x) for x in enc], kind="stable")
    out = torch.zeros((len(texts), K), dtype=torch.float32)
    starts = list(range(0, len(texts), cfg.eval_batch_size))
    mine = starts[R::P]
    n_runs = -(-len(starts) // P)  # every process runs this many forward passes
    with torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=compute_dtype == "bf16"):
        for j in range(n_runs):
            real = j < len(mine)
            rows = order[mine[j] if real else starts[0] :][: cfg.eval_batch_size]
            batch = tok.pad({"input_ids": [enc[i] for i in rows]}, return_tensors="pt").to(device)
            p = torch.softmax(clf(batch["input_ids"], batch["attention_mask"]).float(), -1).cpu()  # (b, K)
            if real:
                out[torch.from_numpy(rows)] = p
    if P > 1:
        out = all_reduce_sum(out.to(device)).cpu()
    return out.numpy()
