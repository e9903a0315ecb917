"""``w2s reproduce``'s arguments and entry point (argparse only at import: ``w2s --help`` stays instant)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import W2SError


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ladder", help="comma-separated models, smallest first (default: minilm-l6,mpnet-base,"
                   "smollm2-135m,gemma-3-270m); short names, hub ids or local directories")
    p.add_argument("--tasks", help="comma-separated tasks (default: cities,sst2; --quick: "
                   "cities,sst2); a task's files are read from $W2S_DATA_DIR/<task> when that folder exists")
    p.add_argument("--mode", choices=["probe", "finetune"], help="probe (default: frozen backbones, heads on cached "
                   "activations) or finetune (every stage finetuned: the paper's main setting, for a GPU)")
    p.add_argument("--seeds", help="comma-separated seeds (default 0,1,2)")
    p.add_argument("--quick", action="store_true", help="a smaller check (2 tasks, 1,000 examples per task, the "
                   "finetune pair with 1 seed and 1,000/400/100/200 examples); it says so in its output")
    p.add_argument("--out", required=True, help="output directory: runs/, claims.json, ceilings.json, report.html")
    p.add_argument("--executor", choices=["local", "ray"], default="local",
                   help="local worker processes (default) or Ray (local, or a cluster with --ray-address)")
    p.add_argument("--workers", type=int, help="local: worker processes (default 1); ray: CPUs of a local Ray")
    p.add_argument("--ray-address", metavar="ADDR", help="connect to this Ray cluster instead of a local Ray")
    p.add_argument("--cache-dir", help="stage cache (default $W2S_CACHE_DIR or ~/.cache/w2sgen)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a run config field in every run, e.g. probe.epochs=20, splits.max_examples=2000")
    p.add_argument("--dry-run", action="store_true", help="print the runs and the stage plan; train nothing")


def _names(text: str | None, flag: str) -> list[str] | None:
    if text is None:
        return None
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise W2SError(f"{flag} {text!r}: give comma-separated names")
    return names


def _seeds(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise W2SError(f"--seeds {text!r}: expected comma-separated integers, e.g. --seeds 0,1,2") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise W2SError(f"--seeds {text!r}: give distinct seeds, e.g. --seeds 0,1,2")
    return seeds


def quick_note(blocks: list) -> str:
    """What --quick leaves out, in words."""
    parts = []
    for b in blocks:
        tasks = sorted({r.task for r in b.runs})
        seeds = sorted({r.seeds[0] for r in b.runs})
        parts.append(f"{b.name}: {len(tasks)} task(s) ({', '.join(Path(t).name for t in tasks)}), "
                     f"{len(seeds)} seed(s), {_sizes(b.runs[0].splits)}")
    one_seed = any(len({r.seeds[0] for r in b.runs}) == 1 for b in blocks)
    return ("--quick: a smaller check, not the reproduction — fewer examples (and seeds where it says so) than "
            "the full default (" + "; ".join(parts) + ")" + ("; with one seed an interval covers the test sample only"
                                                            if one_seed else ""))


def _sizes(splits) -> str:
    """'up to 1,000 examples per task, 300 test' or 'weak_train/transfer/val/test 1,000/400/100/200'."""
    if splits.max_examples:
        return f"up to {splits.max_examples:,} examples per task, {splits.n_test:,} test"
    sizes = (splits.n_weak_train, splits.n_transfer, splits.n_val, splits.n_test)
    return "weak_train/transfer/val/test " + "/".join(f"{v:,}" if isinstance(v, int) else str(v) for v in sizes)


def run_reproduce(a: argparse.Namespace) -> int:
    from ..cli import _check_names
    from .design import blocks

    if a.ray_address and a.executor != "ray":
        raise W2SError(f"--ray-address {a.ray_address}: it applies to the Ray executor; add --executor ray")
    if a.workers is not None and a.workers < 1:
        raise W2SError(f"--workers {a.workers}: give at least 1")
    out = Path(a.out)
    bs = blocks(_names(a.ladder, "--ladder"), _names(a.tasks, "--tasks"), a.mode, _seeds(a.seeds), a.quick,
                str(out / "runs"), a.overrides)
    for b in bs:
        for cfg in b.runs:
            _check_names(cfg)
    if a.dry_run:
        from ..store.cache import StageCache
        from ..sweep.plan import format_plan, make_plan

        for b in bs:
            print(f"{b.name}: {len(b.runs)} runs; ladder {', '.join(b.ladder)}" + (f"\n  {b.note}" if b.note else ""))
        cache = StageCache(a.cache_dir)
        print(format_plan(make_plan([r for b in bs for r in b.runs], cache.location), cache.root))
        return 0
    if a.executor == "ray":
        from ..sweep.ray_exec import import_ray

        import_ray()
    from .run import reproduce, summary_text

    note = quick_note(bs) if a.quick else ""
    if note:
        print(f"note: {note}", file=sys.stderr)
    outcome = reproduce(bs, out, executor=a.executor, workers=a.workers, ray_address=a.ray_address,
                        cache_dir=a.cache_dir, verbose=a.verbose, quick_note=note)
    print(summary_text(outcome, out))
    return 1 if outcome.failed else 0
