"""What a method sees of its run: ``StudentContext``, with helpers that train cached stages.

Methods that need more than the weak labels (filters read the strong model's features, ensembles
train more weak floors, bootstrap and s2s train out-of-fold models, early_stop keeps curves) get
a context. Every model it trains is a stage of the stage cache, keyed by all it depends on, so a
rerun or another method that needs the same model trains nothing.

The label firewall: a method's context (``for_method``) holds no ground truth of transfer, val or
test, directly or in disguise. ``ctx.labels``, ``ctx.metrics``, ``ctx.ceiling``, ``ctx.onehot`` of
rows outside weak_train, ``ctx.keys.labels`` / ``ctx.keys.ceiling``, the task frame's label column
and ceiling entries of the stage cache all raise a W2SError naming the method and what it tried to
read; the attempt is also recorded, so the run fails after the hook returns even if the method
caught the error. weak_train's ground truth stays readable (``ctx.weak_train_labels()``): methods
that train more weak supervisors need it. The threat model is a method that reads ground truth by
mistake, not hostile code. Methods that declare ``uses_ground_truth`` get the unguarded context.
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
    """The strong ceiling's predictions on transfer, val and test (refused behind the firewall)."""
    _sides: dict[str, ModelSide] = field(default_factory=dict)
    method: str = ""
    """The method this context serves ("" for the protocol's own context)."""
    guarded: bool = False
    """Behind the label firewall (a method's context)."""
    refused: list[str] = field(default_factory=list)
    """What the firewall refused (each one fails the run)."""

    # ----------------------------------------------------------------- the firewall

    def for_method(self, spec: Any) -> StudentContext:
        """The context a method's hooks get: behind the label firewall unless the method (a Composite
        or a part) declares ``uses_ground_truth``."""
        if spec.uses_ground_truth:
            return dataclasses.replace(self, method=spec.name, guarded=False, refused=[])
        new = dataclasses.replace(self, method=spec.name, guarded=True, refused=[])
        new.task, new.keys = _TaskView(self.task, new), _KeysView(self.keys, new)
        new.cache = GuardedCache(self.cache, new)
        new.ceiling = _Refused(new, "ctx.ceiling (the ceiling's predictions, trained on transfer's ground truth)")
        return new

    def refuse(self, what: str) -> None:
        """Refuse a read of ground truth: record it (the run fails even if the error is caught) and raise."""
        from .. import reads
        from ..errors import GroundTruthError

        msg = (f"method {self.method!r} tried to read {what}: ground truth of transfer, val and test is hidden "
               "from methods (the label firewall). Use the weak labels (ctx.weak_probs) or weak_train's ground "
               "truth (ctx.weak_train_labels()); analyses that need ground truth go in the method's analyze_fn, "
               "which the protocol runs after the method has returned, or the method declares "
               "uses_ground_truth (then it is marked and never ranked)")
        self.refused.append(msg)
        reads.refuse(msg)
        raise GroundTruthError(msg)

    def labels_of(self, split: str) -> np.ndarray:
        """Ground-truth labels of ``split`` in split order (the protocol's analyses; refused to methods)."""
        if self.guarded:
            self.refuse(f"the ground truth of {split}")
        return self.task.frame["label"].to_numpy()[self.rows(split)]

    def weak_train_labels(self) -> np.ndarray:
        """Ground-truth labels of weak_train in split order (readable by methods: the weak model's own
        training data)."""
        task = self.task._task if isinstance(self.task, _TaskView) else self.task
        return task.frame["label"].to_numpy()[self.rows("weak_train")]

    # ----------------------------------------------------------------- data

    @property
    def labels(self) -> np.ndarray:
        """Ground-truth labels of every example of the task (N,) — the protocol's own context only."""
        if self.guarded:
            self.refuse("ctx.labels (ground truth of every split)")
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
        """Ground truth of ``rows`` as (n, K) one-hot targets (behind the firewall: weak_train rows only)."""
        rows = np.asarray(rows)
        if self.guarded and not np.isin(rows, self.rows("weak_train")).all():
            self.refuse("ctx.onehot of rows outside weak_train (their ground truth)")
        task = self.task._task if isinstance(self.task, _TaskView) else self.task
        return np.eye(self.num_classes, dtype=np.float32)[task.frame["label"].to_numpy()[rows]]

    def _truth_reference(self) -> Reference:
        """The val ground truth that heads of stages trained on ground truth (floors, ceilings) are
        chosen by, as the run's own: a weak supervisor is trained and tuned on ground truth, and a
        method receives only its predictions."""
        task = self.task._task if isinstance(self.task, _TaskView) else self.task
        y = task.frame["label"].to_numpy()[self.rows("val")]
        return Reference(np.eye(self.num_classes, dtype=np.float32)[y], "ground truth")

    def weak_probs(self, split: str) -> np.ndarray:
        """The weak supervisor's probabilities on ``split`` (n, K)."""
        p = self.floor.probs(split, self.ids(split))
        if p is None:
            from ..errors import W2SError
            from ..reads import untracked

            given = untracked(self.cfg).weak_labels
            ids = self.ids(split)
            have = set(self.floor.predictions["id"].astype(str))
            missing = [i for i in ids if i not in have][:3]
            where = (f"the weak labels file {given!r} (--weak-labels) has no row for id(s) {missing} of the {split} "
                     f"split; add the weak model's probabilities for every {split} id (the file must cover "
                     "transfer, val and test)") if given else f"the weak labels do not cover the {split} split"
            raise W2SError(f"{where}; the students need them there: probe heads are chosen on val among "
                           "probe.weight_decay's values (or give one value, e.g. --set probe.weight_decay=[0.01]) "
                           "and early_stop chooses its checkpoint there")
        return p

    def reference(self, plan: StudentPlan | None = None) -> Reference | None:
        """The val labels that heads trained on weak or derived labels are chosen by: those of the
        plan's supervision (a ``labels`` method's), else the weak labels. Never ground truth. None
        where given weak labels cover transfer only and there is no choice to make (one
        ``probe.weight_decay``)."""
        from ..reads import untracked

        sup = None if plan is None else plan.supervision
        if sup is None or sup is self.floor:
            one = len(untracked(self.cfg).probe.weight_decay) == 1
            if one and self.floor.probs("val", self.ids("val")) is None:
                return None
            return Reference(self.weak_probs("val"), "weak labels")
        p = sup.probs("val", self.ids("val"))
        if p is None:
            from ..errors import W2SError

            raise W2SError(f"the supervision {sup.name!r} does not cover the val split; heads trained on it are "
                           "chosen by agreement with it there")
        return Reference(p, f"{sup.name} labels")

    def metrics(self, st: StageResult) -> dict[str, Any]:
        """Accuracy and AUROC of a stage's predictions on val and test (the protocol's context only)."""
        from .. import metrics

        if self.guarded:
            self.refuse("ctx.metrics (accuracy against the ground truth of val and test)")
        out = {}
        for s in ("val", "test"):
            p = st.probs(s, self.ids(s))
            if p is not None:
                out[s] = metrics.summarize(self.labels[self.rows(s)], p)
        return out

    # ----------------------------------------------------------------- models

    def side(self, model: str, layer: int | None = None, *, frozen: bool = False, mode: str | None = None
             ) -> ModelSide:
        """A backbone of the run's kind for ``model`` (short name, hub id or directory).

        ``frozen``: a probe-mode side (cached activations) whatever the run's mode — filters read
        features of the frozen strong model in finetune runs too. ``mode``: a side under that mode.
        A stage that uses it must hold its key (a method: ``env.model_key(model, layer, mode=...)``).
        """
        from ..models import resolve_model
        from ..reads import with_changes

        mode = "probe" if frozen else (mode or self.cfg.mode)
        cfg = self.cfg if mode == self.cfg.mode else with_changes(self.cfg, mode=mode)
        k = f"{model}|{layer}|{mode}"
        if k not in self._sides:
            if model == self.strong.model.name and layer is None and mode == self.cfg.mode:
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
        return self.side(self.strong.model.name, self.cfg.embed.strong_layer, frozen=True)

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
        key = self.keys.make(stage, side.key, cfg=side.cfg, seed=seed, train=ids_hash(ids, target), **(inputs or {}))
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
        inputs = self.keys.floor(side.key).with_(seed=seed)
        rows = self.rows("weak_train")
        probe = side.cfg.mode == "probe"
        fn = train_stage if probe else finetune_stage
        kw = {"ref": self._truth_reference()} if probe else {}
        return fn(self.cache, "floor", inputs, side, self.task, self.splits, self.onehot(rows), _xent_loss(),
                  side.cfg, seed, **kw)

    def groups(self, rows: np.ndarray) -> np.ndarray:
        """The group of each of ``rows`` (n,): the candidates of one question or passage share one."""
        return self.task.frame["group"].to_numpy()[np.asarray(rows)]

    def folds(self, rows: np.ndarray, k: int, seed: int | None = None, method: str = "k-fold") -> list[np.ndarray]:
        """``k`` disjoint position folds over ``rows``, each made of whole groups (``_folds.fold_ids``,
        seeded by ``seed`` or the run's seed): a fold model never labels a group it trained on."""
        from ._folds import fold_ids

        return fold_ids(self.groups(rows), k, self.seed if seed is None else seed, method)

    def oof(self, stage: str, side: ModelSide, rows: np.ndarray, target: np.ndarray, loss_fn: Any, k: int,
            inputs: dict[str, Any] | None = None, seed: int | None = None) -> np.ndarray:
        """Out-of-fold predictions (n, K) on ``rows`` (transfer rows): for each of ``k`` folds (whole
        groups) a model trained on the other folds predicts it, so no example is labelled by a model
        that saw it or another example of its group."""
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
        for f, held in enumerate(self.folds(rows, k, seed, method=stage)):
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

    def key_env(self) -> Any:
        """The KeyEnv of this run: model keys come from this context's sides (nothing is trained)."""
        from ..protocol import KeyEnv

        return KeyEnv(self.cfg, lambda name, layer, mode: self.side(name, layer, mode=mode).key,
                      self.strong.model.name, self.weak.model.name if self.weak is not None else None,
                      self.keys.split_ids)

    def side_under(self, cfg: RunConfig, model: str | None = None, layer: int | None = None) -> ModelSide:
        """A side of ``model`` (short name, hub id or directory; default the strong model, at the
        run's strong layer) built under another run config ``cfg``, e.g. a finetune-mode side in a
        probe run. Stages trained on it build their keys with ``keys.make(..., cfg=cfg)``: the run's
        base inputs name the run's own mode and training config."""
        from ..models import resolve_model

        if model is None:
            model, layer = self.strong.model.name, cfg.embed.strong_layer if layer is None else layer
        s = side_for(resolve_model(model), layer, cfg, self.cache.root)
        s.texts_needed = self.texts(np.concatenate([self.rows(x) for x in SPLITS]))
        return s


