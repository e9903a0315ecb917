"""Training losses (pure functions of logits and targets).

Shapes: ``logits`` (B, K) raw scores, ``target`` (B, K) soft labels whose rows sum to 1.
All losses return the batch mean. Targets built from the student's own predictions are
detached: the student is pulled towards them, not the other way round.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def xent(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy with soft labels.

    L = −(1/B) Σ_i Σ_k t_ik · log softmax(z_i)_k
    """
    return -(target * F.log_softmax(logits.float(), dim=-1)).sum(-1).mean()


def warmup_alpha(step: int, total_steps: int, alpha_max: float = 0.5, warmup_frac: float = 0.2) -> float:
    """Linear ramp of the confidence weight, with no jump.

    α(s) = α_max · min(1, s / (warmup_frac · S)) for step s of S (α = α_max when warmup_frac = 0).
    (OpenAI's code jumps from 0.05 to 0.5 at 10% of training instead.)
    """
    if warmup_frac <= 0 or total_steps <= 0:
        return float(alpha_max)
    return float(alpha_max) * min(1.0, step / (warmup_frac * total_steps))


def harden(probs: torch.Tensor, positive_rate: torch.Tensor | float) -> torch.Tensor:
    """The student's predictions hardened to one-hot at a batch-level threshold.

    Binary (K = 2): τ = quantile_{1−r}(p_1) with r the target positive rate, so that the
    fraction of examples with p_1 > τ matches r; ŷ = 1[p_1 > τ]. For K > 2: ŷ = argmax p.
    probs (B, K) -> one-hot (B, K).
    """
    B, K = probs.shape
    if K != 2:
        return F.one_hot(probs.argmax(-1), K).to(probs.dtype)
    p1 = probs[:, 1]
    r = torch.as_tensor(positive_rate, dtype=p1.dtype, device=p1.device).clamp(0.0, 1.0)
    tau = torch.quantile(p1, 1.0 - r)
    hard1 = (p1 > tau).to(probs.dtype)
    return torch.stack([1.0 - hard1, hard1], dim=-1)


def logconf(logits: torch.Tensor, weak: torch.Tensor, alpha: float,
            window: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """The auxiliary confidence loss of Burns et al. (2023).

    L = (1 − α) · CE(f, f_w) + α · CE(f, f̂_t)

    f_w: weak soft labels; f̂_t: the student's own predictions hardened (:func:`harden`) at the
    threshold that makes the batch's positive rate match the weak labels' (mean of f_w's
    positive column). α comes from :func:`warmup_alpha`. Under gradient accumulation,
    ``window`` = (probs (M, K), weak (M, K)) of the preceding micro-batches of the effective
    batch, so the threshold and the rate are computed over the whole effective batch.
    """
    probs = F.softmax(logits.detach().float(), dim=-1)  # (B, K)
    all_probs, all_weak = probs, weak
    if window is not None:
        all_probs = torch.cat([window[0].to(probs), probs])
        all_weak = torch.cat([window[1].to(weak), weak])
    if weak.shape[1] == 2:
        rate = all_weak[:, 1].mean()
        tau = torch.quantile(all_probs[:, 1], 1.0 - rate.clamp(0.0, 1.0))
        hard1 = (probs[:, 1] > tau).to(probs.dtype)
        hard = torch.stack([1.0 - hard1, hard1], dim=-1)
    else:
        hard = harden(probs, 0.0)
    target = (1.0 - alpha) * weak + alpha * hard
    return xent(logits, target)


def product(logits: torch.Tensor, weak: torch.Tensor, alpha: float = 1.0, beta: float = 1.0) -> torch.Tensor:
    """Product-of-experts target: the student trusts the weak label and itself.

    t ∝ p_strong^β · p_weak^α  (normalised over classes, p_strong detached);  L = CE(f, t).
    """
    log_t = beta * F.log_softmax(logits.detach().float(), dim=-1) + alpha * torch.log(weak.float().clamp_min(1e-12))
    target = F.softmax(log_t, dim=-1)
    return xent(logits, target)
