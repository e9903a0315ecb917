#!/usr/bin/env python
"""Probe heads bench: today's grid of heads chosen on val against the head recipe it replaced.

For cities, SST-2 and SST-2 cut to 10% positives (~1,400 transfer examples), minilm-l6 (weak) and
mpnet-base (strong) features from the activation cache, every seed trains the protocol's probe
stages twice on the same split and features:

* before: the old recipe, kept here as the baseline (one linear head, AdamW lr 3e-3, weight decay
  0.01 decoupled, batch 64, 50 epochs, cosine schedule, nn.Linear init; no selection);
* after: ``w2sgen.train.probe.fit_probe`` with the default ``ProbeConfig`` (a grid of L2
  strengths trained together, L-BFGS for xent and Adam minibatches for logconf, the head chosen by
  agreement on val: with the val ground truth for floor and ceiling, with the weak labels on val for
  the students; test is never read), as ``protocol.train_stage`` calls it.

* fixed: ``fit_probe`` with one L2 strength, 0.01, and no grid or choice (xent heads only: floor,
  ceiling and the xent student): today's head without the grid. 0.01 is the old recipe's weight-decay
  value, but not the same regulariser (the old one was AdamW's decoupled decay over a fixed number of
  steps, not an L2 term at the optimum), so before → fixed is the solver and regulariser together,
  fixed → after the grid's choice.

Stages: floor (weak model, weak_train, ground truth), ceiling (strong, transfer, ground truth),
students xent and logconf (strong, transfer, the weak labels of the same recipe's floor).
Columns: test accuracy before, fixed and after (mean over seeds), Δ in points, the majority-class accuracy
of test (always answering its most frequent class), the wall time of one stage's heads (standardise,
train, predict transfer, val and test; features in memory; median over seeds) and the weight decays
chosen. ``head_s``: the default head alone, the after-ceiling of cities (7,034 × 768), median of 3
warm repetitions; ``imbalanced_margin``: the after-ceiling's test accuracy minus the majority-class
accuracy on the 10%-positive task, in points (mean over seeds).

Every timing is on this process's CPU (the heads use one thread), named with its 1-thread fp32
matmul peak and the load average; a loaded machine slows both columns alike but not equally, so
retake final numbers on a quiet one. The first run embeds ~25,000 texts with each model into
``--cache-dir`` (minutes); reruns are warm.

Usage: ``.venv/bin/python bench/heads.py [--seeds 0,1,2] [--quick] [--cache-dir DIR]`` (W2S_DATA_DIR
or ../shared/data must hold sst2/).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("W2S_PROGRESS", "0")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from speed import machine, matmul_peak  # noqa: E402

from w2sgen.config import ProbeConfig, RunConfig, SplitConfig  # noqa: E402

WEAK, STRONG = "minilm-l6", "mpnet-base"
STAGES = ("floor", "ceiling", "xent", "logconf")
# Split sizes per task. SST-2 is cut to a fixed pool first (``load``): its GLUE dev split whole (872,
# the test split) and 9,500 training examples, which every seed splits its own way.
SPLITS = {
    "cities": SplitConfig(n_weak_train=2000, n_transfer=7600, n_val=500, n_test=2000),  # the demo's
    "sst2": SplitConfig(n_weak_train=2000, n_transfer=7000, n_val=500),
    "sst2_pos10": SplitConfig(n_weak_train=1000, n_transfer=1400, n_val=400),
}
POOL = SplitConfig(n_weak_train=2000, n_transfer=7000, n_val=500, n_test=872, max_examples=12000, pool_seed=0)
"""SST-2's training pool: the 9,500 training examples this split config draws for seed 0."""
IMBALANCED = 3500  # training-pool examples of the 10%-positive task, 10% of them positive


# --------------------------------------------------------------------------- the old recipe (baseline)


