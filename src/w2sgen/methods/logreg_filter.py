"""``logreg_filter``: drop (or relabel) the weak labels an out-of-fold logistic probe disagrees with.

The probe is an L2-regularized logistic regression on the frozen strong model's standardized
activations of the transfer set, fit on the hard weak labels (argmax) of the other folds and
predicting the held-out fold (``folds``-fold over whole groups, seeded), so no example is scored by
a probe that trained on it or on another example of its group.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import W2SError
from . import _filtering as F
from ._folds import fold_ids
from .base import Method

NAME = "logreg_filter"


@dataclass
class LogregFilterConfig:
    C: float = 1.0
    """Inverse L2 strength of the logistic regression (sklearn's C)."""
    folds: int = 5
    """Out-of-fold splits of transfer (whole groups): each fold is predicted by a probe fit on the others."""
    max_iter: int = 1000
    """lbfgs iterations of each fit."""
    action: str = "drop"
    """'drop': remove the drop_frac most-disagreeing examples; 'relabel': keep every example and replace
    those examples' targets with the one-hot of the probe's argmax."""
    drop_frac: float = 0.1
    """Fraction of transfer flagged: the examples with the largest 1 − p_probe(weak hard label)."""

    def __post_init__(self) -> None:
        if not self.C > 0:
            raise W2SError(f"method {NAME!r}: C must be > 0, got {self.C!r} (--set {NAME}.C=1.0)")
        F.check_int(NAME, "folds", self.folds, 2)
        F.check_int(NAME, "max_iter", self.max_iter, 1)
        F.check_action(NAME, self.action)
        F.check_drop_frac(NAME, self.drop_frac)


def logreg_scores(x: np.ndarray, hard: np.ndarray, num_classes: int, C: float, folds: int, seed: int,
                  max_iter: int = 1000, groups: np.ndarray | None = None) -> np.ndarray:
    """Out-of-fold probe probabilities pred (N, K) from features x (N, C) and hard labels (N,) int.

    For each fold f of ``fold_ids(groups, folds, seed)`` (groups (N,); None: each row its own group): scaler = z-scores fit on the other folds;
    probe = argmin_w Σ_{j ∉ f} −log softmax(W s(x_j) + b)_{hard_j} + ||W||² / (2C) (sklearn lbfgs);
    pred_i = softmax(W s(x_i) + b) for i ∈ f. Classes absent from the other folds get probability 0
    (a single present class gets probability 1).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = np.asarray(x, dtype=np.float64)  # (N, C)
    hard = np.asarray(hard)
    out = np.zeros((len(x), num_classes))
    for held in fold_ids(np.arange(len(x)) if groups is None else groups, folds, seed, NAME):
        train = np.setdiff1d(np.arange(len(x)), held)
        present = np.unique(hard[train])
        if len(present) == 1:
            out[held, present[0]] = 1.0
            continue
        probe = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=max_iter))
        probe.fit(x[train], hard[train])
        out[np.ix_(held, probe.classes_)] = probe.predict_proba(x[held])  # (|held|, |present|)
    return out


def _select(cfg: LogregFilterConfig, weak: np.ndarray, ctx: Any, pos: np.ndarray):
    x = F.transfer_features(ctx, pos)
    pred = logreg_scores(x, F.hard_labels(weak), weak.shape[1], cfg.C, cfg.folds, ctx.seed, cfg.max_iter,
                         F.transfer_groups(ctx, pos))
    return F.filter_by_probe(cfg, weak, pred, pos)


METHOD = Method(
    name=NAME,
    description="Drop (or relabel) the drop_frac weak labels that an out-of-fold logistic probe on the strong model's frozen features disagrees with most.",
    config_cls=LogregFilterConfig,
    select_fn=_select,
    select_uses_context=True,
    kind="select",
    key_fn=F.frozen_key,
    analyze_fn=F.analyze(NAME),
)
