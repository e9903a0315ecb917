"""A planted task for the tests of each method's scientific effect.

The truth is a known function of the strong model's features, the weak labels err by a known rule,
and the real protocol (``w2sgen.protocol.run_seed``, probe mode) trains the real methods on it: the
models are ``ModelSide`` objects whose feature store already holds the planted vectors (texts
``ex-0``, ``ex-1``, ...), so no backbone is ever loaded. Rules of the weak labels:

* ``flips``: random flips at a rate, each flipped label as confident as a correct one (confident
  errors: nothing in the label tells it is wrong); the weak labels are given (``--weak-labels``).
* ``systematic``: the weak model is wrong wherever a feature it lacks (the strong model has it) is
  high; given labels too.
* trained weak floors (``weak_features``): each weak model sees the truth through its own bias, a
  strong feature it over-weights; independent models have independent biases.

Splits are contiguous blocks of a shuffled frame (weak_train, transfer, val, test), built directly
(no split guard), so the tests do not depend on SplitConfig defaults.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from w2sgen.config import ProbeConfig, RunConfig
from w2sgen.models.registry import ResolvedModel
from w2sgen.protocol import ModelSide, run_seed
from w2sgen.store.cache import StageCache
from w2sgen.tasks.base import TaskData
from w2sgen.tasks.splits import SPLITS, Splits


def probe(epochs: int = 40, weight_decay: float = 1e-4, **kw: Any) -> ProbeConfig:
    """The heads' recipe of these tests: a linear head, light weight decay (one value, in whichever
    form ProbeConfig takes it: a float, or a list of candidates to select from)."""
    cfg = ProbeConfig(epochs=epochs, **kw)
    wd = [weight_decay] if isinstance(cfg.weight_decay, (list, tuple)) else weight_decay
    return dataclasses.replace(cfg, weight_decay=wd)


class PlantedStore:
    """What a ModelSide reads of its FeatureStore (``key``, ``missing``, ``get``), from memory."""

    def __init__(self, name: str, texts: list[str], feats: np.ndarray):
        self.feats = np.asarray(feats, dtype=np.float32)  # (N, C)
        self.row = {t: i for i, t in enumerate(texts)}
        self.key = hashlib.sha256(name.encode() + self.feats.tobytes()).hexdigest()[:20]
        self.meta = {"model": name, "planted": self.key}

    def missing(self, texts: list[str]) -> list[str]:
        unknown = [t for t in texts if t not in self.row]
        if unknown:
            raise KeyError(f"planted store: no features for {unknown[:3]}")
        return []

    def get(self, texts: list[str]) -> np.ndarray:
        return self.feats[[self.row[t] for t in texts]]

    @property
    def dim(self) -> int:
        return int(self.feats.shape[1])


def planted_side(name: str, texts: list[str], feats: np.ndarray, cfg: RunConfig, cache_root: Path) -> ModelSide:
    """A probe-mode ModelSide of model ``name`` whose activations are ``feats`` (N, C), row i = ``texts[i]``."""
    store = PlantedStore(name, texts, feats)
    side = ModelSide(ResolvedModel(name, f"planted/{name}", "encoder", "mean", -1), -1, "mean", cfg, cache_root)
    side._meta = dict(store.meta)
    side._store = store
    side._ready = True
    side.device, side.dtype = "cpu", "fp32"
    side._key = store.key  # what ModelSide.meta would set from the meta (versions that key sides by it)
    try:  # ... and the side's identity read, where stage keys are built from recorded reads
        from w2sgen.reads import side_ident

        side._reads.add(side_ident(store.key))
    except (ImportError, AttributeError):
        pass
    return side


@dataclass
class Planted:
    """A planted task: frame, splits, truth, the strong features and the weak supervision."""

    task: TaskData
    splits: Splits
    y: np.ndarray
    """(N,) the truth."""
    strong: np.ndarray
    """(N, C) the strong model's features."""
    weak_labels: np.ndarray | None = None
    """(N, 2) given weak probabilities (None: weak floors are trained on ``weak_features``)."""
    wrong: np.ndarray | None = None
    """(N,) where the given weak labels are wrong."""
    weak_features: dict[str, np.ndarray] = field(default_factory=dict)
    """Weak models' features by name; the first is the run's weak model."""

    @property
    def texts(self) -> list[str]:
        return self.task.frame["text"].tolist()

    def rows(self, split: str) -> np.ndarray:
        return self.splits[split]


SIZES = {"weak_train": 300, "transfer": 400, "val": 200, "test": 600}


def _frame(n: int, y: np.ndarray) -> TaskData:
    ids = [f"ex-{i}" for i in range(n)]
    frame = pd.DataFrame({"id": ids, "text": ids, "label": y, "group": ids, "pool": "train"})
    return TaskData("planted", frame)


def _splits(sizes: dict[str, int], seed: int) -> Splits:
    bounds = np.cumsum([0, *(sizes[s] for s in SPLITS)])
    return Splits({s: np.arange(bounds[i], bounds[i + 1]) for i, s in enumerate(SPLITS)}, seed)


def _truth_features(rng: np.random.Generator, n: int, margin: float, noise_dims: int) -> tuple[np.ndarray, np.ndarray]:
    """y (N,) balanced; strong features (N, 1 + noise_dims): column 0 = (2y − 1) · margin + N(0, 1),
    the others N(0, 1). The truth is the sign of column 0 (up to its noise)."""
    y = rng.permutation(np.arange(n) % 2)
    x = rng.normal(size=(n, 1 + noise_dims))
    x[:, 0] += (2 * y - 1) * margin
    return y, x


def _given(hard: np.ndarray, confidence: float) -> np.ndarray:
    """(N, 2) probabilities with ``confidence`` on the hard label."""
    p1 = np.where(hard == 1, confidence, 1 - confidence)
    return np.stack([1 - p1, p1], axis=1).astype(np.float32)


