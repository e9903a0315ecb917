"""``topo_filter``: TopoFilter (Wu et al. 2020, "A Topological Filter for Learning with Label Noise").

On the frozen strong model's activations of the transfer set (standardized, cosine similarity):

1. kNN graph: i ~ j when j is one of the k nearest neighbours of i or i one of j's (self excluded).
2. Largest components: for each class c, the subgraph induced by the examples whose hard weak label
   (argmax) is c; only its largest connected component is kept (ties: the component holding the
   lowest index). Points in the smaller components are rejected.
3. ζ-filtering: for each point kept by step 2, its k nearest neighbours among the points kept by
   step 2 (self excluded, as in the authors' code, which searches the collected set only); the point
   is rejected when the fraction of them sharing its hard label is < ζ.

The rejected points are what the filter drops (``action=drop``; their number is decided by the
graph, not by a drop fraction) or relabels (``action=relabel``: the one-hot of the majority hard
label of the point's k nearest *accepted* points, self excluded). What this leaves out of the paper:
the paper runs the filter repeatedly during training on the features of the network being trained
(collecting clean data across epochs); here it runs once, on the fixed strong features, before the
student trains.

Out-of-fold: there is no trained model here, so nothing predicts its own training examples. The
graph uses every transfer point and its own label decides which class subgraph it belongs to (that
is the test: is this label connected to the bulk of its class), but a point never counts as its own
neighbour in the ζ fraction nor votes for its own relabel target.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import W2SError
from . import _filtering as F
from .base import Method

NAME = "topo_filter"


@dataclass
class TopoFilterConfig:
    k: int = 10
    """Neighbours per point of the kNN graph and of the ζ-filtering and relabel votes."""
    zeta: float = 0.5
    """ζ: reject a point of a largest component when fewer than this fraction of its k nearest kept points
    share its hard weak label (0: no ζ-filtering)."""
    action: str = "drop"
    """'drop': remove the rejected points; 'relabel': keep every point, the rejected ones with the one-hot
    majority label of their k nearest accepted points."""

    def __post_init__(self) -> None:
        F.check_int(NAME, "k", self.k, 1)
        if not 0 <= self.zeta <= 1:
            raise W2SError(f"method {NAME!r}: zeta must be in [0, 1], got {self.zeta!r} (--set {NAME}.zeta=0.5)")
        F.check_action(NAME, self.action)


def _unit(x: np.ndarray) -> np.ndarray:
    """Standardized rows scaled to unit norm: Euclidean neighbours == cosine neighbours. (N, C)."""
    z = F.standardize(x)
    n = np.linalg.norm(z, axis=1, keepdims=True)
    return z / np.where(n > 0, n, 1.0)


def knn_graph(u: np.ndarray, k: int):
    """Symmetric kNN adjacency (N, N) scipy CSR of unit rows u (N, C): i ~ j iff j ∈ NN_k(i) or i ∈ NN_k(j)."""
    from scipy.sparse import csr_matrix
    from sklearn.neighbors import NearestNeighbors

    n = len(u)
    kk = min(k, n - 1)
    if kk < 1:
        return csr_matrix((n, n))
    idx = NearestNeighbors(n_neighbors=kk, algorithm="brute").fit(u).kneighbors(return_distance=False)  # (N, k)
    a = csr_matrix((np.ones(idx.size), (np.repeat(np.arange(n), kk), idx.ravel())), shape=(n, n))
    return ((a + a.T) > 0).astype(np.float64)


def largest_components(adj: Any, hard: np.ndarray) -> np.ndarray:
    """(N,) bool: membership of each point in the largest connected component of its class's induced subgraph."""
    from scipy.sparse.csgraph import connected_components

    keep = np.zeros(len(hard), dtype=bool)
    for c in np.unique(hard):
        members = np.flatnonzero(hard == c)
        _, comp = connected_components(adj[members][:, members], directed=False)
        keep[members[comp == np.bincount(comp).argmax()]] = True
    return keep


def _neighbours(u: np.ndarray, among: np.ndarray, k: int) -> list[np.ndarray]:
    """For every row i of u: up to k nearest rows of ``among`` (indices into u), i itself excluded."""
    from sklearn.neighbors import NearestNeighbors

    if len(among) == 0:
        return [np.zeros(0, dtype=int) for _ in range(len(u))]
    kk = min(k + 1, len(among))
    idx = NearestNeighbors(n_neighbors=kk, algorithm="brute").fit(u[among]).kneighbors(u, return_distance=False)
    out = []
    for i, row in enumerate(among[idx]):
        row = row[row != i]
        out.append(row[:k])
    return out


def zeta_keep(u: np.ndarray, hard: np.ndarray, member: np.ndarray, k: int, zeta: float) -> np.ndarray:
    """(N,) bool: member points whose k nearest other members (unit rows u) share their label in a
    fraction >= ζ (a member without other members stays)."""
    among = np.flatnonzero(member)
    keep = member.copy()
    nbrs = _neighbours(u, among, k)
    for i in among:
        if len(nbrs[i]):
            keep[i] = (hard[nbrs[i]] == hard[i]).mean() >= zeta
    return keep


def topo_scores(x: np.ndarray, hard: np.ndarray, num_classes: int, k: int, zeta: float
                ) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """TopoFilter on features x (N, C) with hard labels (N,) -> (rejected (N,) bool, pred (N, K), counts).

    pred_i = mean one-hot hard label of the k nearest accepted points (self excluded); the one-hot of
    the own label when no other point is accepted. counts: points rejected by each step.
    """
    hard = np.asarray(hard)
    u = _unit(x)
    in_lcc = largest_components(knn_graph(u, k), hard)
    accepted = zeta_keep(u, hard, in_lcc, k, zeta)
    onehot = np.eye(num_classes)
    pred = onehot[hard].copy()
    for i, nb in enumerate(_neighbours(u, np.flatnonzero(accepted), k)):
        if len(nb):
            pred[i] = onehot[hard[nb]].mean(0)
    counts = {"rejected_component": int((~in_lcc).sum()), "rejected_zeta": int((in_lcc & ~accepted).sum())}
    return ~accepted, pred, counts


def _select(cfg: TopoFilterConfig, weak: np.ndarray, ctx: Any, pos: np.ndarray):
    x = F.transfer_features(ctx, pos)
    rejected, pred, counts = topo_scores(x, F.hard_labels(weak), weak.shape[1], cfg.k, cfg.zeta)
    keep, targets = F.apply_action(cfg.action, weak, rejected, pred)
    return keep, targets, F.stats(cfg.action, weak, rejected, pred, keep, targets, pos, **counts)


METHOD = Method(
    name=NAME,
    description="TopoFilter: keep each weak class's largest connected component of a kNN graph on the strong model's frozen features, then drop (or relabel) points whose neighbours mostly disagree (ζ).",
    config_cls=TopoFilterConfig,
    select_fn=_select,
    select_uses_context=True,
    kind="select",
    key_fn=F.frozen_key,
    analyze_fn=F.analyze(NAME),
)
