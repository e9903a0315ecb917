#!/usr/bin/env python
"""Coverage of PGR and ΔPGR intervals over seeds, by simulation (issue 14): which interval holds its level.

Each simulated experiment has S seeds; a seed has a weak floor, a ceiling and two students, each
scored on a test set of 1,000 examples in 250 groups of 4. Fixed by the issue, so that nobody tunes
the simulation to the interval:

* intra-group correlation of an example's correctness 0.2 (a stage's examples in one group);
* seed-to-seed SD of the true accuracy: 1.0 point for weak and ceiling, 1.5 points for students;
* true gaps (ceiling − weak) 1, 2, 5, 10 and 20 points; true PGR 0.3 and 0.7 (student A);
  true ΔPGR (student B − student A) 0 and 0.2; 3 and 5 seeds.

Choices the issue leaves open, made once here and not varied: the weak accuracy is 70%; a seed's
accuracies are truth + independent normal shifts (clipped to [0.001, 0.999]); an example's
correctness is independent across stages given the accuracies; within a group, a stage's outcome
is the group's draw with probability √0.2 and the example's own draw otherwise (correlation
exactly 0.2). ``--design shared`` (default) or ``fresh``. Shared: every seed scores the same test
examples, and each example's outcome is one shared across seeds with probability 1/2 — the common
case in w2sgen, where a task with its own test pool (most tasks) uses the same test split for every
seed. Fresh: every seed draws its own test set (a task without a test pool, whose test split is
carved from the training pool with split seed = seed, unless ``splits.pool_seed`` fixes it).

A PGR (ΔPGR) is flagged as w2sgen flags an aggregate (``stats.pgr_flag_reason``, as
``w2sgen.aggregate.ratio_row``): the gap's 95% interval (each analytic method's own:
``stats.seed_moments`` + ``stats.contrast_interval``; the bootstrap methods use w2sgen's) includes 0,
the mean gap is under 2 points, or the ratio's own interval is unbounded. Coverage counts the
experiments whose PGR (ΔPGR) is shown; a cell (gap × seeds) is flagged when under half its
experiments show a PGR, and the pooled coverage is over the shown experiments of the unflagged
cells. Every method is scored on the same experiments. Methods:

* ``fieller-vc`` (w2sgen's, ``stats.INTERVAL_METHOD``): Fieller's interval for the ratio of means,
  t quantile with Satterthwaite df; covariance of the means from variance components: the test
  noise (cluster-robust over groups, many df) + the seeds' excess spread (S − 1 df) + test noise
  the seeds share — ``stats.seed_moments(between="vc")`` / ``stats.ratio_interval``.
* ``fieller-t``: Fieller with the covariance over seeds alone (S − 1 df; + shared test noise).
* ``delta-t``: the same covariance, delta method (R ± t·se).
* ``delta-z-test``: test-sample noise only (what a bootstrap over test examples measures), normal quantile.
* ``pct-seeds``: percentile bootstrap over seeds of the ratio of means.
* ``bca-seeds``: BCa bootstrap over seeds (jackknife over seeds for the acceleration).
* ``hier-boot``: hierarchical percentile bootstrap, seeds then groups within each seed.
* ``old-mean-ratios``: the mean of per-seed ratios with a percentile bootstrap over seeds (w2sgen
  before issue 14), scored against the true PGR.

Also printed: the coverage of one run's gap interval (cluster-robust over groups, what ``run.json``
stores and the run flag uses) for that seed's true gap.

Usage: ``python bench/coverage.py [--quick] [--reps N] [--design shared|fresh] [--boot-reps N]``.
The last line is ``summary: coverage_pgr=X coverage_delta=Y runs=N`` (w2sgen's method, pooled).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from w2sgen import stats  # noqa: E402

N_TEST, GROUP, ICC = 1000, 4, 0.2
SD = np.array([0.010, 0.010, 0.015, 0.015])  # weak, ceiling, student A, student B
WEAK = 0.70
GAPS = (0.01, 0.02, 0.05, 0.10, 0.20)
PGRS = (0.3, 0.7)
DELTAS = (0.0, 0.2)
SEEDS = (3, 5)
THRESHOLD = stats.GAP_THRESHOLD
LEVEL = stats.LEVEL
SHARED_FRACTION = 0.5
W, C, A, B = 0, 1, 2, 3  # stage columns
E = np.eye(4)
PGR_C = (E[A] - E[W], E[C] - E[W])  # (numerator, denominator) contrasts
DELTA_C = (E[B] - E[A], E[C] - E[W])
GAP2 = np.array([-1.0, 1.0])  # ceiling − weak over (weak, ceiling)
ANALYTIC = ("fieller-vc", "fieller-t", "delta-t", "delta-z-test")
BOOT = ("pct-seeds", "bca-seeds", "hier-boot", "old-mean-ratios")
MAIN = stats.INTERVAL_METHOD


def simulate(rng: np.random.Generator, reps: int, seeds: int, acc: np.ndarray, design: str,
             sd: np.ndarray = SD) -> tuple[np.ndarray, np.ndarray]:
    """(T (R, S, G, K) correct answers per group, p (R, S, K) each seed's true accuracies) of K stages
    with true accuracies ``acc`` (K,) and seed-to-seed SDs ``sd`` (K,)."""
    g, k = N_TEST // GROUP, len(acc)
    p = np.clip(acc + rng.normal(size=(reps, seeds, k)) * sd, 0.001, 0.999)  # (R, S, K)

    def outcomes(prob: np.ndarray, s: int) -> np.ndarray:  # prob (R, s, K) -> (R, s, N, K) bool
        tied = rng.random((reps, s, N_TEST, k)) < np.sqrt(ICC)
        group = np.repeat(rng.random((reps, s, g, k)) < prob[:, :, None], GROUP, axis=2)
        own = rng.random((reps, s, N_TEST, k)) < prob[:, :, None]
        return np.where(tied, group, own)

    if design == "fresh":
        x = outcomes(p, seeds)
    else:  # one test set: an outcome is shared across seeds w.p. SHARED_FRACTION, else the seed's own
        base = outcomes(np.broadcast_to(acc, (reps, 1, k)), 1)
        own_p = np.clip(acc + (p - acc) / (1 - SHARED_FRACTION), 0.001, 0.999)
        share = rng.random((reps, seeds, N_TEST, 1)) < SHARED_FRACTION
        x = np.where(share, base, outcomes(own_p, seeds))
        p = SHARED_FRACTION * acc + (1 - SHARED_FRACTION) * own_p  # the seeds' true accuracies after clipping
    return x.reshape(reps, seeds, g, GROUP, k).sum(3).astype(float), p


METHODS = {"fieller-vc": ("vc", "fieller"), "fieller-t": ("t", "fieller"), "delta-t": ("t", "delta"),
           "delta-z-test": ("none", "delta")}


def analytic(t: np.ndarray, design: str) -> dict[str, np.ndarray]:
    """Per experiment and analytic method, (R, 6): the PGR's flag (``stats.pgr_flag_reason``: its own
    gap interval, or an unbounded PGR interval) and bounds, the ΔPGR's flag and bounds; and one
    run's gap interval (R, 2)."""
    reps, s, g, _ = t.shape
    sizes = np.full(g, float(GROUP))
    out = {m: np.full((reps, 6), np.nan) for m in ANALYTIC}  # flag, pgr lo, hi, flag, delta lo, hi
    out["run_gap"] = np.full((reps, 2), np.nan)
    for r in range(reps):
        keys = [np.arange(g) + (0 if design == "shared" else i * g) for i in range(s)]
        runs = [stats.GroupedRun(keys[i], sizes, t[r, i]) for i in range(s)]
        acc = np.stack([x.acc for x in runs])
        mom = {b: stats.seed_moments(acc, runs, b) for b in ("vc", "t", "none")}
        # the gap and its flag from the weak and ceiling columns alone, as w2sgen.aggregate.gap_interval
        floor_ceiling = [stats.GroupedRun(x.keys, x.sizes, x.sums[:, :2]) for x in runs]
        gaps = {b: stats.contrast_interval(stats.seed_moments(acc[:, :2], floor_ceiling, b), GAP2, LEVEL)
                for b in ("vc", "t", "none")}
        one = stats.contrast_interval(stats.seed_moments(acc[:1, :2], floor_ceiling[:1]), GAP2, LEVEL)
        out["run_gap"][r] = one.lo, one.hi
        for m, (between, kind) in METHODS.items():
            iv = stats.ratio_interval(mom[between], *PGR_C, LEVEL, kind)
            dv = stats.ratio_interval(mom[between], *DELTA_C, LEVEL, kind)
            flag_p = stats.pgr_flag_reason(gaps[between], iv, THRESHOLD) is not None
            flag_d = stats.pgr_flag_reason(gaps[between], dv, THRESHOLD) is not None
            out[m][r] = flag_p, iv.lo, iv.hi, flag_d, dv.lo, dv.hi
    return out


