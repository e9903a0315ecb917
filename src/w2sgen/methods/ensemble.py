"""``ensemble``: several weak supervisors (more weak models, more seeds) combined into one set of labels."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import W2SError
from .base import Method

COMBINE = ("mean", "confidence")


@dataclass
class EnsembleConfig:
    models: list[str] = field(default_factory=list)
    """Extra weak models (short names, hub ids or directories), each a floor on weak_train; [] means
    only the run's weak model."""
    seeds: list[int] = field(default_factory=list)
    """Extra seeds of each weak model (the run's own seed is always in; listing it again adds nothing)."""
    combine: str = "mean"
    """How the supervisors' probabilities combine: mean (average) or confidence (per example, each
    supervisor weighted by 1 − H(p)/log K)."""

    def __post_init__(self) -> None:
        if self.combine not in COMBINE:
            raise W2SError(f"method 'ensemble': combine must be one of {', '.join(COMBINE)}, got {self.combine!r}")
        if isinstance(self.models, str) or not all(isinstance(m, str) and m for m in self.models):
            raise W2SError(f"method 'ensemble': models must be a list of model names, got {self.models!r}")
        if isinstance(self.seeds, (str, int)) or not all(isinstance(s, int) and not isinstance(s, bool)
                                                         for s in self.seeds):
            raise W2SError(f"method 'ensemble': seeds must be a list of integers, got {self.seeds!r}")
        if len(set(self.models)) != len(self.models) or len(set(self.seeds)) != len(self.seeds):
            raise W2SError("method 'ensemble': models and seeds must not repeat an entry; list each once")


def confidence_weights(probs: np.ndarray) -> np.ndarray:
    """Per-example weights of J supervisors from their confidence. probs (J, N, K) -> weights (J, N).

    c_j(i) = 1 − H(p_j(i)) / log K, H(p) = −Σ_k p_k log p_k (0 log 0 = 0), so c = 1 for a one-hot
    prediction and 0 for the uniform one; w_j(i) = c_j(i) / Σ_j' c_j'(i), and w_j(i) = 1/J where
    every supervisor is uniform (Σ_j' c_j'(i) = 0).
    """
    p = np.asarray(probs, dtype=np.float64)
    J, _, K = p.shape
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    conf = np.clip(1.0 + plogp.sum(-1) / np.log(K), 0.0, 1.0)  # (J, N)
    total = conf.sum(0)  # (N,)
    w = np.full_like(conf, 1.0 / J)
    ok = total > 0
    w[:, ok] = conf[:, ok] / total[ok]
    return w


def combine(probs: np.ndarray, mode: str = "mean") -> np.ndarray:
    """The ensemble's probabilities. probs (J, N, K) -> (N, K) float32.

    mean      : p(i) = (1/J) Σ_j p_j(i)
    confidence: p(i) = Σ_j w_j(i) p_j(i) / Σ_j w_j(i), w from :func:`confidence_weights`
    (computed in float64 so that J identical supervisors give back exactly their probabilities).
    """
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 3 or len(p) == 0:
        raise ValueError(f"combine: expected probs of shape (J, N, K) with J >= 1, got {p.shape}")
    if mode == "mean":
        out = p.mean(0)
    elif mode == "confidence":
        w = confidence_weights(p)  # (J, N)
        out = (w[..., None] * p).sum(0) / w.sum(0)[:, None]
    else:
        raise ValueError(f"combine: mode {mode!r} is not one of {COMBINE}")
    return out.astype(np.float32)


def _key(cfg: EnsembleConfig, env: Any) -> dict[str, Any]:
    """The extra supervisors' models: the weak model (extra seeds) and each extra model."""
    weak = env.model_key(env.weak, env.cfg.embed.weak_layer) if cfg.seeds and env.weak is not None else None
    return {"weak": weak, "models": [env.model_key(m) for m in cfg.models]}


def _supervise(cfg: EnsembleConfig, ctx: Any):
    from ..protocol import PREDICT_SPLITS

    members: list[tuple[str, int, Any]] = [(ctx.weak.model.name if ctx.weak is not None else "given", ctx.seed,
                                            ctx.floor)]
    seeds = [s for s in cfg.seeds if s != ctx.seed]
    if seeds and ctx.weak is None:
        raise W2SError("method 'ensemble': seeds need the run's weak model; with --weak-labels use models only")
    for s in seeds:
        members.append((ctx.weak.model.name, s, ctx.floor_of(ctx.weak, s)))
    for m in cfg.models:
        side = ctx.side(m)
        for s in [ctx.seed, *seeds]:
            members.append((m, s, ctx.floor_of(side, s)))
    probs: dict[str, np.ndarray] = {}
    for split in PREDICT_SPLITS:
        per = []
        for name, s, st in members:
            p = st.probs(split, ctx.ids(split))
            if p is None:
                raise W2SError(f"method 'ensemble': supervisor {name} (seed {s}) has no predictions on {split}; "
                               "given weak labels must cover transfer, val and test")
            per.append(p)
        probs[split] = combine(np.stack(per), cfg.combine)  # (N_split, K)
    # each supervisor's test predictions (arrays.npz), scored against ground truth by the protocol
    info = {"ensemble": {
        "combine": cfg.combine,
        "supervisors": [{"model": name, "seed": s, "test": st.probs("test", ctx.ids("test"))}
                        for name, s, st in members],
    }}
    return ctx.probs_stage("ensemble", probs, info)


def _analyze(cfg: EnsembleConfig, student: Any, truth: dict[str, np.ndarray], ctx: Any) -> dict[str, Any]:
    """Each supervisor's test accuracy, and the combined labels' (the supervision's)."""
    from .context import split_accuracy

    a = student.arrays
    sups = student.info.get("ensemble", {}).get("supervisors", [])
    return {"supervisors": [{"model": m["model"], "seed": m["seed"],
                             "test_acc": split_accuracy(truth, a.get(f"ensemble/supervisors/{j}/test"))}
                            for j, m in enumerate(sups)],
            "test_acc": split_accuracy(truth, a.get("supervisor/probs/test"))}


METHOD = Method(
    name="ensemble",
    description="Weak labels from several weak supervisors (extra models and seeds), averaged or confidence-weighted.",
    config_cls=EnsembleConfig,
    kind="labels",
    supervise_fn=_supervise,
    key_fn=_key,
    analyze_fn=_analyze,
)
