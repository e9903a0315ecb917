"""Sweep YAML → RunConfigs.

A sweep config holds the grid keys below; every other key is a RunConfig field shared by all runs
(``splits``, ``probe``, ``out``, ``data_dir``, ``method_args``, ...)::

    tasks: [sst2, cities]            # or `task: sst2`; an entry may be a mapping {task: ..., data_dir: ...}
    models: [minilm-l6, mpnet-base]  # every pair i <= j (weak index <= strong index) ...
    exclude_self: false              # ... without i == j when true
    pairs: [[minilm-l6, mpnet-base]] # or explicit (weak, strong) pairs instead of `models`
    methods: [xent, logconf]
    modes: [probe]                   # or `mode: probe`
    seeds: [0, 1, 2]

One RunConfig is made per (task, pair, mode, seed), holding all methods: its stages are the
floor, the ceiling and one student per method, and its folder is ``run_dir_name(...)``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import RunConfig, from_dict, load_yaml, to_dict
from ..errors import W2SError, did_you_mean

GRID_KEYS = ("tasks", "task", "models", "pairs", "exclude_self", "methods", "modes", "mode", "seeds")


@dataclass
class SweepSpec:
    """A parsed sweep: the grid axes and the shared RunConfig defaults."""

    tasks: list[dict[str, Any]]
    """One mapping of RunConfig fields per task (at least ``task``)."""
    pairs: list[tuple[str, str]]
    """(weak, strong) model pairs."""
    methods: list[str]
    modes: list[str]
    seeds: list[int]
    defaults: dict[str, Any] = field(default_factory=dict)
    """Every other RunConfig field, shared by all runs."""
    source: str = "sweep"
    """Where the spec came from (a file name, for error messages)."""


def model_pairs(models: list[str], exclude_self: bool = False) -> list[tuple[str, str]]:
    """All (models[i], models[j]) with i <= j (i < j with ``exclude_self``), in list order."""
    return [(models[i], models[j]) for i in range(len(models)) for j in range(i, len(models))
            if not (exclude_self and i == j)]


def _names(value: Any, where: str) -> list[str]:
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not all(isinstance(v, (str, int, float)) and not isinstance(v, bool)
                                              for v in value):
        raise W2SError(f"{where}: expected a list of names, got {value!r}")
    return [str(v) for v in value]


def parse_sweep(data: dict[str, Any], source: str = "sweep") -> SweepSpec:
    """Check a sweep mapping and split it into grid axes and shared defaults."""
    run_fields = [f.name for f in dataclasses.fields(RunConfig)]
    for key in data:
        if key not in GRID_KEYS and key not in run_fields:
            raise W2SError(f"{source}: unknown field {key!r}.{did_you_mean(str(key), [*GRID_KEYS, *run_fields])}")
    for bad in ("weak", "strong", "weak_labels"):
        if bad in data:
            hint = "use `models:` or `pairs:`" if bad != "weak_labels" else "run it with `w2s run`"
            raise W2SError(f"{source}: field {bad!r} is not a sweep field; {hint}")
    if ("task" in data) == ("tasks" in data):
        raise W2SError(f"{source}: give exactly one of 'tasks' (a list) or 'task'")
    raw_tasks = data["tasks"] if "tasks" in data else [data["task"]]
    if not isinstance(raw_tasks, list) or not raw_tasks:
        raise W2SError(f"{source}: field 'tasks' must be a non-empty list")
    tasks = []
    for i, t in enumerate(raw_tasks):
        entry = {"task": str(t)} if isinstance(t, (str, int)) and not isinstance(t, bool) else t
        if not isinstance(entry, dict) or "task" not in entry:
            raise W2SError(f"{source}: tasks[{i}]: expected a name or a mapping with a 'task' field, got {t!r}")
        from_dict(RunConfig, entry, where=f"{source}: tasks[{i}]")  # field names and types
        tasks.append(dict(entry))

    if ("models" in data) == ("pairs" in data):
        raise W2SError(f"{source}: give exactly one of 'models' (all pairs i <= j) or 'pairs'")
    if "models" in data:
        models = _names(data["models"], f"{source}: field 'models'")
        exclude = data.get("exclude_self", False)
        if not isinstance(exclude, bool):
            raise W2SError(f"{source}: field 'exclude_self': expected true or false, got {exclude!r}")
        pairs = model_pairs(models, exclude)
        if not pairs:
            raise W2SError(f"{source}: field 'models' gives no pair (list at least two models, or exclude_self: false)")
    else:
        if "exclude_self" in data:
            raise W2SError(f"{source}: field 'exclude_self' applies to 'models', not 'pairs'")
        raw = data["pairs"]
        if not isinstance(raw, list) or not raw:
            raise W2SError(f"{source}: field 'pairs' must be a non-empty list of [weak, strong]")
        pairs = []
        for i, p in enumerate(raw):
            if not isinstance(p, (list, tuple)) or len(p) != 2:
                raise W2SError(f"{source}: pairs[{i}]: expected [weak, strong], got {p!r}")
            pairs.append((str(p[0]), str(p[1])))

    base = RunConfig()
    methods = _names(data.get("methods", base.methods), f"{source}: field 'methods'")
    if "mode" in data and "modes" in data:
        raise W2SError(f"{source}: give one of 'modes' (a list) or 'mode'")
    modes = _names(data["modes"] if "modes" in data else [data.get("mode", base.mode)], f"{source}: field 'modes'")
    seeds = from_dict(RunConfig, {"seeds": data.get("seeds", base.seeds)}, where=source).seeds
    defaults = {k: v for k, v in data.items() if k not in GRID_KEYS}
    from_dict(RunConfig, defaults, where=source)  # field names and types, before any work
    spec = SweepSpec(tasks, pairs, methods, modes, seeds, defaults, source)
    for axis in ("methods", "modes", "seeds"):
        if not getattr(spec, axis):
            raise W2SError(f"{source}: field {axis!r} is empty")
    return spec


def load_sweep(path: str | Path) -> SweepSpec:
    """Read a sweep YAML (safely); errors name the file and field."""
    return parse_sweep(load_yaml(path), str(path))


def expand(spec: SweepSpec, out: str | None = None) -> list[RunConfig]:
    """One validated RunConfig per (task, pair, mode, seed), all methods each; ``out`` overrides the results dir."""
    runs = []
    for task in spec.tasks:
        for weak, strong in spec.pairs:
            for mode in spec.modes:
                for seed in spec.seeds:
                    data = {**spec.defaults, **task, "weak": weak, "strong": strong, "methods": list(spec.methods),
                            "mode": mode, "seeds": [seed]}
                    if out is not None:
                        data["out"] = out
                    cfg = from_dict(RunConfig, data, where=spec.source)
                    try:
                        cfg.validate()
                    except W2SError as e:
                        raise W2SError(f"{spec.source}: {e}") from None
                    runs.append(cfg)
    return runs


def run_label(cfg: RunConfig) -> str:
    """A short human name of one run: task weak->strong mode seed."""
    return f"{Path(cfg.task).name} {Path(cfg.weak).name}->{Path(cfg.strong).name} {cfg.mode} seed{cfg.seeds[0]}"


def describe(cfg: RunConfig) -> dict[str, Any]:
    """The run's config as a plain dict (for JSON output)."""
    return to_dict(cfg)
