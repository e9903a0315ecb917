"""Scoring written answers: the checker turns each stage's answers into per-example correctness, which
is what accuracy, the intervals, the flags and every aggregate use.

A stage's prediction table for the statistics (``predictions/<stage>.parquet``) holds, per example,
prob_0 = 1 − right and prob_1 = right, with every example's label 1 (``labels.parquet``): then
argmax = label exactly when the answer is right, so :mod:`w2sgen.aggregate` reads generation runs
as it reads classification ones. (These are not probabilities a model gave: AUROC and ECE are not
defined for them, and generation runs report neither.)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .checkers import Checker, exact_match


def right(checker: Checker, outputs: Sequence[str], gold: Sequence[str]) -> np.ndarray:
    """(n,) bool: checker(output_i, gold_i)."""
    return np.array([bool(checker(o, g)) for o, g in zip(outputs, gold, strict=True)], dtype=bool)


def prediction_frame(ids: dict[str, list[str]], correct: dict[str, np.ndarray]) -> pd.DataFrame:
    """id, split, prob_0 = 1 − right, prob_1 = right (float32) for the splits in ``correct``."""
    parts = [pd.DataFrame({"id": ids[s], "split": s, "prob_0": (~c).astype(np.float32), "prob_1": c.astype(np.float32)})
             for s, c in correct.items()]
    return pd.concat(parts, ignore_index=True)


def as_probs(correct: np.ndarray) -> np.ndarray:
    """(n, 2) one-hot of correctness: [1 − right, right]."""
    c = np.asarray(correct, dtype=np.float32)
    return np.stack([1 - c, c], axis=1)


def student_effects(weak_right: np.ndarray, student_right: np.ndarray, weak_texts: Sequence[str],
                    student_texts: Sequence[str], checker: Checker = exact_match) -> dict[str, float]:
    """What the student did with the weak answers on one split, with the names of the classification
    diagnostic (``stats.imitation``), agreement being the task's checker accepting the student's answer
    against the weak answer as the gold one (exact: the same after normalisation; numeric: the same
    last number, none in either counting as disagreement):

    agreement = P(checker(student, weak)); agreement_weak_right / _wrong = the same given the weak
    answer is right / wrong (copying the weak model's mistakes); fixed = P(student right ∧ weak wrong)
    (weak answers the student corrected); fixed_of_wrong = P(student right | weak wrong); broken =
    P(student wrong ∧ weak right).
    """
    w, s = np.asarray(weak_right, bool), np.asarray(student_right, bool)
    same = right(checker, student_texts, weak_texts)

    def mean(x: np.ndarray) -> float:
        return float(x.mean()) if len(x) else float("nan")

    return {"agreement": mean(same), "agreement_weak_right": mean(same[w]), "agreement_weak_wrong": mean(same[~w]),
            "fixed": mean(s & ~w), "fixed_of_wrong": mean(s[~w]), "broken": mean(~s & w)}