def split_accuracy(truth: dict[str, np.ndarray], probs: np.ndarray | None, split: str = "test") -> float | None:
    """Ground-truth accuracy of ``probs`` (n, K) on ``split`` (``truth``: labels by split, as an
    ``analyze_fn`` gets them), for analysis records; None when there are no predictions."""
    from ..metrics import accuracy

    return None if probs is None else accuracy(truth[split], np.asarray(probs))


# --------------------------------------------------------------------------- firewall views

REFUSED_STAGES = frozenset({"ceiling", "ladder-lp"})  # stages trained on transfer's ground truth
"""Stage-cache entries trained on transfer's ground truth: a method may not read them."""


class _Refused:
    """Stands for something a method may not read: any use of it is refused."""

    def __init__(self, ctx: StudentContext, what: str):
        object.__setattr__(self, "_ctx", ctx)
        object.__setattr__(self, "_what", what)

    def __getattr__(self, name: str) -> Any:
        self._ctx.refuse(self._what)

    def __bool__(self) -> bool:
        self._ctx.refuse(self._what)
        return False


def _names(key: Any) -> list[str]:
    """The column names a frame key asks for, where it is a list-like of names (else none)."""
    if isinstance(key, (list, tuple, set, frozenset)) or type(key).__name__ in ("Index", "Series", "ndarray"):
        try:
            return [k for k in key if isinstance(k, str)]
        except TypeError:
            return []
    return []


