#!/usr/bin/env python
"""Methods bench: every registered method on real tasks, PGR with 95% intervals, ΔPGR and Δacc against
``xent`` paired on the same runs, and each method's cost relative to ``xent``.

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

Every number comes from ``w2sgen.aggregate`` (as ``w2s results --summary`` and ``w2s report``):
``PGR`` = (mean w2s − mean weak) / (mean ceiling − mean weak) over seeds [95% Fieller interval over
seeds and test groups], shown only when the gap is not flagged (under 2 points, its interval
includes 0, or the PGR interval is unbounded: ``stats.pgr_flag_reason``); ``ΔPGR`` = (mean method − mean xent) / (mean ceiling − mean weak) and ``Δacc`` = mean
method − mean xent on the same runs; ``acc`` the student's mean test accuracy; ``cost`` the median
over runs of the method's wall time over ``xent``'s in the same run (the whole method: its
intermediate stages, extra embeddings and training; the shared backbone activations of the run's
two models are cached before the methods run and not counted). The overall table weights each task
equally and keeps every run. Methods that read ground truth (``uses_ground_truth``) are marked ``*``
and never ranked. "Above xent" compares every method (about 15) with xent, each at 95%, with no
correction for multiple comparisons: under no effect about 2.5% of the methods pass by chance in a
task. ``--from-out DIR`` also prints what the old rule (the mean of per-run ratios,
percentile bootstrap over seeds) gives for the same runs.

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
    """Per (run, method) rows of ``w2sgen.aggregate.runs_table`` (gap, interval, flag) + group, cost, ladder."""
    from w2sgen.aggregate import runs_table

    frames = []
    for r in records:
        if "record" not in r:
            continue
        rec = r["record"]
        t = runs_table([rec]).assign(group=r["group"])
        st = rec["stages"]["students"]
        t["wall_s"] = [st[m].get("wall_s") for m in t["method"]]
        for m, b in st.items():
            ladder = (b.get("analysis") or {}).get("ladder") or (b.get("train") or {}).get("ladder")
            if m == "probe_ladder" and isinstance(ladder, dict):
                for k, v in ladder.items():
                    t.loc[t["method"] == m, f"ladder_{k}"] = v
        frames.append(t)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _preds(out: Path | None, group: str):
    from w2sgen.aggregate import Predictions

    return Predictions(out / group if out is not None else None)


def summarize(frame: pd.DataFrame, out: Path | None = None) -> pd.DataFrame:
    """Per (group, task, method): ``w2sgen.aggregate.summarize`` (PGR = ratio of means, Fieller
    interval, gap and flag: the numbers ``w2s results --summary`` and ``w2s report`` print) joined
    with ``aggregate.compare`` against xent (ΔPGR, Δacc, paired on the same runs) and the cost."""
    from w2sgen import aggregate

    parts = []
    for (group, task), g in frame.groupby(["group", "task"], sort=False):
        preds = _preds(out, group)
        s = aggregate.summarize(g, preds=preds)
        c = aggregate.compare(g, "xent", preds=preds)
        c = c.rename(columns={"flagged": "delta_flagged", "flag_reason": "delta_flag_reason"})
        c = c[[k for k in ("method", "delta_pgr", "delta_pgr_lo", "delta_pgr_hi", "delta_flagged", "delta_acc",
                           "delta_acc_lo", "delta_acc_hi", "significant") if k in c]]
        s = s.merge(c, on="method", how="left")
        s["cost"] = [cost(g, m) for m in s["method"]]
        s["wall_s"] = [float(g[g["method"] == m]["wall_s"].median()) for m in s["method"]]
        parts.append(s.assign(group=group, task=task))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def cost(g: pd.DataFrame, method: str) -> float:
    """Median over the runs of ``g`` of the method's wall time over xent's in the same run."""
    ref = g[g["method"] == "xent"].set_index("seed")["wall_s"].astype(float).clip(lower=1e-3)
    gm = g[g["method"] == method].set_index("seed")["wall_s"].astype(float)
    common = gm.index.intersection(ref.index)
    return float((gm.loc[common] / ref.loc[common]).median()) if len(common) else float("nan")


def _iv(v: float, lo: float, hi: float, scale: float = 1.0, nd: int = 2) -> str:
    if not np.isfinite(v):
        return "–"
    def f(x: float) -> str:
        return f"{scale * x:+.{nd}f}"

    return f"{f(v)} [{f(lo)}, {f(hi)}]" if np.isfinite(lo) and np.isfinite(hi) else f"{f(v)} [?]"


def print_table(s: pd.DataFrame, frame: pd.DataFrame) -> None:
    from w2sgen.aggregate import mark

    for (group, task), g in s.groupby(["group", "task"], sort=False):
        g0 = g[g["method"] == "xent"].iloc[0] if (g["method"] == "xent").any() else g.iloc[0]
        flag = f"  !! flagged ({g0['flag_reason']}): no PGR, read Δacc" if g0["flagged"] else ""
        print(f"\n{task} · {group} pair · weak {g0['weak_acc']:.1%} → ceiling {g0['ceiling_acc']:.1%} · gap "
              f"{_iv(g0['gap_acc'], g0['gap_acc_lo'], g0['gap_acc_hi'], 100, 1)} pts · seeds {int(g0['n_seeds'])}{flag}")
        print(f"  {'method':<18} {'acc':>6} {'PGR [95% CI]':>22} {'ΔPGR vs xent [95% CI]':>25} "
              f"{'Δacc vs xent [95% CI]':>26} {'cost':>6} {'wall_s':>7}")
        for _, r in g.sort_values("delta_acc", ascending=False, na_position="first").iterrows():
            sig = "*" if r["method"] != "xent" and r.get("significant", 0) else " "
            pgr = "flagged" if r["flagged"] else _iv(r["pgr_acc"], r["pgr_acc_lo"], r["pgr_acc_hi"])
            if r["method"] == "xent":
                dp, da = "(reference)", ""
            else:
                dp = "flagged" if _flag(r, "delta_flagged") else _iv(r["delta_pgr"], r["delta_pgr_lo"],
                                                                      r["delta_pgr_hi"])
                da = _iv(r["delta_acc"], r["delta_acc_lo"], r["delta_acc_hi"], 100, 1) + " pts"
            print(f"  {mark(r['method'], bool(r['uses_ground_truth'])):<18} {r['w2s_acc']:>6.1%} {pgr:>22}"
                  f"   {dp:>22}{sig} {da:>26} {r['cost']:>5.1f}x {r['wall_s']:>7.1f}")
    print("\nPGR = (mean w2s − mean weak)/(mean ceiling − mean weak) over seeds, ΔPGR and Δacc paired with xent on "
          "the same runs; 95% intervals over seeds and test groups (w2sgen.aggregate, as `w2s results --summary` "
          "and `w2s report`). * the Δacc interval excludes 0. Flagged: the gap is under 2 points or its interval "
          "includes 0. cost = wall time / xent's (median over runs). A method marked * after its name reads "
          "ground truth and is never ranked.")
    lad = frame[frame["method"] == "probe_ladder"]
    cols = [c for c in ("ladder_lp_weak", "ladder_lp_gt", "ladder_ft_weak", "ladder_ft_weak_lp_gt", "ladder_ft_gt")
            if c in lad]
    if len(lad) and cols:
        print("\nprobe_ladder (test accuracy, mean over seeds): " + ", ".join(c[7:] for c in cols))
        for task, g in lad.groupby("task", sort=False):
            print(f"  {task:<18} " + "  ".join(f"{c[7:]} {g[c].mean():.1%}" for c in cols))


def overall(s: pd.DataFrame, frame: pd.DataFrame, out: Path | None = None) -> pd.DataFrame:
    """Per method over the tasks of its group (each task weighted equally): PGR and ΔPGR against
    xent as ratios of the means over tasks, Δacc, tasks won / lost (Δacc interval above / below 0),
    all from ``w2sgen.aggregate`` over every run (a task is never dropped for its gap: the aggregate
    has its own gap and flag)."""
    from w2sgen import aggregate

    rows = []
    for group, g in frame.groupby("group", sort=True):
        preds = _preds(out, group)
        summ = aggregate.summarize(g, by=(), preds=preds).set_index("method")
        cmp = aggregate.compare(g, "xent", by=(), preds=preds).set_index("method")
        per_task = s[s["group"] == group]
        for m in summ.index:
            r = {"group": group, "method": m, "runs": int(summ.loc[m, "n_seeds"]),
                 "uses_ground_truth": bool(summ.loc[m, "uses_ground_truth"]),
                 **{k: summ.loc[m, k] for k in ("pgr_acc", "pgr_acc_lo", "pgr_acc_hi", "flagged", "flag_reason",
                                                "gap_acc", "gap_acc_lo", "gap_acc_hi")}}
            if m in cmp.index:
                r.update({k: cmp.loc[m, k] for k in ("delta_pgr", "delta_pgr_lo", "delta_pgr_hi", "delta_acc",
                                                     "delta_acc_lo", "delta_acc_hi")})
                r["delta_flagged"] = bool(cmp.loc[m, "flagged"])
            t = per_task[per_task["method"] == m]
            r["tasks_won"] = int((t.get("significant", pd.Series(dtype=float)) > 0).sum())
            r["tasks_lost"] = int((t.get("significant", pd.Series(dtype=float)) < 0).sum())
            r["tasks"] = int(len(t))
            r["cost"] = t["cost"].median()
            rows.append(r)
    return pd.DataFrame(rows)


def _flag(r: pd.Series, col: str) -> bool:
    """A flag column of a merged row (missing or NaN: flagged, nothing to show)."""
    v = r.get(col)
    return True if v is None or (isinstance(v, float) and not np.isfinite(v)) else bool(v)


MULTIPLE = ("no correction for multiple comparisons: each Δacc interval is a 95% interval on its own, so with M "
            "methods about M × 2.5% of them lie above xent by chance in each task under no effect")


def print_overall(o: pd.DataFrame) -> None:
    from w2sgen.aggregate import mark

    print("\noverall (each task weighted equally; every run counts; 95% intervals over seeds and test groups; the "
          "gap is each method's aggregate gap, ceiling − weak over its runs, with its flag):")
    print(f"  {'group':<8} {'method':<18} {'runs':>4} {'gap pts [95% CI]':>20} {'Δacc pts [95% CI]':>22} "
          f"{'won/lost':>9} {'PGR [95% CI]':>22} {'ΔPGR [95% CI]':>22} {'cost':>6}")
    for _, r in o.sort_values(["group", "delta_acc"], ascending=[False, False], na_position="first").iterrows():
        pgr = f"flagged ({r['flag_reason']})" if r["flagged"] else _iv(r["pgr_acc"], r["pgr_acc_lo"], r["pgr_acc_hi"])
        if r["method"] == "xent":
            da, dp, wl = "(reference)", "", ""
        else:
            da = _iv(r.get("delta_acc", np.nan), r.get("delta_acc_lo", np.nan), r.get("delta_acc_hi", np.nan), 100, 1)
            dp = "flagged" if _flag(r, "delta_flagged") else _iv(r.get("delta_pgr", np.nan),
                                                                  r.get("delta_pgr_lo", np.nan),
                                                                  r.get("delta_pgr_hi", np.nan))
            wl = "–" if r["uses_ground_truth"] else f"{r['tasks_won']}/{r['tasks_lost']} of {r['tasks']}"
        gap = _iv(r["gap_acc"], r["gap_acc_lo"], r["gap_acc_hi"], 100, 1) + ("!" if r["flagged"] else " ")
        print(f"  {r['group']:<8} {mark(r['method'], r['uses_ground_truth']):<18} {r['runs']:>4} {gap:>20} {da:>22} "
              f"{wl:>9} {pgr:>22} {dp:>22} {r['cost']:>5.1f}x")
    print("  ! the gap is flagged (under 2 points, its interval includes 0, or the PGR interval is unbounded): no PGR")
    fair = o[~o["uses_ground_truth"].astype(bool) & (o["method"] != "xent")]
    for group, g in fair.groupby("group", sort=True):  # a ranking of weak-to-strong methods only
        better = g[g["delta_acc_lo"] > 0].sort_values("delta_acc", ascending=False)
        print(f"  {group}: " + (f"above xent (Δacc interval > 0): {', '.join(better['method'])}" if len(better)
                                else "no method is above xent with 95% confidence")
              + f" ({len(g)} methods compared; {MULTIPLE})")


def print_before_after(frame: pd.DataFrame, s: pd.DataFrame) -> None:
    """What the old aggregation (the mean of per-run ratios, percentile bootstrap over seeds, flagged
    runs included) gives for the same runs, next to the ratio of means."""
    from w2sgen.aggregate import mean_of_ratios

    print("\nbefore/after: PGR and ΔPGR vs xent under the old rule (mean of per-run ratios, percentile bootstrap "
          "over seeds) and the new one (ratio of means, Fieller interval, flag):")
    print(f"  {'group':<8} {'task':<18} {'method':<18} {'old PGR [95%]':>22} {'new PGR [95%]':>22} "
          f"{'old ΔPGR [95%]':>22} {'new ΔPGR [95%]':>22}")
    for (group, task), g in frame.groupby(["group", "task"], sort=False):
        old = mean_of_ratios(g).set_index("method")
        new = s[(s["group"] == group) & (s["task"] == task)].set_index("method")
        for m in old.index:
            o, n = old.loc[m], new.loc[m] if m in new.index else None
            npgr = "flagged" if n is None or n["flagged"] else _iv(n["pgr_acc"], n["pgr_acc_lo"], n["pgr_acc_hi"])
            nd = ("" if m == "xent" else "flagged" if n is None or _flag(n, "delta_flagged")
                  else _iv(n["delta_pgr"], n["delta_pgr_lo"], n["delta_pgr_hi"]))
            od = "" if m == "xent" else _iv(o["old_delta_pgr"], o["old_delta_lo"], o["old_delta_hi"])
            print(f"  {group:<8} {task:<18} {m:<18} {_iv(o['old_pgr'], o['old_pgr_lo'], o['old_pgr_hi']):>22} "
                  f"{npgr:>22} {od:>22} {nd:>22}")


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
        return report(records, tasks, time.time(), a.csv, cache=None, out=Path(a.from_out), before_after=True)

    t0 = time.time()
    print(f"methods bench ({size}): tasks {tasks}, seeds {seeds}, {len(methods)} methods; out {out}", file=sys.stderr)
    records = []
    for group, ms in groups.items():
        if ms:
            records += run_group(group, ms, tasks, seeds, size, out, cache, args)
    return report(records, tasks, t0, a.csv, cache, out=out)


def report(records: list[dict], tasks: list[str], t0: float, csv: str | None, cache: Path | None,
           out: Path | None = None, before_after: bool = False) -> int:
    """Print the tables of ``records``; returns the exit code (1 if a run failed or none finished)."""
    frame = tidy(records)
    if csv:
        frame.to_csv(csv, index=False)
    if frame.empty:
        print("no run finished", file=sys.stderr)
        return 1
    s = summarize(frame, out)
    print_table(s, frame)
    print_overall(overall(s, frame, out))
    if before_after:
        print_before_after(frame, s)
    failed = [r for r in records if "error" in r]
    for r in failed:
        print(f"FAILED {r['group']} {r['task']} seed {r['seed']}: {r['error']}")
    print(f"\nwall: {time.time() - t0:.0f}s; runs: {len(records) - len(failed)} ok, {len(failed)} failed")
    if cache is not None:
        shutil.rmtree(cache, ignore_errors=True)
    return 0 if not failed else 1


if __name__ == "__main__":
    raise SystemExit(main())
