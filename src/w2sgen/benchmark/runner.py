"""``w2s benchmark run``: methods on a suite, through the sweep engine, into one results directory.

Layout of ``OUT``::

    OUT/benchmark.json          the manifest: suite name, version, hash, variant (full or quick),
                                content recorded by the first run (unfrozen tasks), each method's
                                source (registered, or a file and its sha256), status, and the
                                student wall times of the runs that trained it (for the cost column)
    OUT/runs/<method>/          a results directory (``w2s results``, ``w2s report`` read it): one run
                                per task, pair and seed, holding the reference (xent) and the method

Each method is its own sweep (shared floors, ceilings and reference students come from the stage
cache, so they are trained once), so a method that fails, e.g. one the label firewall stops, fails
alone: the error names it and what it read, and the other methods' results stand. Rerunning the
same command resumes from the cache. Nothing mixes: a directory holds one suite, one version, one
variant.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import W2SError
from ..store.results import safe_name
from .manifest import Manifest
from .method_file import MethodFile, is_method_file, load_method_file
from .suite import Suite, run_configs

log = logging.getLogger("w2sgen")

DECODER_METHODS = ("zero_shot", "few_shot", "generative")
"""Methods that prompt or finetune the strong model as a causal LM: n/a with an encoder strong model."""


@dataclass(frozen=True)
class MethodEntry:
    """A method of a benchmark run: its registered name and, for a method file, the file."""

    name: str
    file: MethodFile | None = None
    uses_ground_truth: bool = False

    @property
    def source(self) -> str:
        return self.file.path if self.file is not None else "registered"

    @property
    def files(self) -> list[tuple[str, str]]:
        """What the sweep's workers load before a run (``method_files``)."""
        return [(self.file.path, self.file.sha256)] if self.file is not None else []


def model_kind(name: str) -> str:
    """encoder, decoder or auto (a hub id not resolvable here)."""
    from ..models import resolve_model

    try:
        m = resolve_model(name)
    except W2SError:
        return "auto"
    if m.kind != "auto":
        return m.kind
    from ..models.registry import detect_kind

    p = Path(m.path)
    return detect_kind(p) if p.is_dir() else "auto"


def infeasible(name: str, suite: Suite) -> str | None:
    """Why method ``name`` cannot run on ``suite`` (the suite's ``not_run``, a mode it lacks, a
    decoder it needs), or None."""
    from ..methods import METHODS
    from ..methods.compose import parse

    comp = parse(name, {}, None)
    for p in comp.parts:
        part = p.method.name
        if part in suite.not_run:
            return suite.not_run[part]
        if suite.mode not in METHODS.get(part).modes:
            return f"{part} supports modes {', '.join(METHODS.get(part).modes)}; the suite runs {suite.mode}"
        if part in DECODER_METHODS:
            enc = sorted({s for _, s in suite.pairs if model_kind(s) == "encoder"})
            if enc:
                return (f"{part} prompts or finetunes the strong model as a causal LM; the suite's strong "
                        f"model{'s are encoders' if len(enc) > 1 else ' is an encoder'}: {', '.join(enc)}")
    return None


def resolve_methods(specs: list[str], suite: Suite) -> tuple[list[MethodEntry], dict[str, str]]:
    """``--methods`` entries (registered names, compositions, method files, ``all``) -> the methods
    to run (the suite's reference first) and those that cannot run on the suite, with the reason."""
    from ..methods import METHODS
    from ..methods.compose import parse

    wanted: list[str] = []
    files: dict[str, MethodFile] = {}
    for s in specs:
        s = s.strip()
        if not s:
            continue
        if s == "all":
            wanted.extend(METHODS.names())
        elif is_method_file(s):
            f = load_method_file(s)
            files[f.name] = f
            wanted.append(f.name)
        else:
            wanted.append(parse(s, {}, None).name)  # unknown names fail here, before any work
    if not wanted:
        raise W2SError("--methods: give at least one method (a registered name, a method file, or all)")
    entries, not_run = [], {}
    for name in dict.fromkeys([suite.reference, *wanted]):
        reason = infeasible(name, suite)
        if reason is not None:
            if name == suite.reference:
                raise W2SError(f"suite {suite.title}: its reference method {name!r} cannot run on it: {reason}")
            not_run[name] = reason
            continue
        gt = parse(name, {}, suite.mode).uses_ground_truth
        entries.append(MethodEntry(name, files.get(name), gt))
    return entries, not_run