class _GuardedFrame:
    """A task frame whose label column is refused (the rest reads from a copy without it)."""

    def __init__(self, frame: Any, ctx: StudentContext):
        self._frame = frame
        self._ctx = ctx
        self._nolabel = None

    def _plain(self) -> Any:
        if self._nolabel is None:
            self._nolabel = self._frame.drop(columns=["label"])
        return self._nolabel

    def __getitem__(self, key: Any) -> Any:
        names = [key] if isinstance(key, str) else _names(key)
        if "label" in names:
            self._ctx.refuse("the task frame's label column (ground truth of every split)")
        return self._plain()[key]  # rows, masks, slices, other columns: from the frame without labels

    def __getattr__(self, name: str) -> Any:
        if name == "label":
            self._ctx.refuse("the task frame's label column (ground truth of every split)")
        return getattr(self._plain(), name)

    def __len__(self) -> int:
        return len(self._frame)


class _TaskView:
    """The task as a method sees it: its frame without ground truth."""

    def __init__(self, task: TaskData, ctx: StudentContext):
        self._task = task
        self.frame = _GuardedFrame(task.frame, ctx)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._task, name)

    def __len__(self) -> int:
        return len(self._task)


class _KeysView:
    """The run's stage inputs without the labels (nor the ceiling's key, which leads to its entry)."""

    def __init__(self, keys: StageInputs, ctx: StudentContext):
        self._keys = keys
        self._ctx = ctx

    @property
    def labels(self) -> Any:
        self._ctx.refuse("ctx.keys.labels (ground truth of every split)")

    def ceiling(self, *a: Any, **k: Any) -> Any:
        self._ctx.refuse("ctx.keys.ceiling (the key of the ceiling's stage, trained on transfer's ground truth)")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._keys, name)


class GuardedCache:
    """The stage cache without the entries trained on transfer's ground truth (ceilings); ``ctx`` is the
    method's context (classification or generation), whose ``refuse(what)`` records and raises."""

    def __init__(self, cache: StageCache, ctx: Any):
        self._cache = cache
        self._ctx = ctx

    def _check(self, stage: str) -> None:
        if stage in REFUSED_STAGES:
            self._ctx.refuse(f"the stage cache's {stage!r} entries (trained on transfer's ground truth)")

    def get(self, stage: str, *a: Any, **k: Any) -> Any:
        self._check(stage)
        return self._cache.get(stage, *a, **k)

    def get_or_build(self, stage: str, *a: Any, **k: Any) -> Any:
        self._check(stage)
        return self._cache.get_or_build(stage, *a, **k)

    def put(self, stage: str, *a: Any, **k: Any) -> Any:
        self._check(stage)
        return self._cache.put(stage, *a, **k)

    def path(self, stage: str, *a: Any, **k: Any) -> Any:
        self._check(stage)
        return self._cache.path(stage, *a, **k)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cache, name)
