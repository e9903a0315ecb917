"""``w2s benchmark list`` / ``show`` and ``run --dry-run``: a suite in words, with the sweep planner's
view of a run (stages to train, what the cache holds, its time estimate)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import W2SError
from .suite import Suite, load_suite, run_configs, shipped


def list_suites() -> str:
    """One line per shipped suite: name, version, mode, tasks, pairs, seeds, hash."""
    lines = []
    for name, path in shipped().items():
        try:
            s = load_suite(path)
        except W2SError as e:
            lines.append(f"{name:<14} (unreadable: {e})")
            continue
        lines.append(f"{s.name:<14} v{s.version}  {s.mode:<8} {len(s.tasks):>2} tasks  {len(s.pairs)} pair"
                     f"{'s' if len(s.pairs) > 1 else ' '}  {len(s.seeds)} seeds  {s.short_hash}  "
                     f"{_lead(s.description)}")
    return "\n".join(lines) + "\n\n`w2s benchmark show NAME` describes one; a suite file (.yaml) works wherever a name does."


def _lead(text: str, width: int = 90) -> str:
    """The description's start, cut at a word within ``width`` characters (``list`` shows one line per suite)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[:width].rsplit(" ", 1)[0].rstrip(",;:") + " …"


def _task_line(s: Suite, t: Any, root: str | Path | None, recorded: dict[str, Any]) -> list[str]:
    from .content import where

    sizes = ", ".join(f"{k.removeprefix('n_')} {v}" for k, v in t.splits.items() if k.startswith("n_"))
    fp = t.fingerprint or (recorded.get(t.task) or {}).get("fingerprint")
    state = f"fingerprint {fp[:12]}…" if fp else "fingerprint recorded by the first run"
    n = f", {t.examples} examples" if t.examples else ""
    lines = [f"  {t.label:<22} {where(t, root, s)}", f"  {'':<22} splits: {sizes}; {state}{n}"]
    if t.why:
        lines.append(f"  {'':<22} why this source: {t.why}")
    return lines


def describe(s: Suite, root: str | Path | None = None) -> str:
    """The suite's fields in words."""
    lines = [f"suite {s.title}  (hash {s.hash})"]
    if s.path is not None:
        lines.append(f"file: {s.path}")
    if s.description:
        lines += ["", s.description, ""]
    lines.append(f"mode: {s.mode}; reference: {s.reference}; seeds: {', '.join(map(str, s.seeds))}")
    lines.append("pairs (weak -> strong): " + "; ".join(f"{w} -> {st}" for w, st in s.pairs))
    if s.settings:
        lines.append("shared settings: " + "; ".join(f"{k}: {v}" for k, v in s.settings.items()))
    lines.append(f"tasks ({len(s.tasks)}):")
    for t in s.tasks:
        lines += _task_line(s, t, root, {})
    lines.append(f"--quick: tasks {', '.join(s.quick_tasks)}; seeds {', '.join(map(str, s.quick_seeds))} "
                 "(results marked not comparable with full runs)")
    for m, why in s.not_run.items():
        lines.append(f"not run: {m}: {why}")
    return "\n".join(lines)


def plan_text(s: Suite, methods: list[str], root: str | Path | None, cache_dir: str | Path | None,
              quick: bool, files: list[tuple[str, str]] | None = None) -> str:
    """The sweep planner's view of the runs of ``methods`` (per-method sweeps share their floors and
    ceilings, so the stages are planned over all of them): stages by kind, cached, the estimate.
    Tasks whose data cannot be loaded here are named and left out."""
    from ..store.cache import StageCache
    from ..sweep.plan import format_plan, make_plan
    from .content import load, where

    tasks, seeds = s.variant(quick)
    ok, skipped = [], []
    for t in tasks:
        try:
            load(t, root, s)
            ok.append(t.task)
        except W2SError as e:
            skipped.append(f"  {t.label}: not loadable here ({where(t, root, s)}): {str(e).splitlines()[0]}")
    head = [f"runs: {len(tasks)} tasks x {len(s.pairs)} pairs x {len(seeds)} seeds = "
            f"{len(tasks) * len(s.pairs) * len(seeds)} per method ({'quick' if quick else 'full'})"]
    if skipped:
        head += [f"{len(skipped)} of {len(tasks)} tasks cannot be planned here:", *skipped]
    if not ok:
        return "\n".join(head + ["planner: no task of the run can be loaded here; nothing to plan"])
    sub = _only(s, ok)
    cache = StageCache(cache_dir)
    runs = []
    try:
        for m in methods:
            ms = [s.reference] if m == s.reference else [s.reference, m]
            runs += run_configs(sub, ms, Path("benchmark-plan") / m, root, quick)
        plan = make_plan(runs, cache.location)
    except W2SError as e:
        return "\n".join(head + [f"planner: cannot plan here: {str(e).splitlines()[0]}"])
    text = format_plan(plan, cache.root).splitlines()
    body = text[1 + len(plan.runs):]  # the per-run lines are many; keep the totals
    return "\n".join(head + [f"planned: {len(plan.runs)} runs ({len(methods)} method sweeps)", *body])


def _only(s: Suite, names: list[str]) -> Suite:
    """``s`` restricted to some tasks (for planning only: its hash is the original's)."""
    import dataclasses

    keep = [t for t in s.tasks if t.task in names]
    return dataclasses.replace(s, tasks=keep, quick_tasks=[t for t in s.quick_tasks if t in names])


def dry_run(s: Suite, specs: list[str], out: str | Path, quick: bool, root: str | Path | None,
            cache_dir: str | Path | None) -> str:
    """``w2s benchmark run --dry-run``: the methods (and those that cannot run), the data checks, the plan."""
    from .manifest import Manifest
    from .runner import resolve_methods

    Manifest.open(out, s, quick)  # refuses another suite's directory before anything else
    entries, not_run = resolve_methods(specs, s)
    lines = [f"benchmark {s.title} ({s.short_hash}, {'quick' if quick else 'full'}) -> {out}",
             "methods: " + ", ".join(e.name + (f" (file {e.file.path})" if e.file else "") for e in entries)]
    for m, why in not_run.items():
        lines.append(f"n/a: {m}: {why}")
    lines += content_lines(s, root, quick, Manifest.read(out))
    lines.append(plan_text(s, [e.name for e in entries], root, cache_dir, quick))
    return "\n".join(lines)


def content_lines(s: Suite, root: str | Path | None, quick: bool, manifest: Any) -> list[str]:
    """Each task's content checked against the suite (or the directory's record), in words."""
    from .content import check, expected, load, observe, where

    tasks, seeds = s.variant(quick)
    recorded = manifest.recorded if manifest is not None else {}
    lines = ["data:"]
    for t in tasks:
        source = where(t, root, s)
        try:
            got = observe(t, load(t, root, s), seeds)
            want, whose = expected(t, recorded.get(t.task))
            if want is None:
                lines.append(f"  {t.label}: {source}: fingerprint {got['fingerprint'][:12]}… (recorded by the first run)")
            else:
                check(t, got, want, whose, source, s)
                lines.append(f"  {t.label}: {source}: matches {whose}")
        except W2SError as e:
            lines.append(f"  {t.label}: {str(e).splitlines()[0]}")
    return lines
