#!/usr/bin/env python
"""Sweep bench: stages per minute of the local executor (1 and 2 workers) and of Ray (2 CPUs), and reruns.

One process, one small grid, a fresh temporary cache and results directory per executor, so each
executor trains every unique stage of the grid from scratch; the ratios compare measurements taken
side by side in this run (on a loaded machine they are noisy). Rows:

* ``local x1``: ``run_local(workers=1)`` (runs in this process, one after the other) — the baseline.
* ``local x2``: ``run_local(workers=2)`` (2 spawned worker processes; each imports torch and loads
  its models, which a small grid does not amortize).
* ``ray x2``: ``run_ray(num_cpus=2)`` on a local Ray started (and shut down) inside the measurement.
* ``rerun cached``: the baseline's sweep again, same cache and results: every stage is cached, a
  run only writes its folder and index row (should take seconds).
* ``rerun +1 method``: the baseline's sweep with one more method: only the new students train
  (ratio = its time over the first run's).

The grid: task ``cities`` (generated offline), models ``tiny-a``, ``tiny-b`` (random 2-layer BERTs
built here) and ``minilm-l6`` (the packaged model; a third tiny model when it is not installed),
every pair i < j, methods xent and logconf, seeds 0 (quick) or 0-1.

Usage: ``.venv/bin/python bench/sweep.py [--quick] [--no-ray]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("W2S_PROGRESS", "0")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

SIZES = {
    "full": dict(seeds=[0, 1], splits=dict(n_weak_train=400, n_transfer=400, n_val=200, n_test=200), epochs=10),
    "quick": dict(seeds=[0], splits=dict(n_weak_train=200, n_transfer=200, n_val=100, n_test=100, min_test=100),
                  epochs=5),
    # for the test suite: tiny models only, no Ray (val and test minimums lowered to the tiny sizes)
    "smoke": dict(seeds=[0], splits=dict(n_weak_train=40, n_transfer=40, n_val=20, n_test=20, min_val=20, min_test=20),
                  epochs=2, tiny_only=True),
}
METHODS = ["xent", "logconf"]
EXTRA_METHOD = "entropy"


@dataclass
class Row:
    name: str
    runs: int
    trained: int
    wall_s: float
    note: str = ""

    @property
    def per_min(self) -> float:
        return self.trained / self.wall_s * 60 if self.wall_s > 0 else 0.0


def build_models(root: Path, tiny_only: bool = False) -> tuple[list[str], str]:
    """Two (or three) tiny random BERTs with MiniLM's tokenizer (or a word-level one) + minilm-l6 when packaged."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    try:
        if tiny_only:
            raise ImportError("tiny models only")
        from w2sgen.models import resolve_model

        minilm = resolve_model("minilm-l6").path
        tok = AutoTokenizer.from_pretrained(minilm)
        have_minilm = Path(minilm).is_dir()
    except Exception:  # not packaged here: tiny models only
        have_minilm = False
        tok = None
    models = []
    names = ["tiny-a", "tiny-b"] + ([] if have_minilm else ["tiny-c"])
    for i, name in enumerate(names):
        d = root / name
        d.mkdir(parents=True)
        if tok is None:
            tok = _word_tokenizer(root / "tok")
        tok.save_pretrained(d)
        torch.manual_seed(i)
        cfg = BertConfig(vocab_size=len(tok), hidden_size=32 * (i + 1), intermediate_size=64 * (i + 1),
                         num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=128,
                         pad_token_id=tok.pad_token_id)
        BertModel(cfg).save_pretrained(d)
        models.append(str(d))
    if have_minilm:
        models.append("minilm-l6")
    return models, ("tiny-a, tiny-b (random BERTs, MiniLM tokenizer), minilm-l6" if have_minilm
                    else "tiny-a, tiny-b, tiny-c (random BERTs; minilm-l6 is not installed)")


def _word_tokenizer(path: Path):
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = ["[PAD]", "[UNK]", *"abcdefghijklmnopqrstuvwxyz0123456789.,?:".split()]
    core = Tokenizer(models.WordLevel({w: i for i, w in enumerate(vocab)}, unk_token="[UNK]"))
    core.normalizer = normalizers.Lowercase()
    core.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token="[PAD]", unk_token="[UNK]")


def sweep_runs(models: list[str], size: dict, out: Path, methods: list[str]):
    from w2sgen.sweep.grid import expand, parse_sweep

    spec = parse_sweep({"task": "cities", "models": models, "exclude_self": True, "methods": methods,
                        "seeds": size["seeds"], "splits": size["splits"], "probe": {"epochs": size["epochs"]},
                        "out": str(out)}, "bench")
    return expand(spec)


