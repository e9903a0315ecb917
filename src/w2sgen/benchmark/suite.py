"""Benchmark suites: versioned, declarative files whose content hash is their identity.

A suite file (shipped ones live in ``w2sgen/benchmark/suites/<name>.yaml``) fixes everything a
method's result depends on except the method: the tasks and where their content comes from, each
task's split recipe (sizes; each run's seed is its split seed) with the fingerprint of the task's
content and the hash of the ids each seed's splits hold, the model pairs, the mode, the seeds and
the training settings every method shares. Fields::

    name: cpu-v1                 # the suite's name; with version, how people cite it
    version: 1
    description: ...
    mode: probe                  # probe or finetune
    reference: xent              # the method every other is compared against
    seeds: [0, 1, 2, 3, 4]
    pairs: [[minilm-l6, mpnet-base]]
    settings: {embed: ..., probe: ...}   # RunConfig fields every method shares
    tasks:
      - task: sst2
        source: local            # generated | local | hub | file
        data: sst2               # local: the folder under the data root ($W2S_DATA_DIR)
        origin: ...              # where the content was drawn from, in words
        why: ...                 # why this source (where another gives other content)
        splits: {n_weak_train: 1000, n_transfer: 2000, n_val: 300, n_test: 800}
        fingerprint: <sha256>    # TaskData.fingerprint(): ids, texts, labels, groups, pools
        examples: 9613
        split_ids: {0: <hash>, 1: <hash>, ...}   # per seed: the ids of its four splits
    quick: {seeds: [0, 1], tasks: [cities, sst2]}  # --quick: a subset, marked not comparable
    not_run: {probe_ladder: "why it cannot run on this suite"}

A task whose ``fingerprint`` is null (a hub task nobody could load where the suite was written)
has it recorded by its first run in the results directory (``benchmark.json``), and checked from
then on. The content hash covers the parsed file (not its comments or key order): change any
value and it is another suite.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ..config import RunConfig, SplitConfig, from_dict, load_yaml
from ..errors import W2SError, did_you_mean

SUITE_FIELDS = ("name", "version", "description", "mode", "reference", "seeds", "pairs", "settings", "tasks",
                "quick", "not_run")
REQUIRED = ("name", "version", "mode", "seeds", "pairs", "tasks")
TASK_FIELDS = ("task", "source", "data", "origin", "why", "hub", "splits", "fingerprint", "examples", "split_ids")
SOURCES = ("generated", "local", "hub", "file")
SETTINGS = ("embed", "probe", "finetune", "trust_remote_code")
"""RunConfig fields a suite may set for every method (what they share)."""
MODES = ("probe", "finetune")


@dataclass(frozen=True)
class SuiteTask:
    """One task of a suite: its content's source and fingerprint, its split recipe and split hashes."""

    task: str
    """A registered task name (``source: file``: a data file, relative to the suite file)."""
    source: str
    """generated (built by the package), local (release files under the data root), hub, or file."""
    splits: dict[str, Any]
    """The split recipe (SplitConfig fields: sizes, minimums); each run's seed is its split seed."""
    data: str | None = None
    """``source: local``: the task's folder under the data root."""
    origin: str = ""
    """Where the content was drawn from, in words (a package version, a release, a hub revision)."""
    why: str = ""
    """Why this source, where another one gives other content."""
    hub: dict[str, Any] | None = None
    """``source: hub``: {id, config, revision} as the task registry loads it (checked against it)."""
    fingerprint: str | None = None
    """sha256 of the task's content (``TaskData.fingerprint``); None: recorded by the first run."""
    examples: int | None = None
    split_ids: dict[int, str] = field(default_factory=dict)
    """Seed -> hash of the ids of its four splits (:func:`w2sgen.benchmark.content.split_hash`)."""

    @property
    def label(self) -> str:
        """The task's name as results show it (a data file's stem)."""
        return Path(self.task).stem if self.source == "file" else self.task