def flips(seed: int, rate: float = 0.25, margin: float = 3.0, noise_dims: int = 10, confidence: float = 0.9,
          sizes: dict[str, int] | None = None) -> Planted:
    """Random flips at ``rate`` (on every split), each as confident as a correct label."""
    sizes = sizes or SIZES
    n = sum(sizes.values())
    rng = np.random.default_rng([seed, 1])
    y, x = _truth_features(rng, n, margin, noise_dims)
    wrong = rng.random(n) < rate
    return Planted(_frame(n, y), _splits(sizes, seed), y, x, _given(np.where(wrong, 1 - y, y), confidence), wrong)


def systematic(seed: int, margin: float = 3.0, noise_dims: int = 10, cut: float = 0.8, confidence: float = 0.9,
               stripes: float = 0.0, sizes: dict[str, int] | None = None) -> Planted:
    """The weak model errs by a rule on column 1 of the strong features (u ~ N(0, 1), a feature it
    lacks), on both classes, with confident errors: wherever u > ``cut`` (≈ 21% of examples at
    0.8), or, with ``stripes`` = k > 0, wherever frac(k · u) < 0.25 (≈ 25%, in narrow bands of u:
    a rule a student learns only late, like noise)."""
    sizes = sizes or SIZES
    n = sum(sizes.values())
    rng = np.random.default_rng([seed, 2])
    y, x = _truth_features(rng, n, margin, noise_dims)
    wrong = np.mod(stripes * x[:, 1], 1.0) < 0.25 if stripes > 0 else x[:, 1] > cut
    return Planted(_frame(n, y), _splits(sizes, seed), y, x, _given(np.where(wrong, 1 - y, y), confidence), wrong)


def biased_supervisors(seed: int, models: int = 3, bias: float = 1.2, margin: float = 1.0, spread: float = 0.3,
                       sizes: dict[str, int] | None = None) -> Planted:
    """Strong features (s, u_1..u_M): s = (2y − 1) · margin + N(0, spread²) separates the truth, u_j ~ N(0, 1).
    Weak model j sees only s + bias · u_j (and two noise columns): its floor, trained on ground
    truth, is wrong where bias · u_j outweighs s — systematic errors along u_j, which the strong
    student can imitate. The M biases are independent."""
    sizes = sizes or SIZES
    n = sum(sizes.values())
    rng = np.random.default_rng([seed, 3])
    y = rng.permutation(np.arange(n) % 2)
    s = (2 * y - 1) * margin + rng.normal(size=n) * spread
    u = rng.normal(size=(n, models))
    strong = np.column_stack([s, u])
    weak = {f"planted-weak{j}": np.column_stack([s + bias * u[:, j], rng.normal(size=(n, 2))]) for j in range(models)}
    return Planted(_frame(n, y), _splits(sizes, seed), y, strong, weak_features=weak)


def same_model(seed: int, margin: float = 1.0, sizes: dict[str, int] | None = None) -> Planted:
    """Weak and strong are the same model (identical features): the ceiling cannot beat the floor."""
    sizes = sizes or SIZES
    n = sum(sizes.values())
    rng = np.random.default_rng([seed, 4])
    y, x = _truth_features(rng, n, margin, 4)
    return Planted(_frame(n, y), _splits(sizes, seed), y, x, weak_features={"planted-weak": x.copy()})


def run(p: Planted, methods: list[str], tmp: Path, seed: int = 0, method_args: dict[str, Any] | None = None,
        probe_cfg: ProbeConfig | None = None, monkeypatch: Any = None) -> dict[str, Any]:
    """``run_seed`` on the planted task: the record (metrics, train info) with ``_stages`` (the
    StageResults: predictions). Extra weak models (ensembles) resolve through ``monkeypatch``."""
    cfg = RunConfig(task="planted", weak=next(iter(p.weak_features), "given"), strong="planted-strong",
                    methods=methods, seeds=[seed], mode="probe", out=str(tmp / "out"),
                    method_args=method_args or {}, probe=probe_cfg or probe())
    cache = StageCache(tmp / "cache")
    texts = p.texts
    strong = planted_side("planted-strong", texts, p.strong, cfg, cache.root)
    sides = {name: planted_side(name, texts, f, cfg, cache.root) for name, f in p.weak_features.items()}
    if monkeypatch is not None and sides:
        import w2sgen.methods.context as context
        import w2sgen.models as models

        real_resolve, real_side_for = models.resolve_model, context.side_for
        monkeypatch.setattr(models, "resolve_model",
                            lambda name: sides[name].model if name in sides else real_resolve(name))
        monkeypatch.setattr(context, "side_for", lambda model, layer, c, root: sides[model.name]
                            if model.name in sides else real_side_for(model, layer, c, root))
    weak = next(iter(sides.values()), None)
    given = None
    if p.weak_labels is not None:
        weak = None
        given = {i: p.weak_labels[k] for k, i in enumerate(p.task.frame["id"])}
    return run_seed(cfg, seed, p.task, p.splits, weak, strong, cache, given)


def test_acc(rec: dict[str, Any], stage: str) -> float:
    """Test accuracy of ``weak``, ``ceiling`` or a student method."""
    block = rec[stage] if stage in ("weak", "ceiling") else rec["students"][stage]
    return float(block["test"]["acc"])


def transfer_pred(rec: dict[str, Any], p: Planted, method: str) -> np.ndarray:
    """(n_transfer,) the student's predicted class on each transfer example."""
    ids = p.task.frame["id"].to_numpy()[p.rows("transfer")].tolist()
    probs = rec["_stages"][f"student-{method}"].probs("transfer", ids)
    return np.asarray(probs).argmax(1)