def method_dir(out: Path, name: str) -> Path:
    """The results directory of one method's runs."""
    return out / "runs" / safe_name(name)


@dataclass
class Outcome:
    """What a benchmark run did."""

    out: Path
    manifest: Manifest
    ran: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    """Method -> the error that stopped its runs."""
    wall_s: float = 0.0


def prepare(suite: Suite, specs: list[str], out: str | Path, quick: bool, data_root: str | Path | None
            ) -> tuple[Manifest, list[MethodEntry], dict[str, str], dict[str, dict[str, Any]]]:
    """Everything before training: the directory's manifest (refusing another suite or variant),
    the methods, and the tasks' content checked against the suite (what each gave)."""
    from .content import verify

    out = Path(out)
    manifest = Manifest.open(out, suite, quick)
    entries, not_run = resolve_methods(specs, suite)
    tasks, seeds = suite.variant(quick)
    observed = verify(suite, tasks, seeds, data_root, manifest.recorded)
    return manifest, entries, not_run, observed


def run_benchmark(suite: Suite, specs: list[str], out: str | Path, *, quick: bool = False,
                  executor: str = "local", workers: int | None = None, cache_dir: str | Path | None = None,
                  ray_address: str | None = None, data_root: str | Path | None = None,
                  verbose: bool = False) -> Outcome:
    """Run ``specs`` (method names or files) on ``suite`` into ``out``; every method after the
    reference is its own sweep. Failures of a method are collected (``Outcome.failed``), not raised."""
    from ..store.cache import StageCache

    t0 = time.time()
    out = Path(out)
    manifest, entries, not_run, observed = prepare(suite, specs, out, quick, data_root)
    manifest.record_content(suite, observed)
    manifest.not_run.update(not_run)
    for name in not_run:
        manifest.methods.pop(name, None)
    manifest.write(out)
    cache = StageCache(cache_dir).location
    outcome = Outcome(out, manifest)
    with _executor(executor, ray_address, workers, verbose) as execute:
        for e in entries:
            methods = [suite.reference] if e.name == suite.reference else [suite.reference, e.name]
            runs = run_configs(suite, methods, method_dir(out, e.name), data_root, quick)
            log.info("benchmark %s: %s (%d runs)", suite.name, e.name, len(runs))
            error = None
            try:
                execute(runs, cache, e.files)
            except W2SError as err:
                error = str(err)
                outcome.failed[e.name] = error
            manifest.record_method(e.name, e.source, e.file.sha256 if e.file else None, e.uses_ground_truth,
                                   error)
            manifest.record_walls(method_dir(out, e.name), methods)
            manifest.write(out)
            outcome.ran.append(e.name)
    outcome.wall_s = time.time() - t0
    return outcome


class _executor:
    """The sweep executor as ``execute(runs, cache, method_files)``; Ray is started once for all methods."""

    def __init__(self, kind: str, address: str | None, workers: int | None, verbose: bool):
        self.kind, self.address, self.workers, self.verbose = kind, address, workers, verbose
        self.ray: Any = None
        self.started = False

    def __enter__(self):
        if self.kind == "ray":
            from ..sweep.ray_exec import _init, import_ray

            self.ray = import_ray()
            self.started = _init(self.ray, self.address, self.workers, self.verbose)
        elif self.kind != "local":
            raise W2SError(f"--executor {self.kind}: use local or ray")
        return self.execute

    def execute(self, runs: list[Any], cache: Any, files: list[tuple[str, str]]) -> None:
        if self.kind == "ray":
            from ..sweep.ray_exec import run_ray

            run_ray(runs, cache_dir=cache, address=self.address, num_cpus=self.workers, verbose=self.verbose,
                    method_files=files)
        else:
            from ..sweep.local import run_local

            run_local(runs, workers=self.workers or 1, cache_dir=cache, verbose=self.verbose, method_files=files)

    def __exit__(self, *exc: Any) -> None:
        if self.started:
            self.ray.shutdown()


def failure_report(outcome: Outcome) -> str:
    """One message for every method whose runs failed (the firewall's refusals name what was read)."""
    lines = []
    for name, err in outcome.failed.items():
        src = outcome.manifest.methods.get(name, {}).get("source", "registered")
        where = "" if src == "registered" else f" (file {src})"
        lines.append(f"method {name!r}{where} was stopped; it is not on the leaderboard where its runs failed:\n"
                     + "\n".join(f"    {ln}" for ln in err.splitlines()))
    return "\n".join(lines)
