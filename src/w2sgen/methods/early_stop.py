"""``early_stop``: keep the student checkpoint that agrees best with the weak labels on val.

Burns et al. (2023, §4.3.2 and appendix) show that students overfit their weak supervisor late in
training, and report results with early stopping. Here the student is evaluated every ``every``
epochs (probe mode) or every ``eval_steps`` optimizer steps (finetune mode) on transfer, val and
test; the kept checkpoint is the one whose val predictions best match the *weak* labels on val
(what a real user, who has no ground truth, can do). The method never sees ground truth: it keeps
each evaluation point's val and test predictions (the stage's arrays.npz), and the protocol, after
the method has returned, records the checkpoint with the best ground-truth val accuracy (the
oracle), the test accuracy at the kept, oracle and last points and the whole accuracy curve
(``students.<name>.analysis.early_stop``). It composes with any loss (``logconf+early_stop``);
alone it trains with ``xent``. In probe mode it trains with minibatch Adam whatever
``probe.solver`` says (a full-batch solver has no epochs to stop at); the grid's head is chosen
first, as in every stage, by its final predictions' agreement with the supervision on val, then
the checkpoint along that head's curve.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import W2SError
from ..metrics import agreement, soft_xent
from .base import Method

SELECT = ("weak_agreement", "weak_xent")


@dataclass
class EarlyStopConfig:
    every: int = 1
    """Probe mode: evaluate the head every N epochs (and after the last one)."""
    eval_steps: int | None = None
    """Finetune mode: evaluate every N optimizer steps (and at the end); None: about 10 evaluations
    (max(1, round(total_steps / 10))). Each evaluation predicts transfer, val and test."""
    select: str = "weak_agreement"
    """How the kept checkpoint is chosen on val: weak_agreement (highest fraction of val examples
    whose argmax matches the weak label's) or weak_xent (lowest cross-entropy to the weak soft
    labels). Ties go to the earliest checkpoint (less time to imitate the supervisor's errors)."""

    def __post_init__(self) -> None:
        if not isinstance(self.every, int) or self.every < 1:
            raise W2SError(f"method 'early_stop': every must be an integer >= 1 (epochs), got {self.every!r}")
        if self.eval_steps is not None and (not isinstance(self.eval_steps, int) or self.eval_steps < 1):
            raise W2SError(f"method 'early_stop': eval_steps must be an integer >= 1 or None (about 10 "
                           f"evaluations), got {self.eval_steps!r}")
        if self.select not in SELECT:
            raise W2SError(f"method 'early_stop': select must be one of {', '.join(SELECT)}, got {self.select!r}")


# --------------------------------------------------------------------------- core (pure)


def select_checkpoint(scores: Sequence[float], higher_is_better: bool = True) -> int:
    """Index of the best score, the earliest on ties; NaN scores never win unless all are NaN (then 0).

    ``scores`` (T,) are the checkpoints' validation scores in training order.
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 1 or len(s) == 0:
        raise ValueError(f"select_checkpoint: need a non-empty 1-d list of scores, got shape {s.shape}")
    s = s if higher_is_better else -s
    s = np.where(np.isnan(s), -np.inf, s)
    return int(np.argmax(s))  # argmax returns the first maximum


def eval_epochs(epochs: int, every: int) -> list[int]:
    """Epochs (counted from 1) after which the head is evaluated: multiples of ``every`` and the last."""
    return [e for e in range(1, epochs + 1) if e % every == 0 or e == epochs]


def default_eval_steps(total: int) -> int:
    """About 10 evaluations over ``total`` optimizer steps: max(1, round(total / 10))."""
    return max(1, round(total / 10))


def weak_curve(val: Sequence[np.ndarray], weak_val: np.ndarray) -> list[dict[str, float]]:
    """Per checkpoint: val agreement and cross-entropy with the weak labels (no ground truth).

    ``val[t]`` (n_val, K) is checkpoint t's val probabilities; ``weak_val`` (n_val, K) the weak labels.
    """
    return [{"val_weak_agreement": agreement(v, weak_val), "val_weak_xent": soft_xent(v, weak_val)} for v in val]


def truth_curve(val: Sequence[np.ndarray], test: Sequence[np.ndarray], y_val: np.ndarray,
                y_test: np.ndarray) -> list[dict[str, float]]:
    """Per checkpoint: ground-truth val and test accuracy (the protocol's analysis, never selection)."""
    from ..metrics import accuracy

    return [{"val_acc": accuracy(y_val, v), "test_acc": accuracy(y_test, t)} for v, t in zip(val, test)]


def choose(curve: list[dict[str, float]], select: str) -> int:
    """The index kept by ``select`` from the weak-label scores of ``curve`` (see :func:`weak_curve`)."""
    if select == "weak_agreement":
        return select_checkpoint([c["val_weak_agreement"] for c in curve])
    if select == "weak_xent":
        return select_checkpoint([c["val_weak_xent"] for c in curve], higher_is_better=False)
    raise ValueError(f"unknown select rule {select!r}")


# --------------------------------------------------------------------------- training


def _record(cfg: EarlyStopConfig, points: list[dict[str, Any]], curve: list[dict[str, float]], kept: int,
            unit: str, val: Sequence[np.ndarray], test: Sequence[np.ndarray]) -> dict[str, Any]:
    """train.json's ``early_stop``: the weak-label curve, the kept point, and each point's val and
    test predictions (``probs``, to arrays.npz) for the protocol's ground-truth analysis."""
    full = [dict(p, **c) for p, c in zip(points, curve)]
    return {"select": cfg.select, "ties": "earliest", "unit": unit, "n_points": len(full),
            "selected": dict(full[kept], index=kept), "last": dict(full[-1], index=len(full) - 1), "curve": full,
            "probs": {"val": np.stack(val).astype(np.float32), "test": np.stack(test).astype(np.float32)}}


def _analyze(cfg: EarlyStopConfig, student: Any, truth: dict[str, np.ndarray], ctx: Any) -> dict[str, Any] | None:
    """The oracle checkpoint (best ground-truth val accuracy), the test accuracy at the kept, oracle
    and last points, and the accuracy curve: how much early stopping on weak agreement recovers."""
    a = student.arrays
    es = student.info.get("early_stop")
    if not es or "early_stop/probs/val" not in a:
        return None
    acc = truth_curve(list(a["early_stop/probs/val"]), list(a["early_stop/probs/test"]), truth["val"], truth["test"])
    oracle = select_checkpoint([c["val_acc"] for c in acc])
    kept, last = es["selected"]["index"], len(acc) - 1
    points = [{k: v for k, v in p.items() if k in ("epoch", "step")} for p in es["curve"]]
    return {"oracle": dict(points[oracle], index=oracle, **acc[oracle]),
            "selected": dict(points[kept], index=kept, **acc[kept]),
            "last": dict(points[last], index=last, **acc[last]),
            "curve": [dict(p, **c) for p, c in zip(points, acc)]}


def _train(cfg: EarlyStopConfig, ctx: Any, plan: Any):
    from ..protocol import PREDICT_SPLITS, _save_stage, load_result

    side = ctx.strong
    ref = ctx.reference(plan)  # the supervision's labels on val (a labels part's, else the weak floor's)
    weak_val = ref.probs
    inputs = plan.inputs  # holds the weak labels on val (run_student), from which the supervision's follow
    t0 = time.time()

    if side.cfg.mode == "probe":
        from ..train.probe import Heads, predict_heads, train_heads, train_info
        from ..train.select import choose as choose_head
        from ..train.select import grid_record, grid_scores

        def build(d: Path) -> None:
            pcfg = side.cfg.probe
            x = ctx.features(side, plan.rows)  # (n, D)
            feats = {s: ctx.features(side, ctx.rows(s)) for s in PREDICT_SPLITS}
            want = set(eval_epochs(pcfg.epochs, cfg.every))
            points: list[dict[str, Any]] = []
            probs: list[dict[str, np.ndarray]] = []  # per point: split -> (C heads, n, K)
            states: list[dict[str, Any]] = []

            def on_epoch(epoch: int, step: int, heads) -> None:
                if epoch in want:
                    points.append({"epoch": epoch, "step": step})
                    probs.append({s: predict_heads(heads, feats[s]) for s in PREDICT_SPLITS})
                    states.append({k: v.detach().clone() for k, v in heads.state_dict().items()})

            # minibatch epochs to watch; the grid's head is chosen as every stage's is, by its final val
            # predictions against the supervision, then the checkpoint along that head's curve
            res = train_heads(x, plan.target, plan.loss_fn, pcfg, ctx.seed, desc=f"student ({side.model.name})",
                              on_epoch=on_epoch)
            scores = grid_scores(probs[-1]["val"], weak_val, pcfg.select)
            c = choose_head(scores, res.weight_decays, pcfg.select, res.usable)
            val, test = [p["val"][c] for p in probs], [p["test"][c] for p in probs]
            curve = weak_curve(val, weak_val)
            kept = choose(curve, cfg.select)
            heads = Heads(len(res.weight_decays), x.shape[1], ctx.num_classes, pcfg.head, pcfg.hidden)
            heads.load_state_dict(states[kept])
            _save_stage(d, ctx.task, ctx.splits, {s: v[c] for s, v in probs[kept].items()},
                        {"head.safetensors": heads.head(c).state_dict()},
                        {**train_info(res, c), "grid": grid_record(res.weight_decays, pcfg.select, ref, scores, c),
                         "train_wall_s": time.time() - t0, **plan.info,
                         "early_stop": _record(cfg, points, curve, kept, "epoch", val, test)})

        entry, hit = ctx.cache.get_or_build("student", inputs, build)
    else:
        from ..protocol import finetune_stage
        from ..train.finetune import total_steps

        every = cfg.eval_steps or default_eval_steps(total_steps(len(plan.rows), side.cfg.finetune))

        def pick(res):
            if not res.curve:
                raise RuntimeError("early_stop: finetune returned no evaluation curve")
            points = [{"step": c["step"]} for c in res.curve]
            val, test = [c["probs"]["val"] for c in res.curve], [c["probs"]["test"] for c in res.curve]
            curve = weak_curve(val, weak_val)
            kept = choose(curve, cfg.select)
            return res.curve[kept]["probs"], {
                "eval_steps": every, "weights": "not stored (the kept checkpoint's weights are not kept by finetune)",
                "early_stop": _record(cfg, points, curve, kept, "step", val, test)}

        return finetune_stage(ctx.cache, "student", inputs, side, ctx.task, ctx.splits, plan.target,
                              plan.loss_fn, side.cfg, ctx.seed, train_idx=plan.rows, extra_info=plan.info,
                              eval_every=every, pick=pick)
    return load_result("student", entry, hit, t0)


METHOD = Method(
    name="early_stop",
    description="Evaluate the student during training and keep the checkpoint agreeing best with the weak labels on val (oracle choice recorded).",
    config_cls=EarlyStopConfig,
    kind="train",
    train_fn=_train,
    analyze_fn=_analyze,
)
