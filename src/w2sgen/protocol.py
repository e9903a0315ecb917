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
import json
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
PROTOCOL_VERSION = "4"  # 2: keys by construction, the label firewall, chained filters; 3: grid-selected probe heads; 4: preconditioned L-BFGS heads, heads-batched losses
PREDICT_SPLITS = ("transfer", "val", "test")


def ids_hash(ids: Any, extra: Any = None) -> str:
    h = hashlib.sha256()
    for i in ids:
        h.update(str(i).encode() + b"\x1f")
    if extra is not None:
        h.update(np.ascontiguousarray(extra).tobytes())
    return h.hexdigest()[:24]


class StageKey(dict):
    """A stage's inputs, hence its cache key, built from declared parts, with ``covers``: the config
    paths whose values (or resolved values) those parts hold (see :mod:`w2sgen.reads`).

    Build keys with :meth:`with_` (``dict(key, ...)`` would drop the covers)."""

    def __init__(self, data: Any = (), covers: Any = ()):
        super().__init__(data)
        self.covers = frozenset(covers)

    def with_(self, covers: Any = (), **entries: Any) -> StageKey:
        """This key with more entries and the config paths they cover."""
        return StageKey({**self, **entries}, self.covers | frozenset(covers))


@dataclass
class ModelSide:
    """One backbone: its fingerprint, and (probe mode) its lazily filled activation cache.

    Its key holds its resolved meta, which covers :func:`w2sgen.reads.side_covers`; the config
    fields it read to resolve them are replayed into every stage that uses the side, with the side
    itself (``@side:<key>``), so a stage must hold the key of every side it uses. A ``derived`` side
    (weights a stage of the same pipeline produced, whose key follows from that stage's inputs)
    records no such identity."""

    model: ResolvedModel
    layer: int
    pooling: str
    cfg: RunConfig
    cache_root: Path
    texts_needed: list[str] = field(default_factory=list)
    _meta: dict[str, Any] | None = None
    _store: Any = None
    _ready: bool = False
    _reads: set[str] = field(default_factory=set)
    _key: str = ""
    derived: bool = False

    def __post_init__(self) -> None:
        from .reads import tracked

        self.cfg = tracked(self.cfg)

    @property
    def meta(self) -> dict[str, Any]:
        """What identifies this model's outputs: weights fingerprint, layer, pooling, dtype."""
        from . import reads

        if self._meta is None:
            from .models.backbone import fingerprint, local_dir, model_width
            from .train.activations import resolve_device, resolve_dtype

            with reads.scope(f"side {self.model.name}", reads.side_covers(self.cfg.mode)) as sc:
                path = local_dir(self.model)
                self.device = resolve_device(self.cfg.embed.device)
                probe = self.cfg.mode == "probe"
                dtype = self.cfg.embed.dtype if probe else self.cfg.finetune.dtype
                self.dtype = resolve_dtype(dtype, self.device, model_width(path))  # auto: measured (dtype_probe)
                self._meta = {
                    "model": self.model.name, "fingerprint": fingerprint(path), "revision": self.model.revision,
                    "layer": self.layer, "pooling": self.pooling,
                    "max_length": self.cfg.embed.max_length if probe else self.cfg.finetune.max_length,
                    "dtype": self.dtype,
                }
            self._reads |= sc.reads
            self._key = hashlib.sha256(json.dumps(self._meta, sort_keys=True).encode()).hexdigest()[:20]
            if not self.derived:
                self._reads.add(reads.side_ident(self._key))
        reads.replay(self._reads)
        return self._meta

    @property
    def store(self):
        if self._store is None:
            from .train.activations import FeatureStore

            self._store = FeatureStore(self.cache_root, self.meta)
        return self._store

    @property
    def key(self) -> str:
        """The model part of stage keys: the hash of its meta (== its feature store's key in probe mode)."""
        _ = self.meta
        return self._key

    def features(self, texts: list[str], desc: str) -> np.ndarray:
        _ = self.meta  # replays the side's reads into the stage that reads its features
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


def side_for(model: ResolvedModel, layer_override: int | None, cfg: RunConfig, cache_root: Path,
             role: str | None = None) -> ModelSide:
    """The side of ``model`` under ``cfg``; ``role`` ("weak" or "strong"): ``layer_override`` is the
    config's ``embed.<role>_layer``, recorded as the side's read."""
    from . import reads

    with reads.scope(f"side {model.name}", reads.side_covers(reads.untracked(cfg).mode)) as sc:
        if role is not None:
            reads.record(f"embed.{role}_layer")
        side = _side_for(model, layer_override, reads.tracked(cfg), cache_root)
    side._reads |= sc.reads
    return side


