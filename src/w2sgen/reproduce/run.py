"""``w2s reproduce``: run a ladder's grid through the sweep engine, then state the paper's claims.

The runs of every block (see :mod:`w2sgen.reproduce.design`) go to ``OUT/runs`` as one sweep
(shared stages trained once, a rerun resumes from the stage cache, ``--executor ray`` works as for
``w2s sweep``). Then, per block: the test predictions are collected (:mod:`.evidence`), the claims
computed (:mod:`.claims`), and ``OUT/claims.json``, ``OUT/ceilings.json`` and ``OUT/report.html``
written (:mod:`.report`).
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..config import RunConfig
from ..errors import W2SError
from .claims import Claim, evaluate
from .design import Block, param_count
from .evidence import Evidence, collect

log = logging.getLogger("w2sgen")


@dataclass
class Outcome:
    """What a reproduction produced, per block."""

    blocks: list[Block]
    evidence: list[Evidence]
    claims: list[Claim]
    missing: list[str]
    """Claims that do not apply to a block, and why."""
    failed: str | None = None
    """The sweep's failure message (the claims use the runs that completed)."""
    wall_s: float = 0.0
    notes: list[str] = field(default_factory=list)


def execute(runs: list[RunConfig], executor: str = "local", workers: int | None = None,
            ray_address: str | None = None, cache_dir: str | None = None, verbose: bool = False) -> str | None:
    """Run ``runs`` as one sweep (plan, live progress, local workers or Ray); returns the failure
    message of runs that failed (the others completed and are cached), or None."""
    from ..store.cache import StageCache
    from ..sweep.plan import format_plan, make_plan
    from ..sweep.progress import SweepProgress

    cache = StageCache(cache_dir)
    plan = make_plan(runs, cache.location)
    print(format_plan(plan), file=sys.stderr)
    progress = SweepProgress.from_plan(plan)
    try:
        if executor == "ray":
            from ..sweep.ray_exec import run_ray

            res = run_ray(runs, cache_dir=cache.location, address=ray_address, num_cpus=workers, verbose=verbose,
                          progress=progress)
        else:
            from ..sweep.local import run_local

            res = run_local(runs, workers=workers or 1, cache_dir=cache.location, verbose=verbose, progress=progress)
    except W2SError as e:
        if "sweep runs failed" not in str(e):
            raise
        return str(e)
    from ..sweep.local import progress_line

    print(progress_line(res), file=sys.stderr)
    return None


def run_folders(out: Path, runs: list[RunConfig]) -> list[Path]:
    """The folders under ``out`` written by ``runs`` (matched on the configs they record)."""
    from ..store.results import read_runs

    want = {(c.task, c.weak, c.strong, c.mode, c.seeds[0]) for c in runs}
    if not out.is_dir():
        return []
    found = []
    for rec in read_runs(out):
        c = rec.get("config") or {}
        if (c.get("task"), c.get("weak"), c.get("strong"), c.get("mode"), rec.get("seed")) in want:
            found.append(Path(rec["_dir"]))
    return found


def reproduce(blocks: list[Block], out: str | Path, *, executor: str = "local", workers: int | None = None,
              ray_address: str | None = None, cache_dir: str | None = None, verbose: bool = False,
              quick_note: str = "") -> Outcome:
    """Run every block's runs, then collect, compute the claims and write the outputs into ``out``."""
    from ..store.cache import StageCache
    from . import report

    t0 = time.time()
    out = Path(out)
    runs = [r for b in blocks for r in b.runs]
    for b in blocks:  # parameter counts fail before any training
        b.params = {m: param_count(m) for m in b.ladder}
    failed = execute(runs, executor, workers, ray_address, cache_dir, verbose)
    cache_root = StageCache(cache_dir).root
    evidence, claims, missing = [], [], []
    for b in blocks:
        folders = run_folders(out / "runs", b.runs)
        ev = collect(folders, b.mode, b.ladder, b.params, cache_root)
        rows, miss = evaluate(ev)
        for r in rows:
            r.mode = b.name
        evidence.append(ev)
        claims += rows
        missing += [m.replace(f"({ev.mode})", f"({b.name})") for m in miss]
    outcome = Outcome(blocks, evidence, claims, missing, failed, time.time() - t0)
    if quick_note:
        outcome.notes.append(quick_note)
    report.write(outcome, out)
    return outcome


def summary_text(outcome: Outcome, out: Path) -> str:
    """What ``w2s reproduce`` prints: notes, the ceilings per task, the claims table, where the files are."""
    from . import report

    parts = [*(f"note: {n}" for n in outcome.notes)]
    for b, ev in zip(outcome.blocks, outcome.evidence):
        parts.append(report.ceilings_text(b, ev))
    parts.append(report.claims_text(outcome.claims, outcome.missing))
    if outcome.failed:
        parts.append(f"warning: {outcome.failed}\n(the claims above use the runs that completed)")
    parts.append(f"wrote {out / 'claims.json'}, {out / 'ceilings.json'} and {out / 'report.html'}; "
                 f"runs in {out / 'runs'} (`w2s results {out / 'runs'} --summary`); {outcome.wall_s:.0f}s")
    return "\n\n".join(parts)