def old_head(x: np.ndarray, target: np.ndarray, loss_fn, seed: int) -> torch.nn.Module:
    """The head before the grid: standardise, nn.Linear, AdamW(lr 3e-3, wd 0.01), batch 64, 50 epochs,
    cosine schedule over all steps, data order from ``seed``, one thread (as it ran in the protocol)."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    xt = torch.from_numpy(np.array(x, dtype=np.float32))
    yt = torch.from_numpy(np.array(target, dtype=np.float32))
    n, dim = xt.shape
    mean, std = xt.mean(0), xt.std(0).clamp_min(1e-6)
    lin = torch.nn.Linear(dim, yt.shape[1])
    opt = torch.optim.AdamW(lin.parameters(), lr=3e-3, weight_decay=0.01)
    bs = min(64, n)
    per_epoch = math.ceil(n / bs)
    total = per_epoch * 50
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    step = 0
    for _ in range(50):
        perm = torch.randperm(n, generator=g)
        for b in range(per_epoch):
            idx = perm[b * bs : (b + 1) * bs]
            loss = loss_fn(lin((xt[idx] - mean) / std), yt[idx], step, total)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1

    class Old(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return lin((x - mean) / std)

    return Old().eval()


def old_stage(x: np.ndarray, target: np.ndarray, loss_fn, seed: int, feats: dict[str, np.ndarray]):
    """(probs per split, chosen weight decay) of the old recipe."""
    from w2sgen.train.probe import one_thread

    with one_thread():
        head = old_head(x, target, loss_fn, seed)
        with torch.inference_mode():
            probs = {s: torch.softmax(head(torch.from_numpy(f)), -1).numpy() for s, f in feats.items()}
    return probs, 0.01


def new_stage(x: np.ndarray, target: np.ndarray, loss_fn, seed: int, feats: dict[str, np.ndarray], ref,
              cfg: ProbeConfig | None = None):
    """(probs per split, chosen weight decay) of ``fit_probe`` as ``protocol.train_stage`` runs it
    (default ``ProbeConfig``)."""
    from w2sgen.train.probe import fit_probe, predict

    fit = fit_probe(x, target, loss_fn, cfg or ProbeConfig(), seed, feats["val"], ref, desc="bench")
    return {s: predict(fit.head, f) for s, f in feats.items()}, fit.info["grid"]["chosen_weight_decay"]


FIXED_WD = 0.01
"""The ``fixed`` recipe: today's solver with one L2 strength (no grid, no choice), so that the grid's
effect on accuracy shows apart from the rest."""


def fixed_stage(x: np.ndarray, target: np.ndarray, loss_fn, seed: int, feats: dict[str, np.ndarray]):
    return new_stage(x, target, loss_fn, seed, feats, None, ProbeConfig(weight_decay=[FIXED_WD]))


# --------------------------------------------------------------------------- tasks and features


def data_root() -> Path:
    return Path(os.environ.get("W2S_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))


def load(name: str):
    """The task: cities (generated); sst2 (local files) cut to a fixed pool of 9,500 training examples
    and its whole test split; sst2_pos10, that pool cut to 10% positives in each pool (3,500 training
    examples, and the test split's 428 negatives with 48 positives)."""
    from w2sgen.tasks import load_task
    from w2sgen.tasks.base import TaskData
    from w2sgen.tasks.splits import make_splits

    if name == "cities":
        return load_task("cities")
    full = load_task("sst2", str(data_root() / "sst2"))
    f = full.frame
    sp = make_splits(full, POOL, 0)
    keep = np.sort(np.concatenate([sp["weak_train"], sp["transfer"], sp["val"], np.flatnonzero(f["pool"] == "test")]))
    f = f.iloc[keep]
    if name == "sst2":
        return TaskData("sst2", f, 2, list(full.label_names))
    rng = np.random.default_rng(0)
    parts = []
    for pool in ("train", "test"):
        p = f[f["pool"] == pool]
        neg, pos = p[p["label"] == 0], p[p["label"] == 1]
        if pool == "train":
            neg = neg.iloc[np.sort(rng.choice(len(neg), round(IMBALANCED * 0.9), replace=False))]
        pos = pos.iloc[np.sort(rng.choice(len(pos), round(len(neg) / 9), replace=False))]
        parts += [neg, pos]
    return TaskData("sst2_pos10", pd.concat(parts).sort_index(), 2, list(full.label_names))


def sides(cache: Path):
    from w2sgen.models import resolve_model
    from w2sgen.protocol import side_for

    cfg = RunConfig(task="bench", weak=WEAK, strong=STRONG)
    return (side_for(resolve_model(WEAK), None, cfg, cache), side_for(resolve_model(STRONG), None, cfg, cache))


def features(task, plan: dict, weak, strong) -> dict:
    """Features of every split row of every seed: {model: {row: (D,) float32}} as (rows, matrix)."""
    texts = task.frame["text"].tolist()
    out = {}
    for side, splits_of in ((weak, ("weak_train", "transfer", "val", "test")), (strong, ("transfer", "val", "test"))):
        rows = sorted({int(i) for sp in plan.values() for s in splits_of for i in sp[s]})
        side.texts_needed = [texts[i] for i in rows]
        x = side.features(side.texts_needed, desc=f"embed {side.model.name}")
        out[side.model.name] = (np.asarray(rows), np.asarray(x, dtype=np.float32))
    return out


# --------------------------------------------------------------------------- one task


def run_task(name: str, seeds: list[int], cache: Path) -> tuple[list[dict], float]:
    from w2sgen.methods import METHODS
    from w2sgen.metrics import accuracy, majority_accuracy
    from w2sgen.tasks.splits import make_splits
    from w2sgen.train.select import Reference

    task = load(name)
    plan = {seed: make_splits(task, SPLITS[name], seed) for seed in seeds}
    weak, strong = sides(cache)
    t0 = time.perf_counter()
    feats = features(task, plan, weak, strong)
    print(f"  {name}: {len(task)} examples, features ready in {time.perf_counter() - t0:.0f} s "
          f"(load {load_avg()})", file=sys.stderr, flush=True)
    labels = task.frame["label"].to_numpy()
    onehot = np.eye(task.num_classes, dtype=np.float32)[labels]
    losses = {m: METHODS.get(m).make_loss(METHODS.get(m).config()) for m in ("xent", "logconf")}
    rows = []
    for seed, sp in plan.items():
        def x(model: str, split: str, sp=sp) -> np.ndarray:
            r, m = feats[model]
            return m[np.searchsorted(r, sp[split])]

        fw = {s: x(WEAK, s) for s in ("transfer", "val", "test")}
        fs = {s: x(STRONG, s) for s in ("transfer", "val", "test")}
        gt_val = Reference(onehot[sp["val"]], "ground truth")
        for recipe, fit in (("before", old_stage), ("fixed", fixed_stage), ("after", new_stage)):
            kw = {"ref": gt_val} if recipe == "after" else {}
            out = {}
            t = time.perf_counter()
            out["floor"] = fit(x(WEAK, "weak_train"), onehot[sp["weak_train"]], losses["xent"], seed, fw, **kw)
            out["floor_s"] = time.perf_counter() - t
            t = time.perf_counter()
            out["ceiling"] = fit(x(STRONG, "transfer"), onehot[sp["transfer"]], losses["xent"], seed, fs, **kw)
            out["ceiling_s"] = time.perf_counter() - t
            weak_labels = out["floor"][0]
            kw = {"ref": Reference(weak_labels["val"], "weak labels")} if recipe == "after" else {}
            for m in ("xent", "logconf"):
                if recipe == "fixed" and m == "logconf":  # fixed: L-BFGS heads only (xent)
                    continue
                t = time.perf_counter()
                out[m] = fit(x(STRONG, "transfer"), weak_labels["transfer"], losses[m], seed, fs, **kw)
                out[f"{m}_s"] = time.perf_counter() - t
            for stage in STAGES:
                if stage not in out:
                    continue
                rows.append({"task": name, "seed": seed, "recipe": recipe, "stage": stage,
                             "n_train": len(sp["weak_train" if stage == "floor" else "transfer"]),
                             "acc": accuracy(labels[sp["test"]], out[stage][0]["test"]),
                             "majority": majority_accuracy(labels[sp["test"]]), "wall_s": out[f"{stage}_s"],
                             "wd": out[stage][1]})
        print(f"  {name} seed {seed} done (load {load_avg()})", file=sys.stderr, flush=True)
    head_s = float("nan")
    if name == "cities":  # the default head alone: the after-ceiling of the first seed, warm
        sp = plan[seeds[0]]
        xs = feats[STRONG][1][np.searchsorted(feats[STRONG][0], sp["transfer"])]
        fs = {s: feats[STRONG][1][np.searchsorted(feats[STRONG][0], sp[s])] for s in ("transfer", "val", "test")}
        ref = Reference(onehot[sp["val"]], "ground truth")
        times = []
        for _ in range(3):
            t = time.perf_counter()
            new_stage(xs, onehot[sp["transfer"]], losses["xent"], seeds[0], fs, ref)
            times.append(time.perf_counter() - t)
        head_s = statistics.median(times)
    return rows, head_s


def load_avg() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"


def table(rows: list[dict]) -> pd.DataFrame:
    f = pd.DataFrame(rows)
    out = []
    for (task, stage), g in f.groupby(["task", "stage"], sort=False):
        b, a, fx = g[g["recipe"] == "before"], g[g["recipe"] == "after"], g[g["recipe"] == "fixed"]
        out.append({"task": task, "stage": stage, "n_train": int(g["n_train"].median()), "seeds": len(a),
                    "acc_before": 100 * b["acc"].mean(),
                    "acc_fixed": 100 * fx["acc"].mean() if len(fx) else float("nan"),
                    "acc_after": 100 * a["acc"].mean(),
                    "delta": 100 * (a["acc"].mean() - b["acc"].mean()), "majority": 100 * a["majority"].mean(),
                    "s_before": b["wall_s"].median(), "s_after": a["wall_s"].median(),
                    "wd_after": ",".join(f"{v:g}" for v in a["wd"])})
    return pd.DataFrame(out)


def run(seeds: list[int], cache: Path, tasks: tuple[str, ...] = ("cities", "sst2", "sst2_pos10")) -> dict:
    t_start = time.perf_counter()
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    peak = matmul_peak(torch.float32, "cpu", 1024)
    torch.set_num_threads(prev)
    load0 = load_avg()
    rows, head_s = [], float("nan")
    for name in tasks:
        r, h = run_task(name, seeds, cache)
        rows += r
        head_s = h if name == "cities" else head_s
    t = table(rows)
    print(f"w2sgen heads bench: {machine('cpu')}; 1-thread fp32 matmul peak {peak / 1e9:.1f} GFLOP/s; "
          f"torch {torch.__version__}; seeds {','.join(map(str, seeds))}")
    print(f"load average at start {load0}, at end {load_avg()}")
    print()
    print(t.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    print()
    imb = t[(t["task"] == "sst2_pos10") & (t["stage"] == "ceiling")]
    margin = float(imb["acc_after"].iloc[0] - imb["majority"].iloc[0]) if len(imb) else float("nan")
    print(f"acc_fixed: today's L-BFGS head at L2 {FIXED_WD:g} alone, no grid (xent heads only; the old recipe's "
          "decoupled AdamW decay had the same value, not the same effect); acc_after: the grid, chosen on val")
    print(f"head_s: the after-ceiling of cities alone, median of 3 warm runs; wall {time.perf_counter() - t_start:.0f} s")
    print(f"summary: head_s={head_s:.3f} imbalanced_margin={margin:.2f}")
    return {"head_s": head_s, "imbalanced_margin": margin, "table": t}


def main(argv: list[str] | None = None) -> None:
    from w2sgen.store.cache import local_cache_dir

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    ap.add_argument("--quick", action="store_true", help="seed 0 only")
    ap.add_argument("--tasks", default="cities,sst2,sst2_pos10", help="comma-separated, of cities, sst2, sst2_pos10")
    ap.add_argument("--cache-dir", default=None, help="activation cache root (default $W2S_CACHE_DIR or ~/.cache/w2sgen)")
    a = ap.parse_args(argv)
    seeds = [0] if a.quick else [int(s) for s in a.seeds.split(",") if s.strip()]
    run(seeds, local_cache_dir(a.cache_dir), tuple(t for t in a.tasks.split(",") if t))


if __name__ == "__main__":
    main()
