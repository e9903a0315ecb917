"""Training losses (pure functions of logits and targets).

Shapes: ``logits`` (B, K) raw scores, ``target`` (B, K) soft labels whose rows sum to 1.
All losses return the batch mean. :func:`xent` and :func:`logconf` also take the logits of several
heads at once, (A, B, K) against the same (B, K) targets, and return each head's loss (A,), exactly
what each head's (B, K) call returns (the probe heads' grid trains that way). Targets built from the student's own predictions are
detached: the student is pulled towards them, not the other way round.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def xent(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy with soft labels.

    L = −(1/B) Σ_i Σ_k t_ik · log softmax(z_i)_k

    logits (..., B, K), target broadcastable to it -> (...): one mean per leading index.
    """
    return -(target * F.log_softmax(logits.float(), dim=-1)).sum(-1).mean(-1)


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
    positive column). α comes from :func:`warmup_alpha`. Under gradient accumulation or several
    processes, ``window`` = (probs (M, K), weak (M, K)) of the rest of the step's effective batch
    (every other micro-batch, and the other processes' rows), scored with the step's weights by a
    no-grad forward pass (``train.finetune``), so the threshold and the rate are computed over the
    whole effective batch. That pass runs in training mode, as the step's own forwards do: with
    dropout on, the window's predictions are another dropout sample of the same weights.

    Several heads: logits (A, B, K) with weak (B, K) give each head's loss (A,), each with its own
    threshold over its own predictions (no ``window`` then).
    """
    probs = F.softmax(logits.detach().float(), dim=-1)  # (..., B, K)
    all_probs, all_weak = probs, weak
    if window is not None:
        if probs.dim() != 2:
            raise ValueError("logconf: a window needs the logits of one head, (B, K)")
        all_probs = torch.cat([window[0].to(probs), probs])
        all_weak = torch.cat([window[1].to(weak), weak])
    if weak.shape[-1] == 2:
        rate = all_weak[:, 1].mean()
        tau = torch.quantile(all_probs[..., 1], 1.0 - rate.clamp(0.0, 1.0), dim=-1, keepdim=True)  # (..., 1)
        hard1 = (probs[..., 1] > tau).to(probs.dtype)
        hard = torch.stack([1.0 - hard1, hard1], dim=-1)
    else:
        hard = F.one_hot(probs.argmax(-1), probs.shape[-1]).to(probs.dtype)
    target = (1.0 - alpha) * weak + alpha * hard
    return xent(logits, target)


def product(logits: torch.Tensor, weak: torch.Tensor, alpha: float = 1.0, beta: float = 1.0) -> torch.Tensor:
    """Product-of-experts target: the student trusts the weak label and itself.

    t ∝ p_strong^β · p_weak^α  (normalised over classes, p_strong detached);  L = CE(f, t).
    """
    log_t = beta * F.log_softmax(logits.detach().float(), dim=-1) + alpha * torch.log(weak.float().clamp_min(1e-12))
    target = F.softmax(log_t, dim=-1)
    return xent(logits, target)


# --------------------------------------------------------------------------- later methods (issue 5)


def kl(logits: torch.Tensor, weak: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """KL divergence from the student to the weak labels (mode-seeking).

    L = (1/B) Σ_i Σ_k p_ik · (log p_ik − log w_ik),  p = softmax(z)

    KL(p_weak ‖ p_student) would differ from :func:`xent` only by the weak labels' entropy
    (same gradient), so this is the direction that changes training.
    """
    logp = F.log_softmax(logits.float(), dim=-1)
    logw = torch.log(weak.float().clamp_min(eps))
    return (logp.exp() * (logp - logw)).sum(-1).mean()


def reverse_ce(logits: torch.Tensor, weak: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Reverse cross-entropy: the student's distribution scored by the weak labels' log-probabilities.

    L = −(1/B) Σ_i Σ_k p_ik · log w_ik,  p = softmax(z)

    (= KL(p ‖ w) − H(p): unlike :func:`kl` it also rewards a confident student.)
    """
    p = F.softmax(logits.float(), dim=-1)
    return -(p * torch.log(weak.float().clamp_min(eps))).sum(-1).mean()


def entropy(logits: torch.Tensor, weak: torch.Tensor, alpha: float) -> torch.Tensor:
    """``logconf`` with the student's soft prediction as its own target: an entropy penalty.

    L = (1 − α) · CE(f, f_w) + α · H(f),  H(f) = −(1/B) Σ_i Σ_k p_ik · log p_ik

    H(f) is CE(f, f) with the target *not* detached: with a detached soft self-target the
    term's gradient p − p vanishes. α comes from :func:`warmup_alpha`.
    """
    logp = F.log_softmax(logits.float(), dim=-1)
    ent = -(logp.exp() * logp).sum(-1).mean()
    return (1.0 - alpha) * xent(logits, weak) + alpha * ent


def window(logits: torch.Tensor, weak: torch.Tensor, radius: float) -> torch.Tensor:
    """Cross-entropy only where the student is still unsure (a confidence window).

    L = (1/B) Σ_i m_i · CE(f_i, f_w,i),  m_i = 1[max_k p_ik < 0.5 + r]

    The sum is divided by the batch size B, not by Σ m_i, so confident examples contribute 0.
    """
    p = F.softmax(logits.detach().float(), dim=-1)
    mask = (p.max(-1).values < 0.5 + radius).to(p.dtype)  # (B,)
    per = -(weak * F.log_softmax(logits.float(), dim=-1)).sum(-1)  # (B,)
    return (mask * per).sum() / logits.shape[0]


def adaptconf(logits: torch.Tensor, weak: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """AdaptConf (Guo et al. 2024, "Vision Superalignment"): per-example trust in weak vs self.

    With ŷ_s = onehot(argmax p_i), ŷ_w = onehot(argmax w_i) and the per-example
    cross-entropies c_s = CE(f_i, ŷ_s), c_w = CE(f_i, ŷ_w):

        β_i = exp(c_s / T) / (exp(c_s / T) + exp(c_w / T))   (detached)
        L = (1/B) Σ_i (1 − β_i) · CE(f_i, w_i) + β_i · CE(f_i, ŷ_s)

    as in the authors' code (github.com/ggjy/vision_weak_to_strong, T = 0.5 there). Since
    c_s ≤ c_w, β_i ≤ 1/2, with equality where the student's and the weak label's argmax agree.
    """
    logp = F.log_softmax(logits.float(), dim=-1)  # (B, K)
    self_idx = logp.detach().argmax(-1, keepdim=True)
    weak_idx = weak.argmax(-1, keepdim=True)
    c_self = -logp.gather(-1, self_idx).squeeze(-1)  # (B,)
    c_weak = -logp.gather(-1, weak_idx).squeeze(-1)
    beta = torch.sigmoid((c_self - c_weak).detach() / temperature)
    ce_weak_soft = -(weak * logp).sum(-1)
    return ((1.0 - beta) * ce_weak_soft + beta * c_self).mean()
