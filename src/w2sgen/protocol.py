"""The weak-to-strong protocol of Burns et al. (2023), as cached stages.

    floor    : weak head on weak_train (ground truth)  -> weak soft labels on transfer, val, test
    ceiling  : strong head on transfer (ground truth)   -> predictions on transfer, val, test
    student  : strong head on transfer (weak labels), one per method -> predictions

Every stage is keyed by everything it depends on (task fingerprint, the example ids it trains
on and predicts, the feature key of its model, the head config, its labels, its method settings
and the seed), so a run that adds one method trains nothing else.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import metrics
from .config import RunConfig, to_dict
from .errors import W2SError
from .models.registry import ResolvedModel
from .store.cache import StageCache
from .tasks.base import TaskData
from .tasks.splits import SPLITS, Splits
from .train.select import Reference

log = logging.getLogger("w2sgen")
PROTOCOL_VERSION = "1"
PREDICT_SPLITS = ("transfer", "val", "test")


def ids_hash(ids: Any, extra: Any = None) -> str:
    h = hashlib.sha256()
    for i in ids:
        h.update(str(i).encode() + b"\x1f")
    if extra is not None:
        h.update(np.ascontiguousarray(extra).tobytes())
    return h.hexdigest()[:24]


@dataclass
class ModelSide:
    """One backbone: its fingerprint, and (probe mode) its lazily filled activation cache."""

    model: ResolvedModel
    layer: int
    pooling: str
    cfg: RunConfig
    cache_root: Path
    texts_needed: list[str] = field(default_factory=list)
    _meta: dict[str, Any] | None = None
    _store: Any = None
    _ready: bool = False

    @property
    def meta(self) -> dict[str, Any]:
        """What identifies this model's outputs: weights fingerprint, layer, pooling, dtype."""
        if self._meta is None:
            from .models.backbone import fingerprint, local_dir
            from .train.activations import resolve_device, resolve_dtype

            path = local_dir(self.model)
            self.device = resolve_device(self.cfg.embed.device)
            dtype = self.cfg.embed.dtype if self.cfg.mode == "probe" else self.cfg.finetune.dtype
            self.dtype = resolve_dtype(dtype, self.device)
            self._meta = {
                "model": self.model.name, "fingerprint": fingerprint(path), "revision": self.model.revision,
                "layer": self.layer, "pooling": self.pooling, "max_length": self.cfg.embed.max_length,
                "dtype": self.dtype,
            }
            if self.cfg.mode == "finetune":
                self._meta["max_length"] = self.cfg.finetune.max_length
        return self._meta

    @property
    def store(self):
        if self._store is None:
            from .train.activations import FeatureStore

            self._store = FeatureStore(self.cache_root, self.meta)
        return self._store

    @property
    def key(self) -> str:
        """The model part of stage keys: the feature store (probe) or the model itself (finetune)."""
        if self.cfg.mode == "probe":
            return self.store.key
        import json

        return hashlib.sha256(json.dumps(self.meta, sort_keys=True).encode()).hexdigest()[:20]

    def features(self, texts: list[str], desc: str) -> np.ndarray:
        if not self._ready:
            from .models.backbone import load_backbone
            from .train.activations import cached_features

            store = self.store
            cached_features(
                store, self.texts_needed or texts,
                lambda: load_backbone(self.model, trust_remote_code=self.cfg.trust_remote_code, device=self.device),
                layer=self.layer, pooling=self.pooling, max_length=self.cfg.embed.max_length,
                batch_size=self.cfg.embed.batch_size, dtype=self.dtype, desc=desc,
            )
            self._ready = True
        missing = self.store.missing(texts)
        if missing:  # texts outside the planned set
            from .models.backbone import load_backbone
            from .train.activations import extract

            bb = load_backbone(self.model, trust_remote_code=self.cfg.trust_remote_code, device=self.device)
            self.store.add(missing, extract(bb, missing, layer=self.layer, pooling=self.pooling,
                                            max_length=self.cfg.embed.max_length,
                                            batch_size=self.cfg.embed.batch_size, dtype=self.dtype, desc=desc))
        return self.store.get(texts)