def _ratio(m: np.ndarray, num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return (m @ num) / (m @ den)


def _pct(x: np.ndarray) -> np.ndarray:
    """(R, B) -> (R, 2) percentile bounds over the finite values of each row."""
    a = (1 - LEVEL) / 2
    srt = np.sort(np.where(np.isfinite(x), x, np.nan), axis=1)  # NaNs last
    n_ok = np.isfinite(srt).sum(1)
    rows = np.arange(len(x))
    out = np.full((len(x), 2), np.nan)
    for j, q in enumerate((a, 1 - a)):
        pos = np.clip(np.round(q * (n_ok - 1)).astype(int), 0, x.shape[1] - 1)
        out[:, j] = np.where(n_ok > 0, srt[rows, pos], np.nan)
    return out


def boots(rng: np.random.Generator, t: np.ndarray, n_boot: int, design: str) -> dict[str, np.ndarray]:
    """Each bootstrap method's PGR and ΔPGR bounds (R, 4)."""
    from scipy.stats import norm

    reps, s, g, _ = t.shape
    acc = t.sum(2) / N_TEST  # (R, S, 4)
    idx = rng.integers(0, s, size=(n_boot, s))
    res = acc[:, idx].mean(2)  # (R, B, 4)
    out = {}
    pct = [_pct(_ratio(res, *c)) for c in (PGR_C, DELTA_C)]
    out["pct-seeds"] = np.concatenate(pct, axis=1)
    # BCa over seeds
    bca = []
    for c in (PGR_C, DELTA_C):
        theta = _ratio(acc.mean(1), *c)  # (R,)
        star = _ratio(res, *c)  # (R, B)
        with np.errstate(all="ignore"):
            z0 = norm.ppf(np.clip(((star < theta[:, None]).sum(1) + 0.5 * (star == theta[:, None]).sum(1)) / n_boot,
                                  1e-6, 1 - 1e-6))
            jack = np.stack([_ratio(np.delete(acc, i, axis=1).mean(1), *c) for i in range(s)], axis=1)  # (R, S)
            d = jack.mean(1, keepdims=True) - jack
            a = (d**3).sum(1) / (6 * ((d**2).sum(1)) ** 1.5)
        bounds = []
        for z in (norm.ppf((1 - LEVEL) / 2), norm.ppf((1 + LEVEL) / 2)):
            with np.errstate(all="ignore"):
                q = norm.cdf(z0 + (z0 + z) / (1 - a * (z0 + z)))
            q = np.where(np.isfinite(q), q, 0.5)
            srt = np.sort(np.where(np.isfinite(star), star, np.nan), axis=1)
            n_ok = np.isfinite(srt).sum(1)
            pos = np.clip(np.round(q * (n_ok - 1)).astype(int), 0, n_boot - 1)
            bounds.append(srt[np.arange(reps), pos])
        bca.append(np.stack(bounds, axis=1))
    out["bca-seeds"] = np.concatenate(bca, axis=1)
    # hierarchical: seeds with replacement, then groups with replacement within each drawn seed
    draws = rng.multinomial(g, np.full(g, 1.0 / g), size=(n_boot, s)).astype(float)  # (B, S, G)
    counts = np.zeros((n_boot, s, g))
    if design == "shared":  # the seeds share their groups: one group draw for all of them
        counts = np.bincount((idx + s * np.arange(n_boot)[:, None]).ravel(), minlength=n_boot * s
                             ).reshape(n_boot, s)[:, :, None] * draws[:, :1, :]
    else:
        np.add.at(counts, (np.repeat(np.arange(n_boot), s), idx.ravel()), draws.reshape(n_boot * s, g))
    flat = t.transpose(0, 3, 1, 2).reshape(reps * 4, s * g)  # (R·4, S·G)
    hier = (flat @ counts.reshape(n_boot, s * g).T).reshape(reps, 4, n_boot).transpose(0, 2, 1) / (s * N_TEST)
    out["hier-boot"] = np.concatenate([_pct(_ratio(hier, *c)) for c in (PGR_C, DELTA_C)], axis=1)
    # old: mean over seeds of per-seed ratios, percentile bootstrap over seeds
    old = []
    for c in (PGR_C, DELTA_C):
        per = _ratio(acc, *c)  # (R, S)
        old.append(_pct(per[:, idx].mean(2)))
    out["old-mean-ratios"] = np.concatenate(old, axis=1)
    return out


def run(reps: int, boot_reps: int, n_boot: int, design: str, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    cells = {}
    for s in SEEDS:
        for gap in GAPS:
            rows = []
            for pgr in PGRS:
                for delta in DELTAS:
                    acc = np.array([WEAK, WEAK + gap, WEAK + pgr * gap, WEAK + (pgr + delta) * gap])
                    t, p = simulate(rng, reps, s, acc, design)
                    truth_pgr, truth_delta = pgr, delta  # of the seeds' distribution (before clipping)
                    a = analytic(t, design)
                    nb = min(boot_reps, reps)
                    b = boots(rng, t[:nb], n_boot, design)
                    run_gap_true = p[:, 0, C] - p[:, 0, W]
                    flag_p, flag_d = a[MAIN][:nb, :1], a[MAIN][:nb, 3:4]  # w2sgen's flags for the bootstraps
                    rows.append({"truth": (truth_pgr, truth_delta),
                                 "run_gap_cover": (a["run_gap"][:, 0] <= run_gap_true) & (run_gap_true <= a["run_gap"][:, 1]),
                                 **{m: a[m] for m in ANALYTIC},
                                 **{m: np.concatenate([flag_p, b[m][:, :2], flag_d, b[m][:, 2:]], axis=1)
                                    for m in BOOT}})
            cells[(s, gap)] = rows
    return cells


def _shown(x: np.ndarray) -> np.ndarray:
    """(R, 3) flag, lo, hi -> which experiments show the ratio: unflagged with finite bounds."""
    return (x[:, 0] == 0) & np.isfinite(x[:, 1]) & np.isfinite(x[:, 2])


def score(cells: dict) -> tuple[list[dict], dict]:
    """Per (method, seeds, gap): the share of experiments that show a PGR, and the coverage of PGR
    and ΔPGR among the experiments that show it (a flagged or unbounded interval is not shown)."""
    table, pooled = [], {m: [0, 0, 0, 0] for m in (*ANALYTIC, *BOOT)}  # hits PGR, hits ΔPGR, n PGR, n ΔPGR
    for (s, gap), rows in cells.items():
        for m in (*ANALYTIC, *BOOT):
            hit_p = hit_d = n = n_d = n_all = 0
            widths = []
            for r in rows:
                ok_p, ok_d = _shown(r[m][:, 0:3]), _shown(r[m][:, 3:6])
                lo_p, hi_p = r[m][ok_p, 1:3].T
                lo_d, hi_d = r[m][ok_d, 4:6].T
                tp, td = r["truth"]
                hit_p += int(((lo_p <= tp) & (tp <= hi_p)).sum())
                hit_d += int(((lo_d <= td) & (td <= hi_d)).sum())
                n += int(ok_p.sum())
                n_d += int(ok_d.sum())
                n_all += len(ok_p)
                widths.append(hi_p - lo_p)
            w = np.concatenate(widths)
            share = n / n_all if n_all else 0.0
            row = {"method": m, "seeds": s, "gap": gap, "unflagged": share, "n": n,
                   "cov_pgr": hit_p / n if n else float("nan"), "cov_delta": hit_d / n_d if n_d else float("nan"),
                   "width": float(np.median(w)) if len(w) else float("nan"), "cell_flagged": share < 0.5}
            table.append(row)
            if not row["cell_flagged"]:
                for i, v in enumerate((hit_p, hit_d, n, n_d)):
                    pooled[m][i] += v
    return table, pooled


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer experiments per cell (under 3 minutes on 2 cores)")
    ap.add_argument("--reps", type=int, help="experiments per (gap, seeds, PGR, ΔPGR) cell (default 1000; quick 250)")
    ap.add_argument("--boot-reps", type=int, help="of those, how many the bootstrap methods score (default 500; quick 100)")
    ap.add_argument("--n-boot", type=int, default=None, help="bootstrap resamples (default 1000; quick 400)")
    ap.add_argument("--design", choices=["shared", "fresh"], default="shared",
                    help="shared: one test set for every seed (a task with its own test pool; default); fresh: "
                         "a test set per seed")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    reps = a.reps or (250 if a.quick else 1000)
    boot_reps = a.boot_reps or (100 if a.quick else 500)
    n_boot = a.n_boot or (400 if a.quick else 1000)
    load0 = os.getloadavg()
    t0 = time.time()
    cells = run(reps, boot_reps, n_boot, a.design, a.seed)
    table, pooled = score(cells)
    wall = time.time() - t0
    print(f"coverage of 95% intervals; design {a.design}; {reps} experiments per (gap, seeds, PGR, ΔPGR) cell "
          f"({min(boot_reps, reps)} for bootstrap methods, {n_boot} resamples); weak {WEAK:.0%}, test "
          f"{N_TEST} in groups of {GROUP}, ICC {ICC}; flag: gap t-interval includes 0, gap < {100 * THRESHOLD:g} pts "
          "or the ratio's interval unbounded")
    print(f"{'method':<16} {'seeds':>5} {'gap':>5} {'unflagged':>9} {'n':>6} {'cov PGR':>8} {'cov ΔPGR':>9} "
          f"{'PGR width':>10}")
    for r in table:
        mark = "  (flagged cell)" if r["cell_flagged"] else ""
        print(f"{r['method']:<16} {r['seeds']:>5} {100 * r['gap']:>4.0f}p {r['unflagged']:>9.1%} {r['n']:>6} "
              f"{r['cov_pgr']:>8.3f} {r['cov_delta']:>9.3f} {r['width']:>10.3f}{mark}")
    print("\npooled over the unflagged experiments of unflagged cells (worst unflagged cell in brackets):")
    for m, (hp, hd, n, nd) in pooled.items():
        ok = [r for r in table if r["method"] == m and not r["cell_flagged"]]
        print(f"  {m:<16} PGR {hp / max(n, 1):.3f} [{min(r['cov_pgr'] for r in ok):.3f}]  ΔPGR {hd / max(nd, 1):.3f} "
              f"[{min(r['cov_delta'] for r in ok):.3f}]  n = {n}; median PGR width at 3 seeds, 10-point gap "
              f"{next(r['width'] for r in table if r['method'] == m and r['seeds'] == 3 and r['gap'] == 0.10):.2f}")
    gaps = [np.concatenate([r["run_gap_cover"] for r in rows]) for rows in cells.values()]
    print(f"\none run's gap interval (cluster-robust over groups, t with G−1 df): coverage of the seed's true gap "
          f"{np.mean(np.concatenate(gaps)):.3f} over {sum(len(x) for x in gaps)} runs")
    load1 = os.getloadavg()
    print(f"wall {wall:.0f}s on {cpu_name()} ({os.cpu_count()} cores); load average (1 min) {load0[0]:.2f} at "
          f"start, {load1[0]:.2f} at end")
    hp, hd, n, nd = pooled[MAIN]
    print(f"summary: coverage_pgr={hp / max(n, 1):.3f} coverage_delta={hd / max(nd, 1):.3f} runs={n}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
