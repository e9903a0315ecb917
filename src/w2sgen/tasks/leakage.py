"""Leakage audit: can a shallow classifier on surface features predict a task's labels?

Features, for every task: length (characters, words, lines, mean word length) and format
(counts of digits, capitals, punctuation marks, non-ASCII characters, question marks, quotes,
and whether the text ends with punctuation). For question-answer and multiple-choice tasks
(examples with an ``answer``), also a bag of words of the answer alone, without the question.

Two shallow models are scored by 5-fold cross-validation over groups (a group's examples stay in
one fold): a depth-4 decision tree on the surface features, and (when answers exist) a logistic
regression on surface features plus the answer's bag of words. The audit's accuracy is the better
of the two, pooled over the held-out folds. A task passes when that accuracy is at most the
majority rate (the frequency of the most common label) + 3 points. A task above that needs a format fix, or, if the
dataset itself carries the artifact, a :class:`~w2sgen.tasks.base.Leakage` note with its score.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .base import TaskData

MARGIN = 0.03
PUNCT = ".,;:!?\"'()-*[]/"


@dataclass(frozen=True)
class AuditResult:
    """What the audit found on one task."""

    task: str
    n: int
    accuracy: float
    """Cross-validated accuracy of the better shallow model."""
    majority: float
    """The frequency of the most common label among the audited examples."""
    tree_accuracy: float
    bow_accuracy: float | None
    """Logistic regression with the answer's bag of words (None: the task has no answers)."""

    @property
    def passed(self) -> bool:
        return self.accuracy <= self.majority + MARGIN

    def __str__(self) -> str:
        bow = f", answer words {self.bow_accuracy:.3f}" if self.bow_accuracy is not None else ""
        return (f"{self.task}: audit {self.accuracy:.3f} vs majority {self.majority:.3f} "
                f"(surface tree {self.tree_accuracy:.3f}{bow}; n={self.n}) "
                f"{'pass' if self.passed else 'ABOVE majority + 3 points'}")


def surface_features(texts: pd.Series) -> np.ndarray:
    """Length and format features, one row per text."""
    s = texts.astype(str)
    words = s.str.split()
    cols = {
        "chars": s.str.len(),
        "words": words.str.len(),
        "lines": s.str.count("\n") + 1,
        "mean_word": s.str.len() / words.str.len().clip(lower=1),
        "digits": s.str.count(r"\d"),
        "upper": s.str.count(r"[A-Z]"),
        "non_ascii": s.str.count(r"[^\x00-\x7f]"),
        "ends_punct": s.str.rstrip().str[-1:].isin(list(".!?")).astype(int),
    }
    for ch in PUNCT:
        cols[f"p{ord(ch)}"] = s.str.count(f"\\{ch}" if ch in "\\.^$*+?()[]{}|/-" else ch)
    return np.column_stack([np.asarray(v, dtype=np.float64) for v in cols.values()])


def _unit(groups: pd.Series, salt: str) -> np.ndarray:
    """A number in [0, 1) per row from a hash of its group (group-level, seed-free)."""
    key = groups.astype(str).map(lambda g: int.from_bytes(hashlib.sha256(f"{salt}|{g}".encode()).digest()[:8], "big"))
    return key.to_numpy(dtype=np.float64) / 2**64


def audit(task: TaskData, max_examples: int = 8000, folds: int = 5) -> AuditResult:
    """Run the audit on a loaded task (subsampled by group to about ``max_examples`` for speed)."""
    from scipy import sparse
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    frame = task.frame
    if len(frame) > max_examples:
        frame = frame[_unit(frame["group"], "subsample") < max_examples / len(frame)]
    y = frame["label"].to_numpy()
    fold = np.minimum((_unit(frame["group"], "fold") * folds).astype(int), folds - 1)
    if len(np.unique(fold)) < 2:  # a single group: alternate rows instead
        fold = np.arange(len(frame)) % folds
    majority = float(np.bincount(y).max() / len(y))
    x = surface_features(frame["text"])
    answers = frame["answer"] if "answer" in frame.columns and frame["answer"].notna().all() else None
    tree_pred = np.empty_like(y)
    bow_pred = np.empty_like(y) if answers is not None else None
    for k in np.unique(fold):
        test, train = fold == k, fold != k
        if len(np.unique(y[train])) < 2:
            tree_pred[test] = y[train][0]
            if bow_pred is not None:
                bow_pred[test] = y[train][0]
            continue
        tree = DecisionTreeClassifier(max_depth=4, min_samples_leaf=20, random_state=0).fit(x[train], y[train])
        tree_pred[test] = tree.predict(x[test])
        if bow_pred is not None and answers is not None:
            vec = CountVectorizer(binary=True, min_df=2, token_pattern=r"(?u)\b\w+\b")
            try:
                vec.fit(answers[train])
            except ValueError:  # no word occurs twice
                bow_pred[test] = tree_pred[test]
                continue
            scaler = StandardScaler().fit(x[train])
            xa = sparse.hstack([sparse.csr_matrix(scaler.transform(x)), vec.transform(answers)]).tocsr()
            lr = LogisticRegression(C=0.5, solver="liblinear").fit(xa[train], y[train])
            bow_pred[test] = lr.predict(xa[test])
    tree_acc = float((tree_pred == y).mean())
    bow_acc = float((bow_pred == y).mean()) if bow_pred is not None else None
    acc = max(tree_acc, bow_acc if bow_acc is not None else 0.0)
    return AuditResult(task.name, len(frame), acc, majority, tree_acc, bow_acc)
