"""Training a head (linear or small MLP) on cached activations, with any loss."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..config import ProbeConfig
from ..errors import W2SError

log = logging.getLogger("w2sgen")

# loss(logits (B, K), target (B, K), step, total_steps) -> scalar
LossFn = Callable[[torch.Tensor, torch.Tensor, int, int], torch.Tensor]


class Head(nn.Module):
    """Standardize (fixed mean/std) then a linear layer or a one-hidden-layer MLP: (B, C) -> (B, K)."""

    def __init__(self, dim: int, num_classes: int, kind: str = "linear", hidden: int = 256):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))
        if kind == "linear":
            self.net: nn.Module = nn.Linear(dim, num_classes)
        elif kind == "mlp":
            self.net = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, num_classes))
        else:
            raise W2SError(f"config field 'probe.head': {kind!r}; use linear or mlp")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std)


@contextmanager
def one_thread():
    """Run torch on one CPU thread inside: a head's ops are tiny, and waking a thread pool for each
    costs more than the op (several times more on a loaded machine)."""
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(prev)


@dataclass
class TrainResult:
    head: Head
    losses: list[float]
    """Mean loss of each epoch."""
    steps: int
    skipped: int = 0
    """Steps skipped for a non-finite loss (only with ``skip_nonfinite``)."""


def train_head(x: np.ndarray, target: np.ndarray, loss_fn: LossFn, cfg: ProbeConfig, seed: int,
               desc: str = "train head", on_epoch: Callable[[int, int, Head], None] | None = None) -> TrainResult:
    """Fit a head on features ``x`` (N, C) to soft targets ``target`` (N, K) with AdamW minibatches.

    The data order comes from a generator seeded with ``seed``; a non-finite loss stops training
    with an error naming the stage (``desc``) and step, or, with ``cfg.skip_nonfinite``, skips that
    batch and counts it. A requested stop (first Ctrl-C under the CLI) takes effect after the
    current step. ``on_epoch(epoch, step, head)``, if given, is called after each epoch (epoch
    counts from 1, ``step`` is the optimizer steps so far) with the head in its current state, e.g.
    to predict with every epoch's weights (early stopping); it must not modify the head.
    """
    from ..log import progress
    from ..safety import check_interrupt

    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    xt = torch.from_numpy(np.array(x, dtype=np.float32))  # (N, C), a private copy
    yt = torch.from_numpy(np.array(target, dtype=np.float32))  # (N, K)
    n, dim = xt.shape
    head = Head(dim, yt.shape[1], cfg.head, cfg.hidden)
    if cfg.standardize:
        head.mean.copy_(xt.mean(0))
        head.std.copy_(xt.std(0).clamp_min(1e-6))
    opt = torch.optim.AdamW(head.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    bs = max(1, min(cfg.batch_size, n))
    per_epoch = math.ceil(n / bs)
    total = per_epoch * cfg.epochs
    if cfg.schedule == "cosine":
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    elif cfg.schedule == "constant":
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    else:
        raise W2SError(f"config field 'probe.schedule': {cfg.schedule!r}; use cosine or constant")
    step = 0
    skipped = 0
    losses = []
    with progress(total=total, desc=desc, unit="step") as bar, one_thread():
        for _ in range(cfg.epochs):
            perm = torch.randperm(n, generator=g)
            run = 0.0
            bad = 0
            for b in range(per_epoch):
                idx = perm[b * bs : (b + 1) * bs]
                logits = head(xt[idx])  # (B, K)
                loss = loss_fn(logits, yt[idx], step, total)
                if not torch.isfinite(loss):
                    if not cfg.skip_nonfinite:
                        raise W2SError(
                            f"stage {desc}: loss is {loss.item()} at step {step} of {total} "
                            f"(epoch {step // per_epoch}, batch {b}); lower probe.lr, check the labels "
                            "and features, or set probe.skip_nonfinite=true to skip such batches")
                    skipped += 1  # no update, so the learning-rate schedule does not advance either
                    bad += 1
                    step += 1
                    check_interrupt(f"stage {desc} at step {step}")
                    continue
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                run += loss.item()
                step += 1
                check_interrupt(f"stage {desc} at step {step}")
            bar.update(per_epoch)
            losses.append(run / (per_epoch - bad) if bad < per_epoch else float("nan"))
            if on_epoch is not None:
                on_epoch(len(losses), step, head)
    if skipped == total and total > 0:
        raise W2SError(f"stage {desc}: every one of the {total} steps had a non-finite loss; "
                       "check the labels and features (try --set embed.dtype=fp32) or lower probe.lr")
    if skipped:
        log.warning("stage %s: skipped %d of %d steps with a non-finite loss", desc, skipped, total)
    return TrainResult(head.eval(), losses, step, skipped)


@torch.inference_mode()
def predict(head: Head, x: np.ndarray, batch_size: int = 4096) -> np.ndarray:
    """Class probabilities (N, K) float32."""
    xt = torch.from_numpy(np.asarray(x, dtype=np.float32))
    out = [torch.softmax(head(xt[i : i + batch_size]), -1) for i in range(0, len(xt), batch_size)]
    return torch.cat(out).numpy() if out else np.zeros((0, head.net(torch.zeros(1, xt.shape[1])).shape[1]), np.float32)