def measure(name: str, runs, cache: Path, fn, note: str = "") -> Row:
    from w2sgen.sweep.plan import make_plan

    plan = make_plan(runs, cache)
    todo = plan.unique - plan.cached
    t0 = time.perf_counter()
    fn()
    wall = time.perf_counter() - t0
    after = make_plan(runs, cache)
    assert after.cached == after.unique, f"{name}: {after.unique - after.cached} stages not cached after the sweep"
    return Row(name, len(runs), todo, wall, note)


def print_table(rows: list[Row], base: Row) -> None:
    print(f"{'config':<18} {'runs':>4} {'trained':>7} {'wall_s':>8} {'stages/min':>10} {'vs local x1':>11}  note")
    for r in rows:
        if r.trained:
            ratio = f"{r.per_min / base.per_min:.2f}x"
        else:
            ratio = f"{r.wall_s / base.wall_s:.2f} time"
        if r.name.startswith("rerun +"):
            ratio = f"{r.wall_s / base.wall_s:.2f} time"
        print(f"{r.name:<18} {r.runs:>4} {r.trained:>7} {r.wall_s:>8.1f} {r.per_min:>10.1f} {ratio:>11}  {r.note}")


def run(size_name: str = "full", with_ray: bool = True) -> dict[str, float]:
    """Run the bench, print the table and a summary line; return the summary numbers."""
    import logging

    from w2sgen.sweep.local import run_local

    logging.getLogger("w2sgen").setLevel(logging.WARNING)
    size = SIZES[size_name]
    t_start = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="w2s-bench-sweep-"))
    try:
        models, model_note = build_models(root / "models", size.get("tiny_only", False))
        rows: list[Row] = []

        def fresh(tag: str, methods: list[str] = METHODS):
            out, cache = root / tag / "out", root / tag / "cache"
            return sweep_runs(models, size, out, methods), cache

        runs, cache1 = fresh("local1")
        base = measure("local x1", runs, cache1, lambda: run_local(runs, workers=1, cache_dir=cache1),
                       "in this process")
        rows.append(base)
        runs2, cache2 = fresh("local2")
        rows.append(measure("local x2", runs2, cache2, lambda: run_local(runs2, workers=2, cache_dir=cache2),
                            "2 spawned processes"))
        if with_ray and not size.get("tiny_only"):
            try:
                from w2sgen.sweep.ray_exec import import_ray, run_ray

                import_ray()
                runs3, cache3 = fresh("ray2")
                rows.append(measure("ray x2", runs3, cache3,
                                    lambda: run_ray(runs3, cache_dir=cache3, num_cpus=2),
                                    "local Ray, 2 CPUs; ray.init and shutdown included"))
            except Exception as e:  # no ray: the row says why
                print(f"ray: skipped ({e})")
        rows.append(measure("rerun cached", runs, cache1, lambda: run_local(runs, workers=1, cache_dir=cache1),
                            "every stage cached"))
        runs4 = sweep_runs(models, size, root / "local1" / "out", [*METHODS, EXTRA_METHOD])
        rows.append(measure(f"rerun +{EXTRA_METHOD}", runs4, cache1,
                            lambda: run_local(runs4, workers=1, cache_dir=cache1),
                            "only the new students train; ratio: time over the first run"))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    print(f"w2sgen sweep bench ({size_name}): {platform.machine()}, {os.cpu_count()} cores; load average {load}")
    print(f"grid: cities, models {model_note}, pairs i < j, methods {', '.join(METHODS)}, seeds {size['seeds']}, "
          f"splits {size['splits']}")
    print()
    print_table(rows, base)
    print()
    by = {r.name: r for r in rows}
    summary = {"local2_ratio": by["local x2"].per_min / base.per_min,
               "cached_rerun_s": by["rerun cached"].wall_s,
               "add_method_ratio": by[f"rerun +{EXTRA_METHOD}"].wall_s / base.wall_s}
    if "ray x2" in by:
        summary["ray2_ratio"] = by["ray x2"].per_min / base.per_min
    print(f"wall {time.perf_counter() - t_start:.0f} s")
    print("summary: " + " ".join(f"{k}={v:.2f}" for k, v in summary.items()))
    return summary


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="one seed, smaller splits (under ~3 minutes on 2 cores)")
    ap.add_argument("--size", choices=sorted(SIZES), default=None, help="full (default), quick or smoke")
    ap.add_argument("--no-ray", action="store_true", help="skip the Ray row")
    args = ap.parse_args(argv)
    run(args.size or ("quick" if args.quick else "full"), not args.no_ray)


if __name__ == "__main__":
    main()