@dataclass(frozen=True)
class Suite:
    """A parsed suite file (see the module docstring)."""

    name: str
    version: int
    mode: str
    seeds: list[int]
    pairs: list[tuple[str, str]]
    tasks: list[SuiteTask]
    hash: str
    """sha256 of the suite's canonical JSON (:func:`to_data`): its identity."""
    description: str = ""
    reference: str = "xent"
    settings: dict[str, Any] = field(default_factory=dict)
    quick_seeds: list[int] = field(default_factory=list)
    quick_tasks: list[str] = field(default_factory=list)
    not_run: dict[str, str] = field(default_factory=dict)
    """Method -> why it cannot run on this suite (listed as n/a on the leaderboard)."""
    path: Path | None = None
    """The file the suite was read from."""

    @property
    def short_hash(self) -> str:
        return self.hash[:12]

    @property
    def title(self) -> str:
        return f"{self.name} v{self.version}"

    def variant(self, quick: bool) -> tuple[list[SuiteTask], list[int]]:
        """The tasks and seeds of a full run, or of a ``--quick`` one."""
        if not quick:
            return list(self.tasks), list(self.seeds)
        return [t for t in self.tasks if t.task in self.quick_tasks], list(self.quick_seeds)

    def task(self, name: str) -> SuiteTask:
        for t in self.tasks:
            if t.task == name or t.label == name:
                return t
        raise W2SError(f"suite {self.name}: no task {name!r}.{did_you_mean(name, [t.task for t in self.tasks])}")

    def resolve_path(self, p: str) -> str:
        """A path written in the suite, relative to the suite file."""
        q = Path(p).expanduser()
        if not q.is_absolute() and self.path is not None:
            q = self.path.parent / q
        return str(q.resolve())


