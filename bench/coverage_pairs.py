#!/usr/bin/env python
"""Coverage of a task's intervals pooled over two model pairs that share the weak model (issue 14 review).

Within a seed, every model pair of a task scores the same test examples, and pairs with the same
weak model share its floor (one weak stage, one set of weak predictions). Pooled as independent
cells (w2sgen before this check: ``stats.combine``), the task's gap and PGR intervals are too narrow;
pooled seed by seed (``w2sgen.aggregate._pool`` → ``stats.pool_seeds``) they hold their level.

Simulation: ``bench/coverage.py``'s (1,000 test examples in groups of 4, intra-group correlation
0.2, weak 70%, ``--design shared`` by default: one test set for every seed); five stages, weak,
ceiling A, student A, ceiling B, student B, with seed-to-seed SDs of ``--weak-sd`` points (default
1, as the issue; 3 shows the effect of a weak model whose floor moves with its seed), 1 and 1.5;
pair A = (weak, A), pair B = (weak, B): one weak floor. True gaps 5, 10, 20 points, PGR 0.3 and
0.7 for both pairs, 3 and 5 seeds. Flags as w2sgen (``stats.pgr_flag_reason``); coverage of the
gap over every experiment, of PGR over those that show it.

Usage: ``python bench/coverage_pairs.py [--reps N] [--weak-sd PTS] [--design shared|fresh]``. The
last line is ``summary: joint_gap=X joint_pgr=Y independent_gap=Z independent_pgr=W``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from w2sgen import aggregate, stats  # noqa: E402

_spec = importlib.util.spec_from_file_location("w2s_bench_coverage", HERE / "coverage.py")
coverage = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = coverage
_spec.loader.exec_module(coverage)

GAPS = (0.05, 0.10, 0.20)
PGRS = (0.3, 0.7)
SEEDS = (3, 5)
PAIRS = ([0, 1, 2], [0, 3, 4])  # (weak, ceiling, w2s) columns of pair A and pair B
E3 = np.eye(3)
POOLS = ("joint", "independent")


def experiment(t: np.ndarray, design: str) -> dict[str, tuple[stats.Interval, stats.Interval]]:
    """One experiment's (S, G, 5) group sums -> per pooling, the task's (gap, PGR) intervals."""
    s, g, _ = t.shape
    sizes = np.full(g, float(coverage.GROUP))
    cells = []
    for cols in PAIRS:
        runs = [stats.GroupedRun(np.arange(g) + (0 if design == "shared" else i * g), sizes, t[i][:, cols])
                for i in range(s)]
        acc = np.stack([r.acc for r in runs])
        cells.append(aggregate.Cell(stats.seed_moments(acc, runs), [], True, "task", tuple(range(s)), acc, runs))
    out = {}
    for name, m in (("joint", aggregate._pool(cells)), ("independent", stats.combine([c.moments for c in cells]))):
        out[name] = (stats.contrast_interval(m, E3[1] - E3[0]), stats.ratio_interval(m, E3[2] - E3[0], E3[1] - E3[0]))
    return out


def run(reps: int, weak_sd: float, design: str, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    sd = np.array([weak_sd / 100, 0.010, 0.015, 0.010, 0.015])
    rows = []
    for s in SEEDS:
        for gap in GAPS:
            hits = {p: [0, 0, 0] for p in POOLS}  # gap hits, PGR hits, PGR shown
            for pgr in PGRS:
                w = coverage.WEAK
                acc = np.array([w, w + gap, w + pgr * gap, w + gap, w + pgr * gap])
                t, _ = coverage.simulate(rng, reps, s, acc, design, sd)
                for r in range(reps):
                    for p, (g_iv, p_iv) in experiment(t[r], design).items():
                        hits[p][0] += g_iv.contains(gap)
                        if stats.pgr_flag_reason(g_iv, p_iv, coverage.THRESHOLD) is None:
                            hits[p][1] += p_iv.contains(pgr)
                            hits[p][2] += 1
            n = reps * len(PGRS)
            rows.append({"seeds": s, "gap": gap, "n": n,
                         **{f"{p}_gap": hits[p][0] / n for p in POOLS},
                         **{f"{p}_pgr": hits[p][1] / max(hits[p][2], 1) for p in POOLS},
                         **{f"{p}_shown": hits[p][2] / n for p in POOLS}})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=200, help="experiments per (gap, seeds, PGR) (default 200)")
    ap.add_argument("--weak-sd", type=float, default=1.0, help="seed-to-seed SD of the weak model, points")
    ap.add_argument("--design", choices=["shared", "fresh"], default="shared")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    load0, t0 = os.getloadavg(), time.time()
    rows = run(a.reps, a.weak_sd, a.design, a.seed)
    print(f"two model pairs sharing the weak model; design {a.design}; weak SD {a.weak_sd:g} pts; "
          f"{2 * a.reps} experiments per cell")
    print(f"{'seeds':>5} {'gap':>5}  {'joint: gap':>10} {'PGR':>6} {'shown':>6}  {'independent: gap':>16} {'PGR':>6} "
          f"{'shown':>6}")
    for r in rows:
        print(f"{r['seeds']:>5} {100 * r['gap']:>4.0f}p  {r['joint_gap']:>10.3f} {r['joint_pgr']:>6.3f} "
              f"{r['joint_shown']:>6.1%}  {r['independent_gap']:>16.3f} {r['independent_pgr']:>6.3f} "
              f"{r['independent_shown']:>6.1%}")
    pooled = {k: float(np.mean([r[k] for r in rows])) for k in ("joint_gap", "joint_pgr", "independent_gap",
                                                                 "independent_pgr")}
    print(f"wall {time.time() - t0:.0f}s on {coverage.cpu_name()} ({os.cpu_count()} cores); load average (1 min) "
          f"{load0[0]:.2f} at start, {os.getloadavg()[0]:.2f} at end")
    print("summary: " + " ".join(f"{k}={v:.3f}" for k, v in pooled.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
