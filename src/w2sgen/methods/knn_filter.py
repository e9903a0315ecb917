"""``knn_filter``: drop (or relabel) the weak labels their strong-feature neighbourhood disagrees with.

The probe is a k-nearest-neighbour vote on the frozen strong model's activations of the transfer
set: features are standardized (z-score per dimension over transfer), neighbours are the k nearest
by cosine similarity, and the prediction is the neighbours' mean weak label. Out-of-fold: transfer
is split into ``folds`` seeded folds of whole groups and a held-out example's neighbours are searched
only among the other folds, so no example (nor anything of its fold or its group) votes on itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _filtering as F
from ._folds import fold_ids
from .base import Method

NAME = "knn_filter"


@dataclass
class KnnFilterConfig:
    k: int = 50
    """Neighbours per example (capped at the size of the other folds)."""
    folds: int = 5
    """Out-of-fold splits of transfer (whole groups): neighbours come only from the other folds."""
    action: str = "drop"
    """'drop': remove the drop_frac most-disagreeing examples; 'relabel': keep every example and replace
    those examples' targets with the one-hot of the neighbours' majority (argmax of the mean weak label)."""
    drop_frac: float = 0.1
    """Fraction of transfer flagged: the examples with the largest 1 − (neighbours' mean weak probability
    of the example's weak hard label)."""

    def __post_init__(self) -> None:
        F.check_int(NAME, "k", self.k, 1)
        F.check_int(NAME, "folds", self.folds, 2)
        F.check_action(NAME, self.action)
        F.check_drop_frac(NAME, self.drop_frac)


def knn_scores(x: np.ndarray, labels: np.ndarray, k: int, folds: int, seed: int,
               groups: np.ndarray | None = None) -> np.ndarray:
    """Out-of-fold kNN prediction pred (N, K) from features x (N, C) and labels (N, K) (soft or one-hot).

    z = standardize(x) (column z-scores over all N rows; no labels used). For each fold f of
    ``fold_ids(groups, folds, seed)`` (groups (N,); None: each row its own group) and each i in f: pred_i = (1/k') Σ_{j ∈ NN_k'(i)} labels_j, where
    NN_k'(i) are the k' = min(k, |other folds|) rows outside f with the largest cosine similarity
    cos(z_i, z_j).
    """
    from sklearn.neighbors import NearestNeighbors

    labels = np.asarray(labels, dtype=np.float64)  # (N, K)
    z = F.standardize(x)  # (N, C)
    out = np.zeros_like(labels)
    for held in fold_ids(np.arange(len(z)) if groups is None else groups, folds, seed, NAME):
        train = np.setdiff1d(np.arange(len(z)), held)
        kk = min(k, len(train))
        nn = NearestNeighbors(n_neighbors=kk, metric="cosine", algorithm="brute").fit(z[train])
        idx = nn.kneighbors(z[held], return_distance=False)  # (|held|, k') positions in train
        out[held] = labels[train[idx]].mean(1)
    return out


def _select(cfg: KnnFilterConfig, weak: np.ndarray, ctx: Any, pos: np.ndarray):
    x = F.transfer_features(ctx, pos)
    pred = knn_scores(x, weak, cfg.k, cfg.folds, ctx.seed, F.transfer_groups(ctx, pos))
    return F.filter_by_probe(cfg, weak, pred, pos)


METHOD = Method(
    name=NAME,
    description="Drop (or relabel) the drop_frac weak labels that disagree most with an out-of-fold k-NN vote on the strong model's frozen features.",
    config_cls=KnnFilterConfig,
    select_fn=_select,
    select_uses_context=True,
    kind="select",
    key_fn=F.frozen_key,
    analyze_fn=F.analyze(NAME),
)
