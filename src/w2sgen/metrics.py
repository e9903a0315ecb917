"""Metrics (pure functions of labels and predicted probabilities)."""

from __future__ import annotations

import math

import numpy as np


def accuracy(labels: np.ndarray, probs: np.ndarray) -> float:
    """acc = (1/N) Σ_i 1[argmax_k p_ik = y_i].   labels (N,), probs (N, K)."""
    if len(labels) == 0:
        return float("nan")
    return float(np.mean(np.argmax(probs, axis=1) == labels))


def majority_accuracy(labels: np.ndarray) -> float:
    """Accuracy of always answering the most frequent class: max_k (1/N) Σ_i 1[y_i = k]. labels (N,)."""
    labels = np.asarray(labels)
    if len(labels) == 0:
        return float("nan")
    return float(np.bincount(labels).max() / len(labels))


def agreement(probs: np.ndarray, ref: np.ndarray) -> float:
    """Fraction of rows whose argmax matches: mean_i [argmax_k p_ik == argmax_k r_ik]. (n, K), (n, K) -> float."""
    probs, ref = np.asarray(probs), np.asarray(ref)
    if len(probs) == 0:
        return float("nan")
    return float((probs.argmax(-1) == ref.argmax(-1)).mean())


def soft_xent(probs: np.ndarray, ref: np.ndarray, eps: float = 1e-7) -> float:
    """Cross-entropy of ``probs`` to soft targets ``ref``: −mean_i Σ_k r_ik log max(p_ik, eps). (n, K), (n, K) -> float."""
    probs, ref = np.asarray(probs, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    if len(probs) == 0:
        return float("nan")
    return float(-(ref * np.log(np.clip(probs, eps, 1.0))).sum(-1).mean())


def auroc(labels: np.ndarray, probs: np.ndarray) -> float:
    """Area under the ROC curve of p_1 for binary tasks; one-vs-rest macro AUROC for K > 2.

    NaN when the labels hold a single class (AUROC is undefined).
    """
    from sklearn.metrics import roc_auc_score

    labels = np.asarray(labels)
    if len(np.unique(labels)) < 2:
        return float("nan")
    if probs.shape[1] == 2:
        return float(roc_auc_score(labels, probs[:, 1]))
    return float(roc_auc_score(labels, probs, multi_class="ovr", labels=list(range(probs.shape[1]))))


def pgr(weak: float, w2s: float, ceiling: float) -> float:
    """Performance gap recovered: PGR = (w2s − weak) / (ceiling − weak).

    1 means the student matches the strong ceiling, 0 that it is no better than its supervisor.
    A zero gap (ceiling = weak) gives NaN: there is nothing to recover. A negative gap (the weak
    model beats the ceiling) still gives the ratio, but it no longer reads as "recovery"; report
    the gap beside it.
    """
    gap = ceiling - weak
    if not math.isfinite(gap) or abs(gap) < 1e-12:
        return float("nan")
    return float((w2s - weak) / gap)


def agreement_split(labels: np.ndarray, weak_probs: np.ndarray, student_probs: np.ndarray) -> dict[str, float]:
    """Student–supervisor agreement, split by whether the supervisor is right.

    agree = mean(ŷ_student = ŷ_weak) over all examples, over those the weak model gets right,
    and over those it gets wrong (the paper's imitation diagnostic: a student that agrees with
    the weak model's mistakes imitates it).
    """
    w = np.argmax(weak_probs, axis=1)
    s = np.argmax(student_probs, axis=1)
    agree = w == s
    right = w == labels

    def mean(mask: np.ndarray) -> float:
        return float(np.mean(agree[mask])) if mask.any() else float("nan")

    return {
        "agreement": mean(np.ones_like(right)),
        "agreement_weak_right": mean(right),
        "agreement_weak_wrong": mean(~right),
    }


def summarize(labels: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    return {"acc": accuracy(labels, probs), "auroc": auroc(labels, probs)}
