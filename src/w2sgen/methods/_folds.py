"""Out-of-fold splits over groups: the one fold assignment of every out-of-fold method.

The candidates of one question or passage (MultiRC, MC-TACO, the recast multiple-choice tasks) share
a group. A fold model that trained on one candidate must not label another candidate of the same
question, so folds are made of whole groups: for the fold model that labels fold f,
groups(train) ∩ groups(f) = ∅.

Not registered as a method (the module name starts with ``_``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import W2SError


def fold_ids(groups: np.ndarray, folds: int, seed: int, method: str = "k-fold") -> list[np.ndarray]:
    """``folds`` disjoint sorted position folds over the N items with group labels ``groups`` (N,),
    each a union of whole groups.

    Groups are put in a seeded random order, stably sorted by size (largest first), and each goes to
    the fold with the fewest examples so far (ties: the lower fold): fold sizes differ by at most the
    largest group. When every item is its own group this is a seeded permutation dealt round-robin
    (fold sizes as ``np.array_split``). ``method`` names the caller in the error raised when there
    are fewer groups than folds.
    """
    codes, _ = pd.factorize(pd.Series(np.asarray(groups)), sort=False)  # (N,) group index of each item
    n_groups = int(codes.max()) + 1 if len(codes) else 0
    if not 2 <= folds <= n_groups:
        raise W2SError(
            f"method {method!r}: {folds} out-of-fold splits need at least {folds} groups, but the "
            f"{len(codes)} transfer examples form {n_groups} (a fold model must never label a group it "
            f"trained on); use fewer folds (--set {method}.folds={max(2, min(n_groups, folds - 1))}) or "
            "more transfer examples (splits.n_transfer)")
    sizes = np.bincount(codes, minlength=n_groups)  # (G,)
    order = np.random.default_rng([seed, 7919]).permutation(n_groups)
    order = order[np.argsort(-sizes[order], kind="stable")]
    load = np.zeros(folds, dtype=np.int64)
    fold_of = np.empty(n_groups, dtype=np.int64)
    for g in order:
        f = int(np.argmin(load))
        fold_of[g] = f
        load[f] += sizes[g]
    item_fold = fold_of[codes]  # (N,)
    return [np.flatnonzero(item_fold == f) for f in range(folds)]
