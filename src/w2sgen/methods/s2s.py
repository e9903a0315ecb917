"""``s2s``: strong-to-strong iterations — the student relabels the transfer set out-of-fold and a
fresh strong model learns from its labels, ``iterations`` times."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import W2SError
from ..metrics import accuracy
from .base import Method


@dataclass
class S2SConfig:
    iterations: int = 1
    """Relabelling rounds; 0 is the plain student."""
    folds: int = 5
    """K of the K-fold out-of-fold relabelling (each round trains K strong models)."""

    def __post_init__(self) -> None:
        if isinstance(self.iterations, bool) or not isinstance(self.iterations, int) or self.iterations < 0:
            raise W2SError(f"method 's2s': iterations must be an integer >= 0, got {self.iterations!r}")
        if isinstance(self.folds, bool) or not isinstance(self.folds, int) or self.folds < 2:
            raise W2SError(f"method 's2s': folds must be an integer >= 2, got {self.folds!r}")


def flipped(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of examples whose hard label changed: mean_i 1[argmax_k a_ik ≠ argmax_k b_ik]. a, b (n, K)."""
    a, b = np.asarray(a), np.asarray(b)
    return float((a.argmax(-1) != b.argmax(-1)).mean()) if len(a) else 0.0


def _train(cfg: S2SConfig, ctx: Any, plan: Any):
    """Labels y_0 = the plan's targets (weak). Round t: K strong fold models, each trained on the
    other folds' y_{t−1} with the student's loss, label their held-out fold: y_t (out-of-fold).
    A fresh strong model trained on y_t is round t's student; the last round's is stored as the student."""
    if cfg.iterations == 0:
        return ctx.train_student(plan)
    loss = plan.method.loss
    inputs = {"loss": loss.method.name, "loss_settings": loss.method.settings(loss.cfg)}
    weak = np.asarray(plan.target, dtype=np.float32)
    labels = weak
    rounds = []
    for t in range(1, cfg.iterations + 1):
        new, ev = ctx.oof_eval("s2s", ctx.strong, plan.rows, labels, plan.loss_fn, cfg.folds,
                               inputs=dict(inputs, role="relabel"))
        # the round's labels and predictions go to arrays.npz; the protocol scores them (analyze)
        r: dict[str, Any] = {"iteration": t, "flipped_vs_weak": flipped(new, weak),
                             "flipped_vs_previous": flipped(new, labels), "labels": new,
                             "relabellers_test": ev["test"]}
        labels = new
        if t < cfg.iterations:  # round t's student (the last round's is the stored student itself)
            st = ctx.train("s2s", ctx.strong, plan.rows, labels, plan.loss_fn, inputs=dict(inputs, role="student"))
            r["student_test"] = st.probs("test", ctx.ids("test"))
        rounds.append(r)
    positions = np.searchsorted(ctx.rows("transfer"), plan.rows)  # the training rows' places in transfer
    final = dataclasses.replace(plan, target=labels, info={**plan.info, "s2s": rounds, "s2s_positions": positions})
    return ctx.train_student(final)


def _analyze(cfg: S2SConfig, student: Any, truth: dict[str, np.ndarray], ctx: Any) -> dict[str, Any] | None:
    """Per round: accuracy of the new transfer labels (on the student's training rows), of the
    relabellers on test, and of the round's student on test."""
    from .context import split_accuracy

    a = student.arrays
    rounds = student.info.get("s2s")
    if not rounds:
        return None
    pos = a.get("s2s_positions")
    y = truth["transfer"] if pos is None else truth["transfer"][pos]
    out = []
    for i, r in enumerate(rounds):
        lab = a.get(f"s2s/{i}/labels")
        out.append({"iteration": r["iteration"],
                    "label_acc": accuracy(y, lab) if lab is not None and len(lab) == len(y) else None,
                    "relabellers_test_acc": split_accuracy(truth, a.get(f"s2s/{i}/relabellers_test")),
                    "test_acc": split_accuracy(truth, a.get(f"s2s/{i}/student_test"))})
    return {"rounds": out}


METHOD = Method(
    name="s2s",
    description="Strong-to-strong: the student relabels transfer out-of-fold and a fresh strong model trains on it, repeated.",
    config_cls=S2SConfig,
    kind="train",
    train_fn=_train,
    analyze_fn=_analyze,
)