def _side_for(model: ResolvedModel, layer_override: int | None, cfg: RunConfig, cache_root: Path) -> ModelSide:
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
    Arrays inside ``info`` (e.g. a method's per-checkpoint predictions, kept for the protocol's
    ground-truth analyses) go to ``arrays.npz`` under their path (``early_stop/probs/test``).
    """
    from safetensors.torch import save_file

    from .store.atomic import atomic_write_json

    ids = task.frame["id"].to_numpy()
    predictions_frame({s: ids[splits[s]] for s in PREDICT_SPLITS}, probs).to_parquet(
        d / "predictions.parquet", index=False)
    for name, tensors in weights.items():
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(d / name))
    info, arrays = split_arrays(info)
    if arrays:
        np.savez(d / "arrays.npz", **arrays)
    atomic_write_json(d / "train.json", info)


def split_arrays(info: Any, prefix: str = "") -> tuple[Any, dict[str, np.ndarray]]:
    """(``info`` without its numpy arrays, {path: array}); a path joins dict keys and list indices
    with '/' (``{"s2s": [{"labels": a}]}`` -> ``{"s2s": [{}]}``, ``{"s2s/0/labels": a}``)."""
    arrays: dict[str, np.ndarray] = {}
    if isinstance(info, np.ndarray):
        return None, {prefix: info}
    if isinstance(info, dict):
        out = {}
        for k, v in info.items():
            if isinstance(v, np.ndarray):
                arrays[f"{prefix}{k}"] = v
                continue
            item, sub = split_arrays(v, f"{prefix}{k}/")
            arrays.update(sub)
            if not (sub and isinstance(item, dict) and not item):  # a dict that held only arrays goes
                out[k] = item
        return out, arrays
    if isinstance(info, (list, tuple)):
        out_list = []
        for i, v in enumerate(info):
            if isinstance(v, np.ndarray):
                arrays[f"{prefix}{i}"] = v
                out_list.append(None)
                continue
            item, sub = split_arrays(v, f"{prefix}{i}/")
            arrays.update(sub)
            out_list.append(item)
        return out_list, arrays
    return info, arrays


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


def load_result(name: str, d: Path, hit: bool, t0: float) -> StageResult:
    """The StageResult of the cache entry ``d`` (predictions, train.json, arrays.npz if any)."""
    preds, info = _load_stage(d)
    return StageResult(name, preds, info, hit, d.name, time.time() - t0, path=d)


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
    path: Path | None = None
    """The cache entry's directory (None for an in-memory stage)."""
    memory_arrays: dict[str, np.ndarray] | None = None
    """Arrays of an in-memory stage (a cached one reads them from ``path/arrays.npz``)."""

    @property
    def arrays(self) -> dict[str, np.ndarray]:
        """Arrays the stage kept for analysis, by path (``early_stop/probs/test``); {} if none."""
        if self.memory_arrays is not None:
            return self.memory_arrays
        if self.path is not None and (self.path / "arrays.npz").is_file():
            with np.load(self.path / "arrays.npz") as z:
                self.memory_arrays = {k: z[k] for k in z.files}
        else:
            self.memory_arrays = {}
        return self.memory_arrays

    def probs(self, split: str, ids: list[str]) -> np.ndarray | None:
        """(len(ids), K) probabilities in the order of ``ids``; None if some id has no prediction."""
        f = self.predictions[self.predictions["split"] == split].set_index("id")
        if len(f) < len(ids) or not f.index.isin(ids).sum() == len(ids):
            return None
        return _probs(f.loc[ids])


