#!/usr/bin/env python
"""Methods bench: every registered method on real tasks, PGR with 95% intervals, ΔPGR against
``xent`` from a paired bootstrap, and each method's cost relative to ``xent``.

Probe mode on the packaged CPU models, in three groups (each with its own ``xent`` reference):

* encoder ``minilm-l6 → mpnet-base``: every method but the ones below; ``bootstrap`` climbs
  ``minilm-l6 → smollm2-135m → mpnet-base``.
* ladder ``minilm-l6 → mpnet-base``, smaller splits: ``probe_ladder`` (it finetunes mpnet twice).
* decoder ``minilm-l6 → smollm2-135m``, smaller splits: ``generative``, ``zero_shot``,
  ``few_shot`` (they need a decoder).

Each (task, pair, seed) is one ``w2sgen.run`` with all of its group's methods, so the weak floor
and the ceiling are shared by the methods of a run, and ΔPGR pairs a method with ``xent`` on the
same run (same split, same weak labels). The split changes with the seed. Nothing is tuned here:
every method runs with its registered defaults; the test split is only read for the table.

Columns: ``PGR`` mean over seeds [95% bootstrap interval over seeds]; ``ΔPGR`` mean of the
per-seed differences with ``xent`` [95% paired bootstrap interval]; ``acc`` the student's test
accuracy; ``cost`` the median over runs of the method's wall time over ``xent``'s in the same run
(the whole method: its intermediate stages, extra embeddings and training; the shared backbone
activations of the run's two models are cached before the methods run and not counted).

Usage: ``.venv/bin/python bench/methods.py [--quick] [--tasks cities,sst2,twitter_sentiment]
[--seeds 0,1,2,3,4] [--methods ...] [--out DIR]``. Default ≤ 30 min, ``--quick`` ≤ 5 min on a
2-core CPU once the models are unpacked (``w2s setup-models``); the stage cache is fresh for each
invocation, the activation cache is kept in ``--features-cache`` so a rerun does not re-embed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("W2S_PROGRESS", "0")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

DECODER_METHODS = ("generative", "zero_shot", "few_shot")
LADDER_METHODS = ("probe_ladder",)
TASKS = ("cities", "sst2", "twitter_sentiment")
GAP = 0.02  # a ceiling less than 2 points above the weak floor makes PGR unreliable (as in `w2s report`)
# group -> (weak, strong), what runs there
PAIRS = {"encoder": ("minilm-l6", "mpnet-base"), "ladder": ("minilm-l6", "mpnet-base"),
         "decoder": ("minilm-l6", "smollm2-135m")}

# Split sizes per (group, size). The task is cut to one subsample of max_examples (pool_seed=0) inside
# which each seed draws its own splits: the seeds share texts, hence the activation cache. The ladder and decoder groups finetune
# or prompt their strong model on every example they predict: smaller splits keep them in budget. Where val or
# test is under the default minimums (splits.min_val 100, splits.min_test 200) the minimum is lowered explicitly.
SIZES = {
    ("encoder", "full"): {"n_weak_train": 600, "n_transfer": 1200, "n_val": 200, "n_test": 800, "max_examples": 3500},
    ("ladder", "full"): {"n_weak_train": 200, "n_transfer": 200, "n_val": 80, "n_test": 300, "max_examples": 1200, "min_val": 80},
    ("decoder", "full"): {"n_weak_train": 300, "n_transfer": 150, "n_val": 60, "n_test": 250, "max_examples": 1200, "min_val": 60},
    ("encoder", "smoke"): {"n_weak_train": 60, "n_transfer": 80, "n_val": 30, "n_test": 60, "max_examples": 300, "min_val": 30, "min_test": 60},
    ("encoder", "quick"): {"n_weak_train": 200, "n_transfer": 300, "n_val": 80, "n_test": 300, "max_examples": 1000, "min_val": 80},
    ("ladder", "quick"): {"n_weak_train": 100, "n_transfer": 80, "n_val": 40, "n_test": 120, "max_examples": 500, "min_val": 40, "min_test": 120},
    ("decoder", "quick"): {"n_weak_train": 100, "n_transfer": 60, "n_val": 30, "n_test": 100, "max_examples": 400, "min_val": 30, "min_test": 100},
}
# Settings that only bound CPU time (never tuned on results): LM steps, finetune steps, folds; and
# the ensemble's supervisors (its default is the run's weak model alone): three seeds of it.
QUICK_ARGS = {"ensemble": {"seeds": [101, 102]}, "generative": {"steps": 5}, "s2s": {"folds": 3}, "bootstrap": {"folds": 3},
              "knn_filter": {"folds": 3}, "logreg_filter": {"folds": 3}, "probe_ladder": {"ft_steps": 2}}
FULL_ARGS = {"ensemble": {"seeds": [101, 102]}, "generative": {"steps": 20}, "probe_ladder": {"ft_steps": 4}}
FINETUNE = {"batch_size": 8}  # the ladder's ft(weak), ft(gt) stages on CPU


def data_dir(task: str) -> str | None:
    root = Path(os.environ.get("W2S_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))
    d = root / task
    return str(d) if d.is_dir() else None


def all_methods() -> list[str]:
    from w2sgen.methods import METHODS

    return METHODS.names()


def run_group(group: str, methods: list[str], tasks: list[str], seeds: list[int],
              size: str, out: Path, cache: Path, method_args: dict) -> list[dict]:
    import w2sgen
    from w2sgen.config import FinetuneConfig, RunConfig, SplitConfig

    pair = PAIRS[group]

    records = []
    for task in tasks:
        for seed in seeds:
            cfg = RunConfig(task=task, weak=pair[0], strong=pair[1], methods=["xent", *[m for m in methods if m != "xent"]],
                            seeds=[seed], out=str(out / group), data_dir=data_dir(task),
                            splits=SplitConfig(**SIZES[(group, size)], pool_seed=0), finetune=FinetuneConfig(**FINETUNE),
                            method_args={m: a for m, a in method_args.items() if m in methods})
            t0 = time.time()
            try:
                res = w2sgen.run(cfg, cache_dir=cache)
            except Exception as e:  # a method that fails is a finding: report it, run the rest
                print(f"  {group} {task} seed {seed}: FAILED {type(e).__name__}: {e}", file=sys.stderr, flush=True)
                records.append({"group": group, "task": task, "seed": seed, "error": f"{type(e).__name__}: {e}"})
                continue
            rec = res.runs[0]
            print(f"  {group} {task} seed {seed}: {time.time() - t0:.0f}s", file=sys.stderr, flush=True)
            records.append({"group": group, "task": task, "seed": seed, "record": rec})
    return records


def tidy(records: list[dict]) -> pd.DataFrame:
    rows = []
    for r in records:
        if "record" not in r:
            continue
        rec = r["record"]
        st = rec["stages"]
        for m, b in st["students"].items():
            ladder = b.get("train", {}).get("ladder") if m == "probe_ladder" else None
            rows.append({"group": r["group"], "task": r["task"], "seed": r["seed"], "method": m,
                         "weak_acc": st["weak"]["test"]["acc"], "ceiling_acc": st["ceiling"]["test"]["acc"],
                         "w2s_acc": b["test"]["acc"], "pgr": b["pgr_acc"], "wall_s": b["wall_s"],
                         **({f"ladder_{k}": v for k, v in ladder.items()} if isinstance(ladder, dict) else {})})
    return pd.DataFrame(rows)


def summarize(frame: pd.DataFrame, n_boot: int = 2000) -> pd.DataFrame:
    from w2sgen.stats import bootstrap

    out = []
    for (group, task), g in frame.groupby(["group", "task"], sort=False):
        ref = g[g["method"] == "xent"].set_index("seed")
        for m, gm in g.groupby("method", sort=True):
            gm = gm.set_index("seed")
            pg = bootstrap(gm["pgr"].to_numpy(), "mean", n_boot)
            common = gm.index.intersection(ref.index)
            d = bootstrap((gm.loc[common, "pgr"] - ref.loc[common, "pgr"]).to_numpy(), "mean", n_boot)
            da = bootstrap((gm.loc[common, "w2s_acc"] - ref.loc[common, "w2s_acc"]).to_numpy(), "mean", n_boot)
            cost = (gm.loc[common, "wall_s"] / ref.loc[common, "wall_s"].clip(lower=1e-3)).median()
            out.append({"group": group, "task": task, "method": m, "seeds": len(gm),
                        "weak": gm["weak_acc"].mean(), "ceiling": gm["ceiling_acc"].mean(), "acc": gm["w2s_acc"].mean(),
                        "pgr": pg.value, "pgr_lo": pg.lo, "pgr_hi": pg.hi,
                        "dpgr": d.value, "dpgr_lo": d.lo, "dpgr_hi": d.hi, "dacc": da.value, "dacc_lo": da.lo,
                        "dacc_hi": da.hi, "cost": cost,
                        "wall_s": gm["wall_s"].median()})
    return pd.DataFrame(out)


def fmt(x: float, nd: int = 2) -> str:
    return "nan" if not np.isfinite(x) else f"{x:+.{nd}f}" if nd == 2 else f"{x:.{nd}f}"


def print_table(s: pd.DataFrame, frame: pd.DataFrame) -> None:
    for (group, task), g in s.groupby(["group", "task"], sort=False):
        g0 = g.iloc[0]
        gap = g0["ceiling"] - g0["weak"]
        flag = "" if gap >= GAP else f"  !! gap {gap:+.1%} < {GAP:.0%}: PGR is unreliable here, read Δacc"
        print(f"\n{task} · {group} pair · weak {g0['weak']:.1%} → ceiling {g0['ceiling']:.1%} · seeds {int(g0['seeds'])}{flag}")
        print(f"  {'method':<18} {'acc':>6} {'PGR [95% CI]':>22} {'ΔPGR vs xent [95% CI]':>25} "
              f"{'Δacc vs xent [95% CI]':>26} {'cost':>6} {'wall_s':>7}")
        for _, r in g.sort_values("dpgr", ascending=False).iterrows():
            sig = "*" if r["method"] != "xent" and (r["dpgr_lo"] > 0 or r["dpgr_hi"] < 0) else " "
            print(f"  {r['method']:<18} {r['acc']:>6.1%} {fmt(r['pgr'])} [{fmt(r['pgr_lo'])}, {fmt(r['pgr_hi'])}]"
                  f"   {fmt(r['dpgr'])} [{fmt(r['dpgr_lo'])}, {fmt(r['dpgr_hi'])}]{sig}"
                  f"   {100 * r['dacc']:+5.1f} [{100 * r['dacc_lo']:+5.1f}, {100 * r['dacc_hi']:+5.1f}] pts"
                  f" {r['cost']:>5.1f}x {r['wall_s']:>7.1f}")
    print("\n* the 95% interval of ΔPGR excludes 0. PGR over accuracy; cost = wall time / xent's (median over runs).")
    lad = frame[frame["method"] == "probe_ladder"]
    cols = [c for c in ("ladder_lp_weak", "ladder_lp_gt", "ladder_ft_weak", "ladder_ft_weak_lp_gt", "ladder_ft_gt")
            if c in lad]
    if len(lad) and cols:
        print("\nprobe_ladder (test accuracy, mean over seeds): " + ", ".join(c[7:] for c in cols))
        for task, g in lad.groupby("task", sort=False):
            print(f"  {task:<18} " + "  ".join(f"{c[7:]} {g[c].mean():.1%}" for c in cols))


def overall(s: pd.DataFrame, frame: pd.DataFrame) -> pd.DataFrame:
    """Per method over the tasks of its group, paired by (task, seed) run: mean Δacc against ``xent``
    over all runs, and mean ΔPGR over the runs of tasks whose mean gap is at least GAP (PGR is
    unreliable where the ceiling is barely above the weak floor); 95% bootstrap intervals."""
    from w2sgen.stats import bootstrap

    reliable = {(r["group"], r["task"]) for _, r in s.iterrows() if r["ceiling"] - r["weak"] >= GAP}
    rows = []
    for (group, m), g in frame.groupby(["group", "method"], sort=True):
        ref = frame[(frame["group"] == group) & (frame["method"] == "xent")].set_index(["task", "seed"])
        gm = g.set_index(["task", "seed"])
        common = gm.index.intersection(ref.index)
        da = bootstrap((gm.loc[common, "w2s_acc"] - ref.loc[common, "w2s_acc"]).to_numpy(), "mean", 2000)
        ok = [i for i in common if (group, i[0]) in reliable]
        d = bootstrap((gm.loc[ok, "pgr"] - ref.loc[ok, "pgr"]).to_numpy(), "mean", 2000)
        cost = s[(s["group"] == group) & (s["method"] == m)]["cost"].median()
        rows.append({"group": group, "method": m, "runs": len(common), "dacc": da.value, "dacc_lo": da.lo,
                     "dacc_hi": da.hi, "pgr_runs": len(ok), "dpgr": d.value, "lo": d.lo, "hi": d.hi,
                     "tasks_up": int((s[(s["group"] == group) & (s["method"] == m)]["dacc"] > 0).sum()), "cost": cost})
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller splits and fewer folds/steps (≤ 5 min)")
    ap.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)  # the test suite's tiny size
    ap.add_argument("--tasks", default=",".join(TASKS))
    ap.add_argument("--seeds", default=None, help="comma-separated (default 0,1,2,3,4; --quick: 0,1)")
    ap.add_argument("--methods", default="all", help="comma-separated methods (default: every registered one)")
    ap.add_argument("--out", default=None, help="results directory (default: a temporary one)")
    ap.add_argument("--features-cache", default=str(Path(tempfile.gettempdir()) / "w2s-bench-features"),
                    help="kept activation cache (the stage cache is fresh each invocation)")
    ap.add_argument("--csv", help="also write the per-run rows here")
    ap.add_argument("--from-out", metavar="DIR", help="summarize the runs of an earlier bench's --out; train nothing")
    a = ap.parse_args(argv)

    size = "smoke" if a.smoke else "quick" if a.quick else "full"
    tasks = [t for t in a.tasks.split(",") if t]
    seeds = [int(s) for s in (a.seeds or ("0,1" if a.quick else "0,1,2,3,4")).split(",") if s]
    methods = all_methods() if a.methods == "all" else [m for m in a.methods.split(",") if m]
    groups = {"encoder": [m for m in methods if m not in (*DECODER_METHODS, *LADDER_METHODS)],
              "ladder": [m for m in methods if m in LADDER_METHODS],
              "decoder": [m for m in methods if m in DECODER_METHODS]}
    args = FULL_ARGS if size == "full" else QUICK_ARGS
    out = Path(a.out or tempfile.mkdtemp(prefix="w2s-bench-methods-"))
    cache = Path(tempfile.mkdtemp(prefix="w2s-bench-cache-"))
    feats = Path(a.features_cache)
    feats.mkdir(parents=True, exist_ok=True)
    (cache / "features").symlink_to(feats.resolve(), target_is_directory=True)

    if a.from_out:
        records = []
        for group in PAIRS:
            d = Path(a.from_out) / group
            if d.is_dir():
                import w2sgen

                records += [{"group": group, "task": r["task"]["name"], "seed": r["seed"], "record": r}
                            for r in w2sgen.load_results(d).runs]
        return report(records, tasks, time.time(), a.csv, cache=None)

    t0 = time.time()
    print(f"methods bench ({size}): tasks {tasks}, seeds {seeds}, {len(methods)} methods; out {out}", file=sys.stderr)
    records = []
    for group, ms in groups.items():
        if ms:
            records += run_group(group, ms, tasks, seeds, size, out, cache, args)
    return report(records, tasks, t0, a.csv, cache)


def report(records: list[dict], tasks: list[str], t0: float, csv: str | None, cache: Path | None) -> int:
    """Print the tables of ``records``; returns the exit code (1 if a run failed or none finished)."""
    frame = tidy(records)
    if csv:
        frame.to_csv(csv, index=False)
    if frame.empty:
        print("no run finished", file=sys.stderr)
        return 1
    s = summarize(frame)
    print_table(s, frame)
    o = overall(s, frame)
    print("\noverall (paired bootstrap over task × seed runs; ΔPGR only over tasks with a gap >= 2 points):")
    print(f"  {'group':<8} {'method':<18} {'runs':>4} {'Δacc pts [95% CI]':>24} {'tasks Δacc>0':>13} "
          f"{'ΔPGR [95% CI] (runs)':>28} {'cost':>6}")
    for _, r in o.sort_values(["group", "dacc"], ascending=[False, False]).iterrows():
        print(f"  {r['group']:<8} {r['method']:<18} {r['runs']:>4} {100 * r['dacc']:>+7.1f} "
              f"[{100 * r['dacc_lo']:+5.1f}, {100 * r['dacc_hi']:+5.1f}] {r['tasks_up']:>8}/{len(tasks)}   "
              f"{fmt(r['dpgr'])} [{fmt(r['lo'])}, {fmt(r['hi'])}] ({r['pgr_runs']:>2}) {r['cost']:>5.1f}x")
    failed = [r for r in records if "error" in r]
    for r in failed:
        print(f"FAILED {r['group']} {r['task']} seed {r['seed']}: {r['error']}")
    print(f"\nwall: {time.time() - t0:.0f}s; runs: {len(records) - len(failed)} ok, {len(failed)} failed")
    if cache is not None:
        shutil.rmtree(cache, ignore_errors=True)
    return 0 if not failed else 1


if __name__ == "__main__":
    raise SystemExit(main())
