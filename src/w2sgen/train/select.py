"""Choosing a stage's head from its grid on val, against a reference that is never test.

The reference is what the stage may know: the val ground truth for floors and ceilings (they
train on ground truth anyway), the val labels of its supervision (the weak labels, or a labels
method's) for students and every stage trained on weak or derived labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import W2SError
from ..metrics import agreement, soft_xent

RULES = ("agreement", "xent")


@dataclass
class Reference:
    """What a stage's heads are scored against on val."""

    probs: np.ndarray
    """(n_val, K) in val split order: one-hot ground truth, or soft supervision labels."""
    source: str
    """What it is, for the record: "ground truth" or "weak labels" (or a labels method's name)."""


def grid_scores(val_probs: np.ndarray, ref: np.ndarray, rule: str) -> list[float]:
    """The val score of each head: agreement (fraction of rows whose argmax matches the reference's)
    or xent (cross-entropy to the reference's soft labels). val_probs (C, n, K), ref (n, K) -> (C,)."""
    if rule == "agreement":
        return [agreement(p, ref) for p in val_probs]
    if rule == "xent":
        return [soft_xent(p, ref) for p in val_probs]
    raise W2SError(f"config field 'probe.select': {rule!r}; use {', '.join(RULES)}")


def choose(scores: list[float], weight_decays: list[float], rule: str, usable: list[bool] | None = None) -> int:
    """Index of the best head: highest agreement or lowest xent; among equal scores the largest weight
    decay (the most regularised head); NaN scores and unusable heads never win unless nothing else is left
    (then the first usable head)."""
    s = np.asarray(scores, dtype=np.float64)
    s = s if rule == "agreement" else -s
    ok = np.isfinite(s) & (np.ones(len(s), bool) if usable is None else np.asarray(usable, bool))
    if not ok.any():
        good = [i for i, u in enumerate(usable or [True] * len(s)) if u]
        return good[0] if good else 0
    best = s[ok].max()
    tied = [i for i in range(len(s)) if ok[i] and s[i] == best]
    return max(tied, key=lambda i: (weight_decays[i], -i))


def grid_record(weight_decays: list[float], rule: str, ref: Reference | None, scores: list[float] | None,
                chosen: int) -> dict[str, Any]:
    """The ``grid`` entry of a stage's train.json."""
    return {"weight_decay": list(weight_decays), "select": rule, "reference": None if ref is None else ref.source,
            "val_scores": scores, "chosen": chosen, "chosen_weight_decay": weight_decays[chosen]}