def select_ref(ref: Reference, val_ids: list[str]) -> dict[str, Any]:
    """A key's entry for the val labels a probe grid's head is chosen by: ground truth is already in
    the key (the task's fingerprint and the split ids); other references by their hash."""
    if ref.source == "ground truth":
        return {"source": ref.source}
    return {"source": ref.source, "val": ids_hash(val_ids, ref.probs)}


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
    # what the grid's head is chosen by is an input of the stage, so part of its key; a student's key
    # holds the weak labels on val and test (run_student), from which its supervision's val labels follow
    if ref is not None and not (stage == "student" and "weak_eval" in inputs):
        ref_key = select_ref(ref, frame["id"].to_numpy()[splits["val"]].tolist())
        if "select_ref" in inputs:  # declared by the key's builder (floors, ceilings): it must be this one
            if inputs["select_ref"] != ref_key:
                raise RuntimeError(f"stage {stage!r}: its key declares heads chosen by {inputs['select_ref']}, "
                                   f"but they are chosen by {ref_key}")
        elif isinstance(inputs, StageKey):
            inputs = inputs.with_(select_ref=ref_key)
        else:
            inputs = dict(inputs, select_ref=ref_key)

    def build(d: Path) -> None:
        texts = frame["text"].tolist()
        x = side.features([texts[i] for i in train_idx], desc=f"embed ({side.model.name})")
        feats = {s: side.features([texts[i] for i in splits[s]], desc="embed") for s in PREDICT_SPLITS}
        fit = fit_probe(x, target, loss_fn, cfg.probe, seed, feats["val"], ref, desc=f"{stage} ({side.model.name})")
        probs = {s: predict(fit.head, feats[s]) for s in PREDICT_SPLITS}
        _save_stage(d, task, splits, probs, {"head.safetensors": fit.head.state_dict()},
                    {**fit.info, "train_wall_s": time.time() - t0, **(extra_info or {})})

    entry, hit = cache.get_or_build(stage, inputs, build)
    return load_result(stage, entry, hit, t0)


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
    return load_result(stage, entry, hit, t0)


# --------------------------------------------------------------------------- stage inputs (keys)


class KeyEnv:
    """What a method's ``key_fn`` may put in its student's key, each entry declaring what it covers.

    ``config(path)`` is the run config's value at ``path`` (covers ``path``); ``model_key(name, ...)``
    is the key of a model side (covers that side: :func:`w2sgen.reads.side_covers`). The run builds
    sides through its context; the sweep planner through its resolver (no training either way).
    ``strong`` and ``weak`` are the run's model names (``weak`` None with given weak labels);
    ``split_ids`` the ids of each split.
    """

    def __init__(self, cfg: RunConfig, model_key: Any, strong: str, weak: str | None,
                 split_ids: dict[str, list[str]]):
        self.cfg = cfg
        self._model_key = model_key
        self.strong = strong
        self.weak = weak
        self.split_ids = split_ids
        self.covers: set[str] = set()

    def dtype(self, path: str) -> str:
        """The compute dtype the config field ``path`` resolves to here (``auto``: as measured on this
        device), as the stage computes with it: a cache shared by machines never serves one's bf16
        result to another that computes in fp32. Covers ``path``."""
        from .reads import untracked
        from .train.activations import resolve_device, resolve_dtype

        return resolve_dtype(self.config(path), resolve_device(untracked(self.cfg).embed.device))

    def config(self, path: str) -> Any:
        """The value at dotted ``path`` of the run config (a section as plain dicts); covers ``path``."""
        from .config import to_dict
        from .reads import record, untracked

        node: Any = untracked(self.cfg)
        for part in path.split("."):
            node = node.get(part) if isinstance(node, dict) else getattr(node, part)
        record(path)
        self.covers.add(path)
        return to_dict(node) if dataclasses.is_dataclass(node) else node

    def model_key(self, name: str, layer: int | None = None, *, mode: str | None = None) -> str:
        """The key of model ``name``'s side as the run builds it (``mode``: a side under that mode,
        e.g. "probe" for frozen features in a finetune run; default the run's); covers the side."""
        from .reads import side_covers, untracked

        key = self._model_key(name, layer, mode)
        self.covers |= side_covers(mode or untracked(self.cfg).mode, key)
        return key