def side_for(model: ResolvedModel, layer_override: int | None, cfg: RunConfig, cache_root: Path) -> ModelSide:
    pooling = cfg.embed.pooling or (model.pooling if model.pooling != "auto" else None)
    kind = model.kind
    if pooling is None or kind == "auto":
        from .models.backbone import local_dir
        from .models.registry import detect_kind

        kind = detect_kind(local_dir(model))
        pooling = pooling or ("last" if kind == "decoder" else "mean")
    if pooling not in ("mean", "cls", "last"):
        raise W2SError(f"config field 'embed.pooling': {pooling!r}; use mean, cls or last")
    if layer_override is not None:
        layer = layer_override
    else:  # probes read the model's best-probing layer; finetuning trains on the top layer
        layer = model.layer if cfg.mode == "probe" else -1
    return ModelSide(model, layer, pooling, cfg, cache_root)


# --------------------------------------------------------------------------- stage payloads


def _save_stage(d: Path, task: TaskData, splits: Splits, probs: dict[str, np.ndarray], weights: dict[str, Any],
                info: dict[str, Any]) -> None:
    """Write a stage entry: predictions (id, split, prob_k) on PREDICT_SPLITS, trained weights, train.json.

    ``probs`` maps each split to its (n, K) probabilities in the order of ``splits[split]``;
    ``weights`` maps a file name to the tensors worth keeping (a head, adapters; never base weights).
    """
    from safetensors.torch import save_file

    from .store.atomic import atomic_write_json

    ids = task.frame["id"].to_numpy()
    predictions_frame({s: ids[splits[s]] for s in PREDICT_SPLITS}, probs).to_parquet(
        d / "predictions.parquet", index=False)
    for name, tensors in weights.items():
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(d / name))
    atomic_write_json(d / "train.json", info)


def predictions_frame(ids: dict[str, Any], probs: dict[str, np.ndarray]) -> pd.DataFrame:
    """The stage prediction table: columns id, split, prob_0..prob_{K-1} (float32), rows of
    PREDICT_SPLITS in order; ``ids[s]`` and ``probs[s]`` (n_s, K) are aligned."""
    frame = pd.DataFrame({
        "id": np.concatenate([np.asarray(ids[s]) for s in PREDICT_SPLITS]),
        "split": np.concatenate([[s] * len(ids[s]) for s in PREDICT_SPLITS]),
    })
    stacked = np.concatenate([np.asarray(probs[s]) for s in PREDICT_SPLITS])  # (N, K)
    for k in range(stacked.shape[1]):
        frame[f"prob_{k}"] = stacked[:, k].astype(np.float32)
    return frame


