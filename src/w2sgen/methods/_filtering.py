"""Shared parts of the feature-probe label filters (``knn_filter``, ``logreg_filter``, ``topo_filter``).

Each filter fits a probe on the STRONG model's frozen activations of the transfer set against the
weak labels, scores every transfer example by how much the probe disagrees with its weak label, and
then either drops the most-disagreeing examples or relabels them with the probe's prediction.

Conventions (all arrays in transfer order):

    x      (N, C)  strong features of the N candidate transfer examples (in a chain of filters, the
                   ones the previous filters kept)
    weak   (N, K)  the candidates' (soft) weak labels passed to select (after any earlier filter)
    hard   (N,)    argmax of weak (ties: the lower class)
    pred   (N, K)  the probe's out-of-fold prediction
    score  (N,)    disagreement = 1 − pred[i, hard_i]

Not registered as a method (the module name starts with ``_``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import W2SError

ACTIONS = ("drop", "relabel")


# --------------------------------------------------------------------------- config checks


def check_action(method: str, action: str) -> None:
    if action not in ACTIONS:
        raise W2SError(f"method {method!r}: action must be 'drop' or 'relabel', got {action!r} "
                       f"(--set {method}.action=drop)")


def check_drop_frac(method: str, drop_frac: float) -> None:
    if not 0 <= drop_frac < 1:
        raise W2SError(f"method {method!r}: drop_frac must be in [0, 1), got {drop_frac!r} "
                       f"(--set {method}.drop_frac=0.1)")


def check_int(method: str, field: str, value: int, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise W2SError(f"method {method!r}: {field} must be an integer >= {low}, got {value!r} "
                       f"(--set {method}.{field}=...)")


# --------------------------------------------------------------------------- pure pieces


def standardize(x: np.ndarray) -> np.ndarray:
    """z-score each feature column over the rows (constant columns become 0). (N, C) -> (N, C) float64.

    Uses no labels, so standardizing over all of transfer does not leak any label into a score."""
    x = np.asarray(x, dtype=np.float64)
    sd = x.std(0)
    return (x - x.mean(0)) / np.where(sd > 0, sd, 1.0)


def hard_labels(weak: np.ndarray) -> np.ndarray:
    """argmax of the (N, K) weak labels -> (N,) int (ties go to the lower class)."""
    return np.asarray(weak).argmax(-1)


def disagreement(pred: np.ndarray, weak: np.ndarray) -> np.ndarray:
    """score_i = 1 − pred[i, argmax_k weak_ik]. (N, K), (N, K) -> (N,)."""
    h = hard_labels(weak)
    return 1.0 - np.asarray(pred, dtype=np.float64)[np.arange(len(h)), h]


def most_disagreeing(score: np.ndarray, drop_frac: float) -> np.ndarray:
    """(N,) bool: the round(drop_frac · N) examples with the largest scores (ties: lower index first)."""
    n = len(score)
    m = int(round(drop_frac * n))
    flag = np.zeros(n, dtype=bool)
    if m > 0:
        flag[np.argsort(-np.asarray(score), kind="stable")[:m]] = True
    return flag


def apply_action(action: str, weak: np.ndarray, flagged: np.ndarray, pred: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """The filter's (keep (N,) bool, targets (N, K)).

    drop:    keep = ¬flagged, targets = weak.
    relabel: keep everything; a flagged example's target becomes the one-hot of the probe's argmax
             (pred (N, K)), the others keep their weak label.
    """
    weak = np.asarray(weak, dtype=np.float32)
    if action == "drop":
        return ~flagged, weak
    targets = weak.copy()
    K = weak.shape[1]
    targets[flagged] = np.eye(K, dtype=np.float32)[np.asarray(pred)[flagged].argmax(-1)]
    return np.ones(len(weak), dtype=bool), targets


# --------------------------------------------------------------------------- context side


def transfer_features(ctx: Any, positions: np.ndarray) -> np.ndarray:
    """The frozen strong model's cached activations of the candidates, (N, C): the transfer examples
    at ``positions`` (in transfer order)."""
    return np.asarray(ctx.features(ctx.frozen_strong(), ctx.rows("transfer")[np.asarray(positions)]))


def transfer_groups(ctx: Any, positions: np.ndarray) -> np.ndarray:
    """The group of each candidate, (N,) in transfer order (the transfer examples at ``positions``):
    the out-of-fold probes split by group."""
    return np.asarray(ctx.groups(ctx.rows("transfer")[np.asarray(positions)]))


def frozen_key(cfg: Any, env: Any) -> dict[str, Any]:
    """The probe filters' key entry: the frozen strong model they read features from (in finetune
    runs a probe-mode side of the strong model, not the side being finetuned)."""
    return {"frozen_strong": env.model_key(env.strong, env.cfg.embed.strong_layer, mode="probe")}


def stats(action: str, weak: np.ndarray, flagged: np.ndarray, pred: np.ndarray, keep: np.ndarray,
          targets: np.ndarray, positions: np.ndarray, **extra: Any) -> dict[str, Any]:
    """Facts about one filtering for the student's train.json (no ground truth: the label firewall).

    ``probe_agree``: fraction of the candidates where the probe's argmax equals the weak hard label.
    The arrays (weak and probe hard labels, flagged, kept, final targets, and the candidates'
    ``positions`` in transfer) go to the stage's arrays.npz; :func:`analyze` scores them against
    ground truth after the method has returned.
    """
    h = hard_labels(weak)
    p = np.asarray(pred).argmax(-1)
    return {"action": action, "n": int(len(h)), "n_flagged": int(flagged.sum()), "n_kept": int(keep.sum()),
            "probe_agree": float((p == h).mean()), **extra,
            "arrays": {"positions": np.asarray(positions, dtype=np.int64), "weak_hard": h.astype(np.int64),
                       "probe_hard": p.astype(np.int64), "flagged": np.asarray(flagged, dtype=bool),
                       "kept": np.asarray(keep, dtype=bool),
                       "target_hard": np.asarray(targets).argmax(-1).astype(np.int64)}}


def analyze(name: str):
    """The analyze_fn of a filter ``name``: accuracy of the weak hard labels on the flagged and
    unflagged candidates and on all of them, of the out-of-fold probe, and of the final targets on
    the kept examples (ground truth of transfer; recorded for analysis only)."""

    def fn(cfg: Any, student: Any, truth: dict[str, np.ndarray], ctx: Any) -> dict[str, Any] | None:
        a = student.arrays
        pre = f"select/{name}/arrays/"
        if pre + "positions" not in a:
            return None
        y = truth["transfer"][a[pre + "positions"]]
        flagged, kept = a[pre + "flagged"], a[pre + "kept"]
        h, p, t = a[pre + "weak_hard"], a[pre + "probe_hard"], a[pre + "target_hard"]

        def acc(v: np.ndarray, m: np.ndarray) -> float | None:
            return float((v[m] == y[m]).mean()) if m.any() else None

        every = np.ones_like(flagged)
        return {"weak_acc_flagged": acc(h, flagged), "weak_acc_unflagged": acc(h, ~flagged),
                "weak_acc": acc(h, every), "probe_acc": acc(p, every), "target_acc_kept": acc(t, kept)}

    return fn


def filter_by_probe(cfg: Any, weak: np.ndarray, pred: np.ndarray, positions: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """The common end of the probe filters: flag the ``cfg.drop_frac`` candidates whose out-of-fold
    probe prediction ``pred`` (N, K) disagrees most with the weak labels, apply ``cfg.action``, and
    describe it: (keep (N,), targets (N, K), stats)."""
    flagged = most_disagreeing(disagreement(pred, weak), cfg.drop_frac)
    keep, targets = apply_action(cfg.action, weak, flagged, pred)
    return keep, targets, stats(cfg.action, weak, flagged, pred, keep, targets, positions)