def content_hash(data: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of a parsed suite (sorted keys, no whitespace)."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def shipped_dir() -> Path:
    """The folder of the suites shipped with the package."""
    return Path(str(resources.files("w2sgen.benchmark") / "suites"))


def shipped() -> dict[str, Path]:
    """Shipped suite name -> file."""
    return {p.stem: p for p in sorted(shipped_dir().glob("*.yaml"))}


def load_suite(name: str | Path) -> Suite:
    """A shipped suite by name, or a suite file by path; errors name the file and field."""
    p = Path(name)
    if p.suffix.lower() in (".yaml", ".yml"):
        if not p.is_file():
            raise W2SError(f"suite file {p}: no such file")
        return parse_suite(load_yaml(p), p)
    files = shipped()
    if str(name) not in files:
        raise W2SError(f"unknown suite {str(name)!r}.{did_you_mean(str(name), files)} A suite file (.yaml) also "
                       "works; `w2s benchmark list` lists the shipped suites.")
    return parse_suite(load_yaml(files[str(name)]), files[str(name)])


def _int_list(v: Any, where: str) -> list[int]:
    if not isinstance(v, list) or not v or not all(isinstance(x, int) and not isinstance(x, bool) for x in v):
        raise W2SError(f"{where}: expected a non-empty list of integers, got {v!r}")
    if len(set(v)) != len(v):
        raise W2SError(f"{where}: a seed appears twice in {v}")
    return list(v)


def _str(v: Any, where: str, optional: bool = False) -> str | None:
    if v is None and optional:
        return None
    if not isinstance(v, str) or not v.strip():
        raise W2SError(f"{where}: expected a non-empty string, got {v!r}")
    return v


def parse_suite(data: dict[str, Any], path: str | Path = "suite") -> Suite:
    """Check a suite mapping (every field, before any work) and build the Suite."""
    src = str(path)
    for k in data:
        if k not in SUITE_FIELDS:
            raise W2SError(f"{src}: unknown field {k!r}.{did_you_mean(str(k), SUITE_FIELDS)}")
    for k in REQUIRED:
        if k not in data:
            raise W2SError(f"{src}: field {k!r} is missing")
    name = _str(data["name"], f"{src}: field 'name'")
    version = data["version"]
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise W2SError(f"{src}: field 'version': expected an integer >= 1, got {version!r}")
    mode = data["mode"]
    if mode not in MODES:
        raise W2SError(f"{src}: field 'mode': {mode!r} is not one of {', '.join(MODES)}")
    seeds = _int_list(data["seeds"], f"{src}: field 'seeds'")
    pairs = data["pairs"]
    if not isinstance(pairs, list) or not pairs or not all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) and x for x in p) for p in pairs):
        raise W2SError(f"{src}: field 'pairs': expected a list of [weak, strong] model names, got {pairs!r}")
    settings = data.get("settings") or {}
    if not isinstance(settings, dict):
        raise W2SError(f"{src}: field 'settings': expected a mapping of RunConfig sections ({', '.join(SETTINGS)})")
    for k in settings:
        if k not in SETTINGS:
            raise W2SError(f"{src}: field 'settings.{k}': a suite sets only what every method shares "
                           f"({', '.join(SETTINGS)}); task, models, seeds and splits have their own fields")
    from_dict(RunConfig, settings, where=f"{src}: field 'settings'")
    raw_tasks = data["tasks"]
    if not isinstance(raw_tasks, list) or not raw_tasks:
        raise W2SError(f"{src}: field 'tasks': expected a non-empty list of task entries")
    tasks = [_parse_task(t, f"{src}: tasks[{i}]", seeds) for i, t in enumerate(raw_tasks)]
    names = [t.task for t in tasks]
    if len(set(names)) != len(names):
        raise W2SError(f"{src}: field 'tasks': a task appears twice")
    reference = _str(data.get("reference", "xent"), f"{src}: field 'reference'")
    quick = data.get("quick") or {}
    if not isinstance(quick, dict) or set(quick) - {"seeds", "tasks"}:
        raise W2SError(f"{src}: field 'quick': expected {{seeds: [...], tasks: [...]}}, got {quick!r}")
    q_seeds = _int_list(quick.get("seeds", seeds[:2]), f"{src}: field 'quick.seeds'")
    q_tasks = quick.get("tasks", names[:2])
    if not isinstance(q_tasks, list) or not q_tasks:
        raise W2SError(f"{src}: field 'quick.tasks': expected a non-empty list of the suite's tasks")
    for s in q_seeds:
        if s not in seeds:
            raise W2SError(f"{src}: field 'quick.seeds': seed {s} is not one of the suite's seeds {seeds}")
    for t in q_tasks:
        if t not in names:
            raise W2SError(f"{src}: field 'quick.tasks': {t!r} is not one of the suite's tasks.{did_you_mean(str(t), names)}")
    not_run = data.get("not_run") or {}
    if not isinstance(not_run, dict) or not all(isinstance(v, str) and v.strip() for v in not_run.values()):
        raise W2SError(f"{src}: field 'not_run': expected a mapping of method name -> reason")
    suite = Suite(name=name, version=version, mode=mode, seeds=seeds, pairs=[(p[0], p[1]) for p in pairs],
                  tasks=tasks, hash="", description=str(data.get("description") or "").strip(),
                  reference=reference, settings=settings, quick_seeds=q_seeds, quick_tasks=list(q_tasks),
                  not_run={str(k): str(v) for k, v in not_run.items()}, path=Path(path) if path != "suite" else None)
    return dataclasses.replace(suite, hash=content_hash(to_data(suite)))