def _load_stage(d: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    import json

    return pd.read_parquet(d / "predictions.parquet"), json.loads((d / "train.json").read_text())


def _probs(frame: pd.DataFrame) -> np.ndarray:
    cols = sorted((c for c in frame.columns if c.startswith("prob_")), key=lambda c: int(c[5:]))
    return frame[cols].to_numpy(dtype=np.float32)


@dataclass
class StageResult:
    name: str
    predictions: pd.DataFrame
    """id, split, prob_0..prob_{K-1} on transfer, val and test."""
    info: dict[str, Any]
    cached: bool
    key: str
    wall_s: float

    def probs(self, split: str, ids: list[str]) -> np.ndarray | None:
        """(len(ids), K) probabilities in the order of ``ids``; None if some id has no prediction."""
        f = self.predictions[self.predictions["split"] == split].set_index("id")
        if len(f) < len(ids) or not f.index.isin(ids).sum() == len(ids):
            return None
        return _probs(f.loc[ids])


def train_stage(
    cache: StageCache, stage: str, inputs: dict[str, Any], side: ModelSide, task: TaskData, splits: Splits,
    target: np.ndarray, loss_fn, cfg: RunConfig, seed: int, train_idx: np.ndarray | None = None,
    extra_info: dict[str, Any] | None = None, ref: Reference | None = None,
) -> StageResult:
    """Train the grid of heads on ``side``'s features of the transfer/weak_train split, keep the one
    that agrees best with ``ref`` on val, and predict the rest.

    ``train_idx``: the rows it trains on (aligned with ``target``), when a method keeps only part
    of the split; default the whole split. ``ref``: the val labels the heads are chosen by (ground
    truth for floors and ceilings, the supervision's labels for everything trained on weak or
    derived labels); needed when ``probe.weight_decay`` has several values. Test is never read.
    """
    from .train.probe import fit_probe, predict

    t0 = time.time()
    frame = task.frame
    if train_idx is None:
        train_idx = splits[inputs["train_split"]]

    def build(d: Path) -> None:
        texts = frame["text"].tolist()
        x = side.features([texts[i] for i in train_idx], desc=f"embed ({side.model.name})")
        feats = {s: side.features([texts[i] for i in splits[s]], desc="embed") for s in PREDICT_SPLITS}
        fit = fit_probe(x, target, loss_fn, cfg.probe, seed, feats["val"], ref, desc=f"{stage} ({side.model.name})")
        probs = {s: predict(fit.head, feats[s]) for s in PREDICT_SPLITS}
        _save_stage(d, task, splits, probs, {"head.safetensors": fit.head.state_dict()},
                    {**fit.info, "train_wall_s": time.time() - t0, **(extra_info or {})})

    entry, hit = cache.get_or_build(stage, inputs, build)
    preds, info = _load_stage(entry)
    return StageResult(stage, preds, info, hit, entry.name, time.time() - t0)


def finetune_stage(
    cache: StageCache, stage: str, inputs: dict[str, Any], side: ModelSide, task: TaskData, splits: Splits,
    target: np.ndarray, loss_fn, cfg: RunConfig, seed: int, train_idx: np.ndarray | None = None,
    extra_info: dict[str, Any] | None = None, eval_every: int | None = None, pick=None,
) -> StageResult:
    """Finetune ``side``'s model (full or LoRA) on the stage's training split (or its rows
    ``train_idx``, aligned with ``target``) and predict the rest.

    ``eval_every``: also predict every that many steps (``res.curve``); ``pick(res) -> (probs, info)``
    then chooses the stored predictions (e.g. an early-stopping checkpoint) and adds ``info`` to
    train.json; the final weights are not stored then (they are not the picked checkpoint's).
    """
    from .store.cache import stage_key
    from .train.distributed import get_or_build_shared
    from .train.finetune import finetune

    t0 = time.time()
    texts = task.frame["text"].tolist()
    if train_idx is None:
        train_idx = splits[inputs["train_split"]]
    _ = side.meta  # resolves device and dtype
    # stable across a crash (the entry itself is built in a temporary directory); deleted once it exists
    ckpt_dir = cache.root / "checkpoints" / stage / stage_key(inputs)

    def train():
        return finetune(
            side.model, [texts[i] for i in train_idx], target, loss_fn, cfg.finetune, seed=seed,
            num_classes=task.num_classes, pooling=side.pooling, layer=side.layer,
            eval_sets={s: [texts[i] for i in splits[s]] for s in PREDICT_SPLITS}, device=side.device,
            compute_dtype=side.dtype, trust_remote_code=cfg.trust_remote_code, desc=f"{stage} ({side.model.name})",
            checkpoint_dir=ckpt_dir, eval_every=eval_every,
        )

    def build(d: Path) -> None:
        res = train()
        info = {"losses": res.losses, **res.info, **(extra_info or {})}
        if pick is None:
            name = "adapter.safetensors" if cfg.finetune.lora else "head.safetensors"
            _save_stage(d, task, splits, res.probs, {name: res.trainable}, info)
        else:
            probs, picked = pick(res)
            _save_stage(d, task, splits, probs, {}, {**info, **picked})

    entry, hit = get_or_build_shared(cache, stage, inputs, build, train, cleanup=ckpt_dir)  # rank 0 writes
    preds, info = _load_stage(entry)
    return StageResult(stage, preds, info, hit, entry.name, time.time() - t0)


# --------------------------------------------------------------------------- stage inputs (keys)


@dataclass
class StageInputs:
    """The inputs (hence the cache keys) of one seed's stages, computed without training anything.

    ``run_seed`` and the sweep planner (``w2sgen.sweep.plan``) both build their stage inputs here,
    so their keys cannot drift apart. A student's inputs depend on the weak labels on transfer,
    i.e. on the floor's output: the planner knows them only once that floor is cached.
    """

    cfg: RunConfig
    base: dict[str, Any]
    split_ids: dict[str, list[str]]
    labels: np.ndarray
    splits: Splits

    def floor(self, weak_key: str) -> dict[str, Any]:
        """The weak floor: ground truth on weak_train, on the weak model's features."""
        idx = self.splits["weak_train"]
        return dict(self.base, stage="floor", features=weak_key, train_split="weak_train",
                    train=ids_hash(self.split_ids["weak_train"], self.labels[idx]))

    def ceiling(self, strong_key: str) -> dict[str, Any]:
        """The strong ceiling: ground truth on transfer, on the strong model's features."""
        idx = self.splits["transfer"]
        return dict(self.base, stage="ceiling", features=strong_key, train_split="transfer",
                    train=ids_hash(self.split_ids["transfer"], self.labels[idx]))

    def student(self, method: Any, strong_key: str, weak_transfer: Any,
                plan: StudentPlan | None = None) -> dict[str, Any]:
        """The stage inputs of a student of ``method`` (a name, ``a+b``, or a Composite) on the weak
        labels ``weak_transfer`` (floor probs on transfer).

        Methods that need only the weak labels are keyed by what they train on (ids and targets);
        methods that need the run's models (filters on strong features, ensembles, ...) by their
        settings and the weak labels they start from, which decide everything they do.
        """
        spec = self.spec(method)
        if spec.needs_context:
            return dict(self.base, stage="student", method=spec.name, settings=spec.settings(),
                        features=strong_key, train_split="transfer",
                        weak=ids_hash(self.split_ids["transfer"], np.asarray(weak_transfer, dtype=np.float32)))
        plan = plan or self.student_plan(spec, weak_transfer)
        return dict(self.base, stage="student", method=plan.method.name, settings=plan.method.settings(),
                    features=strong_key, train_split="transfer",
                    train=ids_hash(plan.ids, plan.target))

    def spec(self, method: Any):
        """``method`` as a checked Composite (names, ``a+b``, with the run's method settings)."""
        from .methods.compose import Composite, parse

        return method if isinstance(method, Composite) else parse(method, self.cfg.method_args, self.cfg.mode)

    def student_plan(self, method: Any, weak_transfer: Any, ctx: Any = None) -> StudentPlan:
        """What a student trains on: each part's config resolved from the weak labels (``prepare``)
        and the transfer examples kept with their targets (the ``select`` parts, in order)."""
        from .methods.compose import Composite, Part

        spec = self.spec(method)
        weak_transfer = np.asarray(weak_transfer, dtype=np.float32)
        parts = [Part(p.method, p.method.prepare(p.cfg, weak_transfer)) for p in spec.parts]
        spec = Composite(spec.name, parts)
        keep = np.ones(len(weak_transfer), dtype=bool)
        target = weak_transfer
        selected: dict[str, Any] = {}  # facts the select parts report, for train.json
        for p in spec.of_kind("select"):
            k, target = p.method.select(p.cfg, target, ctx, info=selected)
            keep &= k
            if not keep.any():
                from .errors import W2SError

                raise W2SError(f"method {spec.name!r}: its filters kept none of the transfer examples")
        ids = [i for i, k in zip(self.split_ids["transfer"], keep) if k]
        loss = spec.loss
        return StudentPlan(spec, spec, ids, self.splits["transfer"][keep], target[keep],
                           loss_fn=loss.method.make_loss(loss.cfg), info={"select": selected} if selected else {})


@dataclass
class StudentPlan:
    """A student's method, resolved config, and training examples (ids, frame rows, targets (n, K))."""

    method: Any
    """The resolved Composite (each part's config prepared from the weak labels)."""
    cfg: Any
    ids: list[str]
    rows: np.ndarray
    target: np.ndarray
    loss_fn: Any = None
    inputs: dict[str, Any] = field(default_factory=dict)
    """The student's stage inputs (its cache key)."""
    info: dict[str, Any] = field(default_factory=dict)
    """Extra facts written to the student's train.json (e.g. the supervisor's accuracy)."""
    supervision: Any = None
    """The StageResult whose transfer probabilities are the student's weak labels."""


def _train_cfg(cfg: RunConfig) -> dict[str, Any]:
    """The training config part of stage keys; ``finetune.checkpoint_every`` does not change results."""
    if cfg.mode == "probe":
        return to_dict(cfg.probe)
    return {k: v for k, v in to_dict(cfg.finetune).items() if k != "checkpoint_every"}


def stage_inputs(cfg: RunConfig, seed: int, task: TaskData, splits: Splits) -> StageInputs:
    """The stage-input builder of one seed of ``cfg`` on ``task`` split as ``splits``."""
    frame = task.frame
    ids = frame["id"].to_numpy()
    split_ids = {s: ids[splits[s]].tolist() for s in SPLITS}
    predict_hash = ids_hash([i for s in PREDICT_SPLITS for i in split_ids[s]])
    base = {"protocol": PROTOCOL_VERSION, "task": task.fingerprint(), "mode": cfg.mode, "seed": seed,
            "predict": predict_hash, "train_cfg": _train_cfg(cfg)}
    return StageInputs(cfg, base, split_ids, frame["label"].to_numpy(), splits)


# --------------------------------------------------------------------------- one run


def run_seed(cfg: RunConfig, seed: int, task: TaskData, splits: Splits, weak: ModelSide | None,
             strong: ModelSide, cache: StageCache, given_labels: dict[str, np.ndarray] | None = None
             ) -> dict[str, Any]:
    """All stages of one seed; returns the run record (metrics, keys, timings)."""
    t_run = time.time()
    frame = task.frame
    K = task.num_classes
    labels = frame["label"].to_numpy()
    onehot = np.eye(K, dtype=np.float32)
    keys = stage_inputs(cfg, seed, task, splits)
    split_ids = keys.split_ids
    train = train_stage if cfg.mode == "probe" else finetune_stage

    # heads of floors and ceilings are chosen by ground truth on val (they train on ground truth)
    gt_val = {} if cfg.mode != "probe" else {"ref": Reference(onehot[labels[splits["val"]]], "ground truth")}

    # ---- weak floor -> weak labels
    if given_labels is None:
        assert weak is not None
        floor = train(
            cache, "floor", keys.floor(weak.key),
            weak, task, splits, onehot[labels[splits["weak_train"]]], _xent_loss(), cfg, seed, **gt_val,
        )
        weak_info = {"source": "floor", "model": weak.model.name, "layer": weak.layer, "pooling": weak.pooling,
                     "features": weak.key}
    else:
        floor = _given_stage(given_labels, split_ids, K)
        weak_info = {"source": "file", "path": cfg.weak_labels}
    weak_transfer = floor.probs("transfer", split_ids["transfer"])

    # ---- strong ceiling
    ceiling = train(
        cache, "ceiling", keys.ceiling(strong.key),
        strong, task, splits, onehot[labels[splits["transfer"]]], _xent_loss(), cfg, seed, **gt_val,
    )

    # ---- students
    from .methods.context import StudentContext

    ctx = StudentContext(cfg, seed, task, splits, keys, cache, strong, weak, floor, ceiling)
    students, n_train = {}, {}
    for name in cfg.methods:
        spec = keys.spec(name)
        t_m = time.time()
        st, n = run_student(ctx, spec, weak_transfer)
        st = dataclasses.replace(st, wall_s=time.time() - t_m)  # the whole method, intermediate stages too
        n_train[spec.name] = n
        students[spec.name] = st

    # ---- metrics on test (and val)
    y = {s: labels[splits[s]] for s in SPLITS}

    def block(st: StageResult) -> dict[str, Any]:
        out: dict[str, Any] = {"key": st.key, "cached": st.cached, "wall_s": round(st.wall_s, 3)}
        for s in ("val", "test"):
            p = st.probs(s, split_ids[s])
            if p is None:
                out[s] = {"acc": float("nan"), "auroc": float("nan")}
            else:
                out[s] = metrics.summarize(y[s], p)
        out["train"] = {k: v for k, v in st.info.items() if k != "losses"}
        out["final_loss"] = st.info.get("losses", [float("nan")])[-1] if st.info.get("losses") else None
        out["losses"] = list(st.info.get("losses") or [])  # per-epoch curve, for the report
        return out

    record: dict[str, Any] = {"weak": dict(block(floor), **weak_info), "ceiling": block(ceiling), "students": {},
                              "majority_acc": {s: metrics.majority_accuracy(y[s]) for s in ("val", "test")}}
    w = record["weak"]["test"]
    c = record["ceiling"]["test"]
    weak_test = floor.probs("test", split_ids["test"])
    for name, st in students.items():
        b = block(st)
        b["n_train"] = n_train[name]
        s_test = b["test"]
        b["pgr_acc"] = metrics.pgr(w["acc"], s_test["acc"], c["acc"])
        b["pgr_auroc"] = metrics.pgr(w["auroc"], s_test["auroc"], c["auroc"])
        if weak_test is not None:
            b["test"].update(metrics.agreement_split(y["test"], weak_test, st.probs("test", split_ids["test"])))
        record["students"][name] = b
    record["wall_s"] = round(time.time() - t_run, 3)
    record["_stages"] = {"weak": floor, "ceiling": ceiling, **{f"student-{k}": v for k, v in students.items()}}
    return record


def run_student(ctx: Any, spec: Any, weak_transfer: np.ndarray) -> tuple[StageResult, int]:
    """Train (or load) the student of ``spec`` (a Composite); returns it and its training-set size.

    The parts apply in kind order: a ``labels`` part replaces the supervision, ``select`` parts
    filter or relabel, the ``loss`` part gives the objective, a ``train`` part trains (else the
    default student); an ``alone`` method makes its predictions by itself.
    """
    keys = ctx.keys
    inputs = keys.student(spec, ctx.strong.key, weak_transfer)
    if spec.needs_context:
        from .store.cache import stage_key

        hit = ctx.cache.get("student", stage_key(inputs))
        if hit is not None:  # the whole pipeline is cached: skip its intermediate stages
            preds, info = _load_stage(hit)
            return StageResult("student", preds, info, True, hit.name, 0.0), int(info.get("n_train", 0))
    alone = spec.one("alone")
    if alone is not None:
        plan = StudentPlan(spec, spec, [], np.zeros(0, dtype=np.int64), np.zeros((0, ctx.num_classes), np.float32),
                           inputs=inputs, info={"n_train": 0})
        return _checked(alone.method.run_fn(alone.cfg, ctx, plan), inputs, spec), 0
    supervision = ctx.floor
    info: dict[str, Any] = {}
    lab = spec.one("labels")
    if lab is not None:
        supervision = lab.method.supervise_fn(lab.cfg, ctx)
        sup_transfer = supervision.probs("transfer", keys.split_ids["transfer"])
        info["supervisor"] = ctx.metrics(supervision)
        # a labels method's analysis facts (e.g. bootstrap's "ladder", ensemble's "ensemble") reach train.json
        info.update({k: v for k, v in supervision.info.items() if k not in ("supervisor", "n_train", "losses")})
    else:
        sup_transfer = weak_transfer
    plan = keys.student_plan(spec, sup_transfer, ctx)
    plan.inputs = inputs
    plan.supervision = supervision
    plan.info = {**plan.info, **info, "n_train": len(plan.ids)}
    tr = spec.one("train")
    st = tr.method.train_fn(tr.cfg, ctx, plan) if tr is not None else ctx.train_student(plan)
    return _checked(st, inputs, spec), len(plan.ids)


def _checked(st: StageResult, inputs: dict[str, Any], spec: Any) -> StageResult:
    from .store.cache import stage_key

    if st.key != stage_key(inputs) or st.name != "student":
        raise RuntimeError(f"method {spec.name!r} must store its student under the plan's inputs "
                           "(ctx.train_student(plan) or cache stage 'student' with plan.inputs)")
    return st


def _xent_loss():
    from .methods import METHODS

    m = METHODS.get("xent")
    return m.make_loss(m.config())


def _given_stage(labels: dict[str, np.ndarray], split_ids: dict[str, list[str]], K: int) -> StageResult:
    missing = [i for i in split_ids["transfer"] if i not in labels]
    if missing:
        raise W2SError(
            f"weak labels: {len(missing)} of {len(split_ids['transfer'])} transfer examples have no label "
            f"(e.g. id {missing[0]!r}); the file must cover every example of the transfer split "
            "(export one with `w2s export-labels` to see the ids)"
        )
    rows = []
    for s in PREDICT_SPLITS:
        for i in split_ids[s]:
            if i in labels:
                rows.append({"id": i, "split": s, **{f"prob_{k}": float(labels[i][k]) for k in range(K)}})
    return StageResult("given", pd.DataFrame(rows), {}, False, "file", 0.0)

