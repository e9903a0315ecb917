"""The stage graph of a sweep: which stages its runs need, shared across runs, and what is cached.

Each run (task, weak, strong, mode, seed) needs a floor (weak model), a ceiling (strong model) and
one student per method. The inputs, hence the cache keys, come from ``protocol.stage_inputs`` —
the very builder ``run_seed`` uses — so a floor shared by several runs (same weak model, task,
split and seed) has one key and is trained once. A student's key depends on its floor's output:
while the floor is not cached the student is identified by its floor and settings instead
(``student?<hash>``), which identifies the same stage.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..config import RunConfig, to_dict
from ..store.cache import StageCache, stage_key
from .grid import run_label

KINDS = ("floor", "ceiling", "student")


@dataclass
class PlannedStage:
    """One unique stage of the sweep."""

    kind: str
    """floor, ceiling or student."""
    ident: str
    """``<kind>/<key>``; for a student whose floor is not cached yet, ``student?<hash>``."""
    key: str | None
    """The stage-cache key, when known."""
    cached: bool
    runs: list[int] = field(default_factory=list)
    """Indices of the runs that need it."""
    after: str | None = None
    """The ident of the stage it depends on (a student's floor)."""
    wall_s: float | None = None
    """Training time of a cached stage (from its train.json)."""


@dataclass
class Embeds:
    """The texts one model side embeds over a plan's runs (probe mode), and how many the cache lacks."""

    model: str
    texts: set[str] = field(default_factory=set)
    """sha1 of each text (``activations.text_key``)."""
    missing: int = 0


@dataclass
class Plan:
    """Runs, their stages (unique across runs) and which of those the cache holds."""

    runs: list[RunConfig]
    stages: dict[str, PlannedStage]
    run_stages: list[list[str]]
    embeds: dict[str, Embeds] = field(default_factory=dict)
    """Probe mode: per features entry (a model side's key), the texts that the stages still to build
    embed (a cached stage embeds nothing)."""

    @property
    def total(self) -> int:
        """Stages summed over runs (what the runs would train without sharing)."""
        return sum(len(s) for s in self.run_stages)

    @property
    def unique(self) -> int:
        return len(self.stages)

    @property
    def cached(self) -> int:
        return sum(s.cached for s in self.stages.values())

    def counts(self) -> dict[str, dict[str, int]]:
        """Per kind: unique stages, cached, left."""
        out = {}
        for kind in KINDS:
            st = [s for s in self.stages.values() if s.kind == kind]
            done = sum(s.cached for s in st)
            out[kind] = {"unique": len(st), "cached": done, "left": len(st) - done}
        return out

    def estimate_s(self, cold: bool = False) -> float | None:
        """Seconds of training left: stages left × the mean train time of cached stages of their kind
        (of any kind where none of that kind is cached); None when nothing is cached. ``cold``: the
        whole plan from an empty cache, i.e. that plus the recorded train times of the cached stages."""
        walls = [s for s in self.stages.values() if s.cached and s.wall_s is not None]
        if not walls:
            return None
        overall = sum(s.wall_s for s in walls) / len(walls)  # type: ignore[misc]
        total = sum(s.wall_s for s in walls) if cold else 0.0  # type: ignore[misc]
        for kind, c in self.counts().items():
            w = [s.wall_s for s in walls if s.kind == kind]
            left = c["left"] + (c["cached"] - len(w) if cold else 0)  # cold: cached stages with no recorded time too
            total += left * (sum(w) / len(w) if w else overall)  # type: ignore[arg-type]
        return total

    def to_dict(self) -> dict[str, Any]:
        return {"runs": len(self.runs), "stages_total": self.total, "stages_unique": self.unique,
                "stages_cached": self.cached, "by_kind": self.counts(), "estimate_s": self.estimate_s()}


class _Resolver:
    """Loads tasks, splits and model keys once per distinct setting (planning trains nothing)."""

    def __init__(self, cache: StageCache):
        self.cache = cache
        self.tasks: dict[str, Any] = {}
        self.sides: dict[str, Any] = {}

    def task(self, cfg: RunConfig):
        from ..tasks import load_task

        k = json.dumps([cfg.task, cfg.data_dir, cfg.text_col, cfg.label_col, cfg.group_col])
        if k not in self.tasks:
            self.tasks[k] = load_task(cfg.task, cfg.data_dir, cfg.text_col, cfg.label_col, cfg.group_col)
        return self.tasks[k]

    def model_key(self, cfg: RunConfig, name: str, layer: int | None) -> str:
        """The model part of stage keys, exactly as ``api.run`` builds it (``side_for(...).key``)."""
        from ..models import resolve_model
        from ..protocol import side_for

        k = json.dumps([name, layer, cfg.mode, to_dict(cfg.embed), to_dict(cfg.finetune)], default=str)
        if k not in self.sides:
            self.sides[k] = side_for(resolve_model(name), layer, cfg, self.cache.root).key
        return self.sides[k]


def _wall(entry: Path) -> float | None:
    try:
        info = json.loads((entry / "train.json").read_text())
        v = info.get("train_wall_s")
        return float(v) if isinstance(v, (int, float)) else None
    except (OSError, ValueError):
        return None


def make_plan(runs: list[RunConfig], cache_dir: str | Path | None = None) -> Plan:
    """The unique stages of ``runs`` and their cache state (loads tasks and model fingerprints only)."""
    from ..methods.compose import parse
    from ..protocol import StageResult, stage_inputs, weak_eval_of
    from ..tasks.splits import SPLITS, make_splits
    from ..train.activations import text_key

    cache = StageCache(cache_dir)
    res = _Resolver(cache)
    stages: dict[str, PlannedStage] = {}
    run_stages: list[list[str]] = []
    embeds: dict[str, Embeds] = {}

    def add(kind: str, ident: str, key: str | None, run: int, after: str | None = None) -> str:
        if ident not in stages:
            entry = cache.get(kind, key) if key else None
            stages[ident] = PlannedStage(kind, ident, key, entry is not None, after=after,
                                         wall_s=_wall(entry) if entry is not None else None)
        stages[ident].runs.append(run)
        return ident

    for r, cfg in enumerate(runs):
        seed = cfg.seeds[0]
        task = res.task(cfg)
        splits = make_splits(task, cfg.splits, seed)
        si = stage_inputs(cfg, seed, task, splits)
        strong_key = res.model_key(cfg, cfg.strong, cfg.embed.strong_layer)
        weak_key = res.model_key(cfg, cfg.weak, cfg.embed.weak_layer)
        fkey = stage_key(si.floor(weak_key))
        floor = add("floor", f"floor/{fkey}", fkey, r)
        ids = [floor, add("ceiling", f"ceiling/{stage_key(si.ceiling(strong_key))}",
                          stage_key(si.ceiling(strong_key)), r)]
        weak_transfer = None
        if stages[floor].cached:
            import pandas as pd

            preds = pd.read_parquet(cache.path("floor", fkey) / "predictions.parquet")
            floor_st = StageResult("floor", preds, {}, True, fkey, 0.0)
            weak_transfer = floor_st.probs("transfer", si.split_ids["transfer"])
        env = _key_env(res, cfg, si)
        for m in cfg.methods:
            name = parse(m, cfg.method_args, cfg.mode).name
            if weak_transfer is not None:
                key = stage_key(si.student(name, strong_key, weak_transfer, env=env)
                                .with_(weak_eval=weak_eval_of(floor_st, si.split_ids)))  # as run_student's
                ids.append(add("student", f"student/{key}", key, r, after=floor))
            else:
                # the same stage as the key run_seed will compute: base inputs, method, strong model, floor
                sym = stage_key({**si.base, "stage": "student", "method": name, "features": strong_key,
                                 "method_args": cfg.method_args.get(name), "after": floor})
                ids.append(add("student", f"student?{sym}", None, r, after=floor))
        run_stages.append(ids)
        if cfg.mode == "probe":  # a floor it builds embeds every split with the weak model; a ceiling or
            text = task.frame["text"].to_numpy()  # student it builds, transfer, val and test with the strong one
            builds = [(strong_key, cfg.strong, SPLITS[1:], not all(stages[i].cached for i in ids[1:]))]
            if cfg.weak and not cfg.weak_labels:
                builds.append((weak_key, cfg.weak, SPLITS, not stages[floor].cached))
            for side, model, names, built in builds:
                if built:
                    rows = np.concatenate([splits[n] for n in names])
                    embeds.setdefault(side, Embeds(model)).texts.update(text_key(t) for t in text[rows])
    for side, e in embeds.items():
        e.missing = len(e.texts - _stored(cache.root / "features" / side))
    return Plan(runs, stages, run_stages, embeds)


def _stored(d: Path) -> set[str]:
    """The text keys a features entry holds (empty when there is none); read only, nothing created."""
    out: set[str] = set()
    for kf in d.glob("*.keys.json") if d.is_dir() else ():
        try:
            out.update(json.loads(kf.read_text()))
        except (OSError, ValueError):
            continue
    return out


def _key_env(res: _Resolver, cfg: RunConfig, si: Any) -> Any:
    """The KeyEnv of a planned run: the same model keys ``run_seed``'s context gives methods."""
    from ..models import resolve_model
    from ..protocol import KeyEnv
    from ..reads import with_changes

    def model_key(name: str, layer: int | None, mode: str | None) -> str:
        c = cfg if mode is None or mode == cfg.mode else with_changes(cfg, mode=mode)
        return res.model_key(c, name, layer)

    weak = resolve_model(cfg.weak).name if cfg.weak and not cfg.weak_labels else None
    return KeyEnv(cfg, model_key, resolve_model(cfg.strong).name, weak, si.split_ids)


def _duration(s: float) -> str:
    if s < 90:
        return f"{s:.0f}s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


def format_plan(plan: Plan, cache_root: str | Path | None = None) -> str:
    """The dry-run text: runs, unique stages, what is cached, the work left."""
    lines = [f"runs: {len(plan.runs)}"]
    for cfg, ids in zip(plan.runs, plan.run_stages):
        done = sum(plan.stages[i].cached for i in ids)
        lines.append(f"  {run_label(cfg)}: {len(ids)} stages, {done} cached")
    lines.append(f"stages: {plan.total} over runs, {plan.unique} unique (shared: {plan.total - plan.unique}), "
                 f"{plan.cached} cached, {plan.unique - plan.cached} left")
    lines.append(f"  {'kind':<8} {'unique':>6} {'cached':>6} {'left':>6}")
    for kind, c in plan.counts().items():
        lines.append(f"  {kind:<8} {c['unique']:>6} {c['cached']:>6} {c['left']:>6}")
    est = plan.estimate_s()
    left = plan.unique - plan.cached
    if not left:
        lines.append("work left: none (every stage is cached; a run only writes its results)")
    elif est is None:
        lines.append(f"work left: {left} stages; no time estimate (no cached stage with a recorded train time)")
    else:
        lines.append(f"work left: {left} stages, about {_duration(est)} (from cached stages' recorded times, "
                     "which include the embedding a stage did when it was built; model loading not counted)")
    cold = plan.estimate_s(cold=True) if plan.cached else None
    if cold is not None:
        lines.append(f"from an empty stage cache: about {_duration(cold)} (the recorded times of the {plan.cached} "
                     "cached stages, their kind's mean for the rest; a stage's time includes the embedding it did, "
                     "and features already cached when it was built cost it nothing)")
    for e in plan.embeds.values():
        lines.append(f"embedding: {e.model}: {len(e.texts):,} texts, "
                     + (f"{e.missing:,} not in the activation cache" if e.missing else "all cached"))
    if any(e.missing for e in plan.embeds.values()):
        lines.append("  (texts the stages still to build embed; in probe mode embedding is most of a cold run's time; "
                     "the methods' own extra models, such as bootstrap's rungs, are not counted)")
    if cache_root is not None:
        lines.append(f"stage cache: {Path(cache_root) / 'stages'}")
    return "\n".join(lines)