def _parse_task(t: Any, where: str, seeds: list[int]) -> SuiteTask:
    if not isinstance(t, dict):
        raise W2SError(f"{where}: expected a mapping with task, source and splits, got {t!r}")
    for k in t:
        if k not in TASK_FIELDS:
            raise W2SError(f"{where}: unknown field {k!r}.{did_you_mean(str(k), TASK_FIELDS)}")
    for k in ("task", "source", "splits"):
        if k not in t:
            raise W2SError(f"{where}: field {k!r} is missing")
    name = _str(t["task"], f"{where}: field 'task'")
    source = t["source"]
    if source not in SOURCES:
        raise W2SError(f"{where}: field 'source': {source!r} is not one of {', '.join(SOURCES)}")
    if source == "local" and not t.get("data"):
        raise W2SError(f"{where}: field 'data' is missing: a local task names its folder under the data root")
    if source != "local" and t.get("data"):
        raise W2SError(f"{where}: field 'data' applies to source: local only")
    hub = t.get("hub")
    if source == "hub" and not (isinstance(hub, dict) and hub.get("id")):
        raise W2SError(f"{where}: field 'hub': a hub task records {{id, config, revision}}")
    if source != "hub" and hub is not None:
        raise W2SError(f"{where}: field 'hub' applies to source: hub only")
    splits = t["splits"]
    if not isinstance(splits, dict):
        raise W2SError(f"{where}: field 'splits': expected a mapping of SplitConfig fields")
    if "split_seed" in splits:
        raise W2SError(f"{where}: field 'splits': each run's seed is its split seed; drop split_seed")
    from_dict(SplitConfig, splits, where=f"{where}: field 'splits'")
    fp = t.get("fingerprint")
    if fp is not None and not (isinstance(fp, str) and len(fp) == 64):
        raise W2SError(f"{where}: field 'fingerprint': expected a sha256 (64 hex digits) or null, got {fp!r}")
    ids = t.get("split_ids") or {}
    if isinstance(ids, dict):  # seeds are JSON strings in a manifest's copy of the suite
        ids = {int(k) if isinstance(k, str) and k.isdigit() else k: v for k, v in ids.items()}
    if not isinstance(ids, dict) or not all(isinstance(k, int) and isinstance(v, str) for k, v in ids.items()):
        raise W2SError(f"{where}: field 'split_ids': expected a mapping of seed -> hash")
    if fp is not None and sorted(ids) != sorted(seeds):
        raise W2SError(f"{where}: field 'split_ids': a task with a fingerprint records the split hash of every "
                       f"seed {seeds}, got seeds {sorted(ids)}")
    if fp is None and ids:
        raise W2SError(f"{where}: field 'split_ids' without a fingerprint: record both or neither")
    examples = t.get("examples")
    if examples is not None and (not isinstance(examples, int) or isinstance(examples, bool)):
        raise W2SError(f"{where}: field 'examples': expected an integer, got {examples!r}")
    return SuiteTask(task=name, source=source, splits=dict(splits), data=t.get("data"),
                     origin=str(t.get("origin") or ""), why=str(t.get("why") or ""), hub=hub, fingerprint=fp,
                     examples=examples, split_ids=dict(ids))


def run_configs(suite: Suite, methods: list[str], out: str | Path, data_root: str | Path | None,
                quick: bool = False) -> list[RunConfig]:
    """The suite's runs (one per task, pair and seed) with ``methods``, writing to ``out``, through
    the sweep grid (``w2sgen.sweep.grid``)."""
    from ..sweep.grid import expand, parse_sweep
    from .content import data_dir

    tasks, seeds = suite.variant(quick)
    entries = []
    for t in tasks:
        entry: dict[str, Any] = {"task": suite.resolve_path(t.task) if t.source == "file" else t.task,
                                 "splits": dict(t.splits)}
        if t.source == "local":
            entry["data_dir"] = str(data_dir(t, data_root))
        entries.append(entry)
    spec = parse_sweep({"tasks": entries, "pairs": [list(p) for p in suite.pairs], "methods": list(methods),
                        "mode": suite.mode, "seeds": seeds, **suite.settings}, source=str(suite.path or suite.name))
    return expand(spec, out=str(out))


def replace(suite: Suite, **changes: Any) -> Suite:
    """A copy of ``suite`` with fields changed (tests, derived suites); its hash is recomputed from
    the changed content, so it is another suite."""
    new = dataclasses.replace(suite, **changes)
    return dataclasses.replace(new, hash=content_hash(to_data(new)))


def to_data(suite: Suite) -> dict[str, Any]:
    """The suite as the mapping of its file (what :func:`content_hash` hashes)."""
    tasks = []
    for t in suite.tasks:
        d: dict[str, Any] = {"task": t.task, "source": t.source, "splits": t.splits}
        for k in ("data", "origin", "why", "hub", "fingerprint", "examples"):
            v = getattr(t, k)
            if v not in (None, ""):
                d[k] = v
        if t.split_ids:
            d["split_ids"] = dict(t.split_ids)
        tasks.append(d)
    data: dict[str, Any] = {"name": suite.name, "version": suite.version, "mode": suite.mode,
                            "reference": suite.reference, "seeds": suite.seeds, "pairs": [list(p) for p in suite.pairs],
                            "tasks": tasks, "quick": {"seeds": suite.quick_seeds, "tasks": suite.quick_tasks}}
    if suite.description:
        data["description"] = suite.description
    if suite.settings:
        data["settings"] = suite.settings
    if suite.not_run:
        data["not_run"] = suite.not_run
    return data
