"""The ``w2s benchmark`` command group: list, show, run, leaderboard, freeze.

Only argparse is imported at parser build time; each command imports what it needs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import W2SError


def cmd_list(a: argparse.Namespace) -> int:
    from .show import list_suites

    print(list_suites())
    return 0


def cmd_show(a: argparse.Namespace) -> int:
    from .show import describe, plan_text
    from .suite import load_suite

    s = load_suite(a.suite)
    print(describe(s, a.data_root))
    print(f"\ncost of a run of {s.reference} (sweep planner; stage cache {a.cache_dir or 'default'}):")
    print(plan_text(s, [s.reference], a.data_root, a.cache_dir, a.quick))
    return 0


def _methods(a: argparse.Namespace) -> list[str]:
    if not a.methods:
        raise W2SError("--methods: give registered names, compositions, method files (.py) or all, comma-separated")
    return [m.strip() for m in a.methods.split(",") if m.strip()]


def cmd_run(a: argparse.Namespace) -> int:
    from .suite import load_suite

    if a.ray_address and a.executor != "ray":
        raise W2SError(f"--ray-address {a.ray_address}: it applies to the Ray executor; add --executor ray")
    if a.workers is not None and a.workers < 1:
        raise W2SError(f"--workers {a.workers}: give at least 1")
    s = load_suite(a.suite)
    specs = _methods(a)
    if a.dry_run:
        from .show import dry_run

        print(dry_run(s, specs, a.out, a.quick, a.data_root, a.cache_dir))
        return 0
    if a.executor == "ray":
        from ..sweep.ray_exec import import_ray

        import_ray()  # a missing Ray fails before any work
    from ..safety import interrupt_guard
    from .leaderboard import format_table, leaderboard
    from .runner import failure_report, run_benchmark

    with interrupt_guard():
        outcome = run_benchmark(s, specs, a.out, quick=a.quick, executor=a.executor, workers=a.workers,
                                cache_dir=a.cache_dir, ray_address=a.ray_address, data_root=a.data_root,
                                verbose=a.verbose)
    print(format_table(leaderboard([a.out])))
    print(f"\nbenchmark {s.title}: {len(outcome.ran)} methods in {outcome.wall_s / 60:.1f} min; results in "
          f"{Path(a.out).resolve()} (`w2s benchmark leaderboard {a.out}`)", file=sys.stderr)
    if outcome.failed:
        raise W2SError(failure_report(outcome))
    return 0


def cmd_leaderboard(a: argparse.Namespace) -> int:
    from .leaderboard import FORMATS, leaderboard

    text = FORMATS[a.format](leaderboard(a.dirs))
    if a.output:
        from ..store.atomic import atomic_write_text

        atomic_write_text(a.output, text if text.endswith("\n") else text + "\n")
        print(f"wrote {a.output}", file=sys.stderr)
    else:
        print(text)
    return 0


def cmd_freeze(a: argparse.Namespace) -> int:
    from .freeze import freeze

    text = freeze(a.file, a.data_root)
    if a.output:
        from ..store.atomic import atomic_write_text

        atomic_write_text(a.output, text)
        print(f"wrote {a.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-root", help="folder holding the suite's local task folders (default $W2S_DATA_DIR, "
                   "else ../shared/data)")
    p.add_argument("--cache-dir", help="stage cache (default $W2S_CACHE_DIR or ~/.cache/w2sgen)")


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``w2s benchmark`` and its subcommands to the top-level parser."""
    b = sub.add_parser("benchmark", help="the standard benchmark: frozen suites, methods as files, a leaderboard",
                       description="Frozen, versioned suites (tasks with their content fingerprints and split "
                       "hashes, model pairs, mode, seeds, shared settings); run registered methods or method files "
                       "on one; rank them with intervals that say when two methods are tied.")
    bs = b.add_subparsers(dest="benchmark_command", metavar="COMMAND")
    bs.required = True

    ls = bs.add_parser("list", help="list the shipped suites")
    ls.set_defaults(fn=cmd_list)

    sh = bs.add_parser("show", help="a suite's tasks, pairs, seeds and the planner's cost estimate of a run")
    sh.add_argument("suite", help="a shipped suite (w2s benchmark list) or a suite file (.yaml)")
    sh.add_argument("--quick", action="store_true", help="plan the --quick variant")
    _common(sh)
    sh.set_defaults(fn=cmd_show)

    r = bs.add_parser("run", help="run methods on a suite (through the sweep engine) into a results directory",
                      description="Run methods on a suite: each method is a registered name, a composition "
                      "(a+b) or one Python file defining METHOD, loaded in the driver and in every worker. The "
                      "suite's reference method runs too. Rerun the same command to resume.")
    r.add_argument("suite", help="a shipped suite (w2s benchmark list) or a suite file (.yaml)")
    r.add_argument("--methods", required=True, help="comma-separated: registered names (w2s list methods), "
                   "compositions, method files (path/to/my_method.py), or all")
    r.add_argument("--out", required=True, help="results directory (one suite and variant per directory)")
    r.add_argument("--quick", action="store_true", help="fewer tasks and 2 seeds, for trying a method; the "
                   "leaderboard marks it not comparable with full runs")
    r.add_argument("--executor", choices=["local", "ray"], default="local",
                   help="local worker processes or Ray tasks (as w2s sweep)")
    r.add_argument("--workers", type=int, default=None, help="local: worker processes (default 1); ray: CPUs "
                   "of the local Ray (default all)")
    r.add_argument("--ray-address", metavar="ADDR", help="a Ray cluster to connect to (as w2s sweep)")
    r.add_argument("--dry-run", action="store_true", help="print the methods, the data checks and the plan; "
                   "run nothing")
    _common(r)
    r.set_defaults(fn=cmd_run)

    lb = bs.add_parser("leaderboard", help="rank the methods of benchmark results directories",
                       description="Per method: the suite's aggregate PGR with its 95%% interval, ΔPGR against "
                       "the reference paired over the same runs, test accuracy, tasks won, cost relative to the "
                       "reference, and a tie-aware rank. Directories of one suite and variant only.")
    lb.add_argument("dirs", nargs="+", metavar="DIR", help="benchmark results directories (w2s benchmark run --out)")
    lb.add_argument("--format", choices=["table", "json", "html"], default="table")
    lb.add_argument("-o", "--output", help="write to this file instead of stdout")
    lb.set_defaults(fn=cmd_leaderboard)

    fz = bs.add_parser("freeze", help="record the fingerprints and split hashes of a suite file's tasks",
                       description="For suite authors: load every task of a suite file that loads here and "
                       "print the file with each one's content fingerprint, size and per-seed split hashes "
                       "filled in (tasks that cannot be loaded keep theirs, or null).")
    fz.add_argument("file", help="a suite file (.yaml)")
    fz.add_argument("-o", "--output", help="write to this file instead of stdout")
    fz.add_argument("--data-root", help="folder holding the suite's local task folders")
    fz.set_defaults(fn=cmd_freeze)