@dataclass
class StageInputs:
    """The inputs (hence the cache keys) of one seed's stages, computed without training anything.

    ``run_seed`` and the sweep planner (``w2sgen.sweep.plan``) both build their stage inputs here,
    so their keys cannot drift apart. Every key is a :class:`StageKey` made of declared parts, and
    each part declares the config paths it covers (the run's mode and training section, a model
    side, a method's settings, what a method's ``key_fn`` adds). A student's inputs depend on the
    weak labels on transfer, i.e. on the floor's output: the planner knows them only once that
    floor is cached.
    """

    cfg: RunConfig
    base: StageKey
    split_ids: dict[str, list[str]]
    labels: np.ndarray
    splits: Splits

    def make(self, stage: str, features: str | None = None, cfg: Any = None, trains: bool = True,
             **entries: Any) -> StageKey:
        """A key: the run's base, ``stage``, a model side's key ``features`` (covering that side's
        fields) and data entries. ``cfg``: the config the stage trains under (its mode and training
        section replace the run's in the key; the same values for the run's own config).
        ``trains=False``: a stage that trains nothing (prompting) leaves the training section out."""
        from .reads import side_covers, untracked

        key = self.base
        mode = key["mode"]
        if cfg is not None:  # the side's own mode and training section (the run's, or another's)
            mode = untracked(cfg).mode
            key = StageKey({**key, "mode": mode, "train_cfg": _train_cfg(cfg)}, train_covers(mode))
        if not trains:
            key = StageKey({k: v for k, v in key.items() if k != "train_cfg"}, {"mode"})
        if features is None:
            return key.with_(stage=stage, **entries)
        return key.with_(side_covers(mode, features), stage=stage, features=features, **entries)

    def floor(self, weak_key: str) -> StageKey:
        """The weak floor: ground truth on weak_train, on the weak model's features."""
        idx = self.splits["weak_train"]
        return self.make("floor", weak_key, train_split="weak_train",
                         train=ids_hash(self.split_ids["weak_train"], self.labels[idx]), **self._gt_select())

    def ceiling(self, strong_key: str) -> StageKey:
        """The strong ceiling: ground truth on transfer, on the strong model's features."""
        idx = self.splits["transfer"]
        return self.make("ceiling", strong_key, train_split="transfer",
                         train=ids_hash(self.split_ids["transfer"], self.labels[idx]), **self._gt_select())

    def _gt_select(self) -> dict[str, Any]:
        """Probe floors and ceilings choose their heads by the val ground truth (``select_ref``)."""
        return {"select_ref": {"source": "ground truth"}} if self.base["mode"] == "probe" else {}

    def student(self, method: Any, strong_key: str, weak_transfer: Any, plan: StudentPlan | None = None,
                env: KeyEnv | None = None) -> StageKey:
        """The stage inputs of a student of ``method`` (a name, ``a+b``, or a Composite) on the weak
        labels ``weak_transfer`` (floor probs on transfer).

        Methods that need only the weak labels are keyed by what they train on (ids and targets);
        methods that need the run's models (filters on strong features, ensembles, ...) by their
        settings, what their ``key_fn`` declares (``env``: other models' keys, config fields they
        read) and the weak labels they start from, which decide everything they do. Both cover
        ``method_args.<part>`` of every part (their settings are in the key).
        """
        spec = self.spec(method)
        settings = {f"method_args.{p.method.name}" for p in spec.parts}
        if spec.needs_context:
            if env is None:
                raise ValueError(f"method {spec.name!r}: its key needs the run's models (a KeyEnv)")
            extra = spec.key_inputs(env)
            return self.make("student", strong_key, trains=spec.trains, method=spec.name, settings=spec.settings(),
                             train_split="transfer", **({"declared": extra} if extra else {}),
                             weak=ids_hash(self.split_ids["transfer"], np.asarray(weak_transfer, dtype=np.float32))
                             ).with_(settings | env.covers)
        plan = plan or self.student_plan(spec, weak_transfer)
        return self.make("student", strong_key, method=plan.method.name, settings=plan.method.settings(),
                         train_split="transfer", train=ids_hash(plan.ids, plan.target)).with_(settings)

    def spec(self, method: Any):
        """``method`` as a checked Composite (names, ``a+b``, with the run's method settings)."""
        from .methods.compose import Composite, parse

        return method if isinstance(method, Composite) else parse(method, self.cfg.method_args, self.cfg.mode)

    def student_plan(self, method: Any, weak_transfer: Any, ctx: Any = None) -> StudentPlan:
        """What a student trains on: each part's config resolved from the weak labels (``prepare``)
        and the transfer examples kept with their targets. The ``select`` parts chain in the order
        written: each one sees only the examples the previous ones kept (with their targets)."""
        from .methods.compose import Composite, Part

        spec = self.spec(method)
        weak_transfer = np.asarray(weak_transfer, dtype=np.float32)
        # every part but the loss resolves from the weak labels on transfer; the loss from what the
        # student trains on, after the select parts (e.g. window's radius over the examples kept)
        parts = [p if p.method.kind == "loss" else Part(p.method, p.method.prepare(p.cfg, weak_transfer))
                 for p in spec.parts]
        spec = Composite(spec.name, parts)
        pos = np.arange(len(weak_transfer))  # transfer positions still kept
        target = weak_transfer.copy()
        selected: dict[str, Any] = {}  # facts the select parts report, for train.json
        for p in spec.of_kind("select"):
            k, t = p.method.select(p.cfg, target[pos], ctx, info=selected, positions=pos)
            target[pos] = t
            pos = pos[k]
        ids = [self.split_ids["transfer"][i] for i in pos]
        spec = Composite(spec.name, [Part(p.method, p.method.prepare(p.cfg, target[pos])) if p.method.kind == "loss"
                                     else p for p in spec.parts])
        loss = spec.loss
        return StudentPlan(spec, spec, ids, self.splits["transfer"][pos], target[pos],
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
    """Extra facts written to the student's train.json (numpy arrays in it go to arrays.npz)."""
    supervision: Any = None
    """The StageResult whose transfer probabilities are the student's weak labels."""


def _train_cfg(cfg: RunConfig) -> dict[str, Any]:
    """The training config part of stage keys; ``finetune.checkpoint_every`` does not change results."""
    if cfg.mode == "probe":
        return to_dict(cfg.probe)
    return {k: v for k, v in to_dict(cfg.finetune).items() if k != "checkpoint_every"}


def train_covers(mode: str) -> frozenset[str]:
    """The config paths the base key's training entries cover: the mode and its training section."""
    return frozenset({"mode", "probe" if mode == "probe" else "finetune"})


def stage_inputs(cfg: RunConfig, seed: int, task: TaskData, splits: Splits) -> StageInputs:
    """The stage-input builder of one seed of ``cfg`` on ``task`` split as ``splits``."""
    from .reads import untracked

    plain = untracked(cfg)
    frame = task.frame
    ids = frame["id"].to_numpy()
    split_ids = {s: ids[splits[s]].tolist() for s in SPLITS}
    predict_hash = ids_hash([i for s in PREDICT_SPLITS for i in split_ids[s]])
    base = StageKey({"protocol": PROTOCOL_VERSION, "task": task.fingerprint(), "mode": plain.mode, "seed": seed,
                     "predict": predict_hash, "train_cfg": _train_cfg(plain)}, train_covers(plain.mode))
    return StageInputs(cfg, base, split_ids, frame["label"].to_numpy(), splits)

# --------------------------------------------------------------------------- one run


def run_seed(cfg: RunConfig, seed: int, task: TaskData, splits: Splits, weak: ModelSide | None,
             strong: ModelSide, cache: StageCache, given_labels: dict[str, np.ndarray] | None = None
             ) -> dict[str, Any]:
    """All stages of one seed; returns the run record (metrics, keys, timings).

    Every stage reads the config through a tracked copy (:mod:`w2sgen.reads`), so a stage whose key
    misses a field it read fails before its entry is written. Methods see the run through a
    firewalled context (no ground truth of transfer, val or test); the ground-truth analyses of
    their records run here, after each method has returned (``students.<name>.analysis``).
    """
    from .reads import tracked

    cfg = tracked(cfg)
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
    students, n_train, specs = {}, {}, {}
    for name in cfg.methods:
        t_m = time.time()
        st, n, spec = run_student(ctx, name, weak_transfer)
        st = dataclasses.replace(st, wall_s=time.time() - t_m)  # the whole method, intermediate stages too
        n_train[spec.name] = n
        students[spec.name] = st
        specs[spec.name] = spec

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
        b["uses_ground_truth"] = specs[name].uses_ground_truth
        s_test = b["test"]
        b["pgr_acc"] = metrics.pgr(w["acc"], s_test["acc"], c["acc"])
        if weak_test is not None:
            b["test"].update(metrics.agreement_split(y["test"], weak_test, st.probs("test", split_ids["test"])))
        b["analysis"] = analyze_student(ctx, specs[name], st)
        record["students"][name] = b
    record["wall_s"] = round(time.time() - t_run, 3)
    record["_stages"] = {"weak": floor, "ceiling": ceiling, **{f"student-{k}": v for k, v in students.items()}}
    return record


def run_student(ctx: Any, method: Any, weak_transfer: np.ndarray) -> tuple[StageResult, int, Any]:
    """Train (or load) the student of ``method`` (a name, ``a+b`` or a Composite); returns it, its
    training-set size and the parsed Composite.

    The parts apply in kind order: a ``labels`` part replaces the supervision, ``select`` parts
    filter or relabel, the ``loss`` part gives the objective, a ``train`` part trains (else the
    default student); an ``alone`` method makes its predictions by itself. The whole pipeline runs
    in one recorded scope whose covers are the student's key: a cached student skips it, so its
    key must hold everything the pipeline read. The method's hooks get a firewalled context.
    """
    from . import reads

    keys = ctx.keys
    with reads.scope(f"student {getattr(method, 'name', method)}") as sc:
        spec = keys.spec(method)  # parsed inside the scope: the parts' settings are recorded reads
        inputs = keys.student(spec, ctx.strong.key, weak_transfer, env=ctx.key_env())
        # the weak labels on val choose a student's head (probe grid) and checkpoint (early_stop), and a
        # labels method carries the supervision's val/test predictions: inputs of every student
        inputs = inputs.with_(weak_eval=weak_eval(ctx))
        sc.name = f"student {spec.name}"
        sc.covers |= inputs.covers
        if spec.needs_context:
            from .store.cache import stage_key

            hit = ctx.cache.get("student", stage_key(inputs))
            if hit is not None:  # the whole pipeline is cached: skip its intermediate stages
                st = load_result("student", hit, True, time.time())
                return st, int(st.info.get("n_train", 0)), spec
        mctx = ctx.for_method(spec)
        st, n = _run_parts(mctx, spec, inputs, weak_transfer)
    if mctx.refused:  # the method caught the firewall's error and went on: the run still fails
        raise W2SError(mctx.refused[0])
    return st, n, spec


def weak_eval(ctx: Any) -> list[str | None]:
    """A student key's entry for the weak labels on val and test (None where given labels lack them):
    a student's probe head and early_stop's checkpoint are chosen by them, and a labels method
    carries the supervision's val/test predictions."""
    return weak_eval_of(ctx.floor, ctx.keys.split_ids)


def weak_eval_of(floor: StageResult, split_ids: dict[str, list[str]]) -> list[str | None]:
    """:func:`weak_eval` from the floor's (or given labels') predictions and the split ids."""
    probs = [floor.probs(s, split_ids[s]) for s in ("val", "test")]
    return [None if p is None else ids_hash(split_ids[s], p) for s, p in zip(("val", "test"), probs)]


def _run_parts(ctx: Any, spec: Any, inputs: StageKey, weak_transfer: np.ndarray) -> tuple[StageResult, int]:
    keys = ctx.keys
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
        # the supervision's val/test predictions, scored against ground truth by the protocol later
        info["supervisor"] = {"probs": {s: supervision.probs(s, ctx.ids(s)) for s in ("val", "test")}}
        # a labels method's facts (e.g. bootstrap's "ladder", ensemble's "ensemble") reach train.json
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


def analyze_student(ctx: Any, spec: Any, st: StageResult) -> dict[str, Any]:
    """The ground-truth analyses of a student's record, computed here, after the method returned.

    ``supervisor``: accuracy and AUROC of a ``labels`` part's supervision on val and test; then each
    part's ``analyze_fn(cfg, student, truth, ctx)`` with ``truth`` = ground-truth labels by split and
    the run's (unguarded) context, e.g. early stopping's oracle checkpoint, the weak labels' accuracy
    on the examples a filter dropped and kept, the bootstrap rungs' accuracies.
    """
    truth = {s: ctx.labels_of(s) for s in PREDICT_SPLITS}
    out: dict[str, Any] = {}
    arrays = st.arrays
    sup = {s: arrays.get(f"supervisor/probs/{s}") for s in ("val", "test")}
    if all(v is not None for v in sup.values()):
        out["supervisor"] = {s: metrics.summarize(truth[s], p) for s, p in sup.items()}
    out.update(part_analyses(spec, st, truth, ctx))
    return out


def part_analyses(spec: Any, st: Any, truth: Any, ctx: Any) -> dict[str, Any]:
    """Each part's ``analyze_fn(cfg, student, truth, ctx)`` result (those that return one), by method name."""
    out: dict[str, Any] = {}
    for p in spec.parts:
        if p.method.analyze_fn is not None:
            res = p.method.analyze_fn(p.cfg, st, truth, ctx)
            if res:
                out[p.method.name] = res
    return out


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

