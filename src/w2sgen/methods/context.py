"""What a method sees of its run: ``StudentContext``, with helpers that train cached stages.

Methods that need more than the weak labels (filters read the strong model's features, ensembles
train more weak floors, bootstrap and s2s train out-of-fold models, early_stop keeps curves) get
a context. Every model it trains is a stage of the stage cache, keyed by all it depends on, so a
rerun or another method that needs the same model trains nothing.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..config import RunConfig
from ..protocol import (
    ModelSide,
    StageInputs,
    StageResult,
    StudentPlan,
    finetune_stage,
    ids_hash,
    side_for,
    train_stage,
)
from ..store.cache import StageCache
from ..tasks.base import TaskData
from ..tasks.splits import SPLITS, Splits
from ..train.select import Reference


@dataclass
class StudentContext:
    """One seed's run as the methods see it (after the weak floor and the ceiling are trained)."""

    cfg: RunConfig
    seed: int
    task: TaskData
    splits: Splits
    keys: StageInputs
    cache: StageCache
    strong: ModelSide
    weak: ModelSide | None
    floor: StageResult
    """The weak supervisor's predictions on transfer, val and test (the floor, or given labels)."""
    ceiling: StageResult
    """The strong ceiling's predictions on transfer, val and test."""
    _sides: dict[str, ModelSide] = field(default_factory=dict)

    # ----------------------------------------------------------------- data

    @property
    def labels(self) -> np.ndarray:
        """Ground-truth labels of every example of the task (N,) — for ceilings and analysis only."""
        return self.task.frame["label"].to_numpy()

    @property
    def num_classes(self) -> int:
        return self.task.num_classes

    def rows(self, split: str) -> np.ndarray:
        """Frame rows of ``split`` in split order."""
        return self.splits[split]

    def ids(self, split: str) -> list[str]:
        return self.keys.split_ids[split]

    def texts(self, rows: np.ndarray) -> list[str]:
        t = self.task.frame["text"]
        return [t.iloc[int(i)] for i in rows]

    def onehot(self, rows: np.ndarray) -> np.ndarray:
        """Ground truth of ``rows`` as (n, K) one-hot targets."""
        return np.eye(self.num_classes, dtype=np.float32)[self.labels[rows]]

    def weak_probs(self, split: str) -> np.ndarray:
        """The weak supervisor's probabilities on ``split`` (n, K)."""
        p = self.floor.probs(split, self.ids(split))
        if p is None:
            from ..errors import W2SError

            raise W2SError(f"the weak labels do not cover the {split} split; this method needs them there "
                           "(given --weak-labels files must include val and test ids)")
        return p

    def reference(self, plan: StudentPlan | None = None) -> Reference:
        """The val labels that heads trained on weak or derived labels are chosen by: those of the
        plan's supervision (a ``labels`` method's), else the weak labels. Never ground truth."""
        sup = None if plan is None else plan.supervision
        if sup is None or sup is self.floor:
            return Reference(self.weak_probs("val"), "weak labels")
        p = sup.probs("val", self.ids("val"))
        if p is None:
            from ..errors import W2SError

            raise W2SError(f"the supervision {sup.name!r} does not cover the val split; heads trained on it are "
                           "chosen by agreement with it there")
        return Reference(p, f"{sup.name} labels")

    def metrics(self, st: StageResult) -> dict[str, Any]:
        """Accuracy and AUROC of a stage's predictions on val and test."""
        from .. import metrics

        out = {}
        for s in ("val", "test"):
            p = st.probs(s, self.ids(s))
            if p is not None:
                out[s] = metrics.summarize(self.labels[self.rows(s)], p)
        return out

    # ----------------------------------------------------------------- models

    def side(self, model: str, layer: int | None = None, *, frozen: bool = False) -> ModelSide:
        """A backbone of the run's kind for ``model`` (short name, hub id or directory).

        ``frozen``: a probe-mode side (cached activations) whatever the run's mode — filters read
        features of the frozen strong model in finetune runs too.
        """
        from ..models import resolve_model

        cfg = self.cfg if not frozen or self.cfg.mode == "probe" else dataclasses.replace(self.cfg, mode="probe")
        k = f"{model}|{layer}|{cfg.mode}"
        if k not in self._sides:
            if model == self.strong.model.name and layer is None and cfg.mode == self.cfg.mode:
                self._sides[k] = self.strong
            else:
                s = side_for(resolve_model(model), layer, cfg, self.cache.root)
                s.texts_needed = self.texts(np.concatenate([self.rows(x) for x in SPLITS]))
                self._sides[k] = s
        return self._sides[k]

    def frozen_strong(self) -> ModelSide:
        """The strong model as a frozen feature extractor (== ``strong`` in probe mode)."""
        if self.cfg.mode == "probe":
            return self.strong
        return self.side(self.strong.model.name, self.strong.layer if self.cfg.embed.strong_layer is not None
                         else None, frozen=True)

    def features(self, side: ModelSide, rows: np.ndarray) -> np.ndarray:
        """Cached activations (n, C) of ``rows`` from a probe-mode side."""
        return side.features(self.texts(rows), desc=f"embed ({side.model.name})")

    # ----------------------------------------------------------------- training

    def train(self, stage: str, side: ModelSide, rows: np.ndarray, target: np.ndarray, loss_fn: Any,
              inputs: dict[str, Any] | None = None, seed: int | None = None,
              extra_info: dict[str, Any] | None = None, ref: Reference | None = None) -> StageResult:
        """Train (cached) a head (probe mode) or finetune (finetune mode) ``side`` on ``rows`` with
        ``target`` (n, K) and predict transfer, val and test.

        The key holds the run's base inputs, ``stage``, the side, the rows' ids and targets, the
        seed and ``inputs`` (what else decides the result: the loss's settings, ...). ``ref``: the
        val labels probe heads are chosen by (default :meth:`reference`, the weak labels).
        """
        seed = self.seed if seed is None else seed
        ids = self.task.frame["id"].to_numpy()[rows]
        key = dict(self.keys.base, stage=stage, seed=seed, features=side.key, train=ids_hash(ids, target),
                   **(inputs or {}))
        probe = side.cfg.mode == "probe"
        fn = train_stage if probe else finetune_stage
        kw = {"ref": ref or self.reference()} if probe else {}
        return fn(self.cache, stage, key, side, self.task, self.splits, np.asarray(target, dtype=np.float32),
                  loss_fn, side.cfg, seed, train_idx=np.asarray(rows), extra_info=extra_info, **kw)

    def train_student(self, plan: StudentPlan, side: ModelSide | None = None) -> StageResult:
        """The default student: ``side`` (the strong model) trained on the plan's rows and targets with
        its loss, stored under the plan's stage key (probe heads chosen by the plan's supervision on val)."""
        side = side or self.strong
        probe = side.cfg.mode == "probe"
        fn = train_stage if probe else finetune_stage
        kw = {"ref": self.reference(plan)} if probe else {}
        return fn(self.cache, "student", plan.inputs, side, self.task, self.splits, plan.target,
                  plan.loss_fn, side.cfg, self.seed, train_idx=plan.rows, extra_info=plan.info, **kw)

    def floor_of(self, side: ModelSide, seed: int | None = None) -> StageResult:
        """A weak floor (ground truth on weak_train) of ``side`` with ``seed``: the run's own floor when
        both are the run's, else another cached stage of the same kind."""
        from ..protocol import _xent_loss

        seed = self.seed if seed is None else seed
        inputs = dict(self.keys.floor(side.key), seed=seed)
        rows = self.rows("weak_train")
        probe = side.cfg.mode == "probe"
        fn = train_stage if probe else finetune_stage
        kw = {"ref": Reference(self.onehot(self.rows("val")), "ground truth")} if probe else {}  # as run_seed's
        return fn(self.cache, "floor", inputs, side, self.task, self.splits, self.onehot(rows), _xent_loss(),
                  side.cfg, seed, **kw)

    def folds(self, n: int, k: int, seed: int | None = None) -> list[np.ndarray]:
        """``k`` disjoint position folds over ``n`` items (a seeded permutation split evenly)."""
        from ..errors import W2SError

        if not 2 <= k <= n:
            raise W2SError(f"k-fold: need 2 <= folds <= {n} examples, got folds={k}")
        rng = np.random.default_rng([self.seed if seed is None else seed, 7919])
        return [np.sort(f) for f in np.array_split(rng.permutation(n), k)]

    def oof(self, stage: str, side: ModelSide, rows: np.ndarray, target: np.ndarray, loss_fn: Any, k: int,
            inputs: dict[str, Any] | None = None, seed: int | None = None) -> np.ndarray:
        """Out-of-fold predictions (n, K) on ``rows`` (transfer rows): for each of ``k`` folds a model
        trained on the other folds predicts it, so no example is labelled by a model that saw it."""
        return self.oof_eval(stage, side, rows, target, loss_fn, k, inputs, seed)[0]

    def oof_eval(self, stage: str, side: ModelSide, rows: np.ndarray, target: np.ndarray, loss_fn: Any, k: int,
                 inputs: dict[str, Any] | None = None, seed: int | None = None, ref: Reference | None = None
                 ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """``oof`` (the same cached fold stages), and also the fold models' mean probabilities on val
        and test: (oof (n, K) on ``rows``, {"val": (n_val, K), "test": (n_test, K)}), where
        mean_s = (1/k) Σ_f p_f(s) over the ``k`` fold models. ``ref``: as in :meth:`train`."""
        transfer = self.rows("transfer")
        pos = {int(r): i for i, r in enumerate(transfer)}
        if any(int(r) not in pos for r in rows):
            raise ValueError("oof: rows must be transfer rows (the stages predict transfer, val and test)")
        rows = np.asarray(rows)
        target = np.asarray(target, dtype=np.float32)
        out = np.zeros((len(rows), self.num_classes), dtype=np.float32)
        evals = {s: np.zeros((len(self.ids(s)), self.num_classes), dtype=np.float64) for s in ("val", "test")}
        t_ids = self.ids("transfer")
        for f, held in enumerate(self.folds(len(rows), k, seed)):
            train = np.setdiff1d(np.arange(len(rows)), held)
            st = self.train(stage, side, rows[train], target[train], loss_fn,
                            inputs=dict(inputs or {}, fold=f, folds=k), seed=seed, ref=ref)
            p = st.probs("transfer", t_ids)  # (n_transfer, K)
            assert p is not None
            out[held] = p[[pos[int(r)] for r in rows[held]]]
            for s in evals:
                q = st.probs(s, self.ids(s))
                assert q is not None
                evals[s] += q
        return out, {s: (v / k).astype(np.float32) for s, v in evals.items()}

    def probs_stage(self, name: str, probs: dict[str, np.ndarray], info: dict[str, Any] | None = None,
                    key: str = "") -> StageResult:
        """An in-memory StageResult (not cached) of ``probs``: split -> (n, K) in the order of
        ``self.ids(split)``, for transfer, val and test (e.g. a labels method's new supervision)."""
        from ..protocol import PREDICT_SPLITS, predictions_frame

        frame = predictions_frame({s: self.ids(s) for s in PREDICT_SPLITS}, probs)
        return StageResult(name, frame, dict(info or {}), False, key, 0.0)

    def side_under(self, cfg: RunConfig, model: str | None = None, layer: int | None = None) -> ModelSide:
        """A side of ``model`` (short name, hub id or directory; default the strong model, at the
        run's strong layer) built under another run config ``cfg``, e.g. a finetune-mode side in a
        probe run. Stages trained on it must add ``mode_inputs(cfg)`` to their keys: the run's base
        inputs name the run's own mode and training config."""
        from ..models import resolve_model

        if model is None:
            model, layer = self.strong.model.name, cfg.embed.strong_layer if layer is None else layer
        s = side_for(resolve_model(model), layer, cfg, self.cache.root)
        s.texts_needed = self.texts(np.concatenate([self.rows(x) for x in SPLITS]))
        return s

    @staticmethod
    def mode_inputs(cfg: RunConfig) -> dict[str, Any]:
        """The stage-key entries that name a training mode and its config (see ``side_under``)."""
        from ..protocol import _train_cfg

        return {"mode": cfg.mode, "train_cfg": _train_cfg(cfg)}


def split_accuracy(ctx: Any, probs: np.ndarray | None, split: str = "test") -> float | None:
    """Ground-truth accuracy of ``probs`` (n, K) on ``split`` of ``ctx``'s run, for analysis records
    (never for selection); None when there are no predictions."""
    from ..metrics import accuracy

    return None if probs is None else accuracy(ctx.labels[ctx.rows(split)], np.asarray(probs))
