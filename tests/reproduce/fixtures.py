"""Synthetic test predictions with known effects, for the claims' statistics.

Each stage's predictions are drawn per example: a weak floor or ceiling is right with its accuracy;
a student agrees with its weak supervisor with probability ``agree_wrong`` on the examples the weak
model gets wrong (else it is right) and ``agree_right`` on those it gets right (else it is wrong),
so its accuracy is acc_w · agree_right + (1 − acc_w) · (1 − agree_wrong). Seeds draw fresh test
sets (disjoint groups of two examples).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from w2sgen.reproduce.evidence import (
    Evidence,
    TaskSeed,
    ceiling_stage,
    checkpoint_stage,
    student_stage,
    weak_stage,
)

LADDER = ["a", "b", "c", "d"]
PARAMS = {"a": 1e7, "b": 1e8, "c": 3e8, "d": 1e9}
WEAK = {"a": 0.65, "b": 0.72, "c": 0.78, "d": 0.82}
CEILING = {"a": 0.70, "b": 0.80, "c": 0.86, "d": 0.90}

Rates = tuple[float, float]
"""(agree_wrong, agree_right) of a student with its weak supervisor."""


def rates_for(acc_w: float, target: float, agree_right: float = 0.97) -> Rates:
    """The (agree_wrong, agree_right) that give a student of accuracy ``target`` under a weak model of ``acc_w``."""
    aw = 1 - (target - acc_w * agree_right) / (1 - acc_w)
    if aw > 1:  # below the weak model's own accuracy: copy every error, break some successes
        return 1.0, target / acc_w
    assert 0 <= aw, (acc_w, target, aw)
    return aw, agree_right


def pgr_rates(w: str, s: str, pgr: float) -> Rates:
    """The rates of a student recovering ``pgr`` of the (w, s) gap."""
    return rates_for(WEAK[w], WEAK[w] + pgr * (CEILING[s] - WEAK[w]))


def make(students: Callable[[str, str, str], Rates | None], *, ladder: list[str] = LADDER, tasks: int = 2,
         seeds: int = 3, n: int = 3000, checkpoints: Callable[[str, str], dict[str, float]] | None = None,
         rng_seed: int = 0) -> Evidence:
    """An Evidence with the weak and ceiling accuracies above and ``students(w, s, method)`` rates (None:
    no such student); ``checkpoints(w, s)`` gives early_stop's oracle/last/kept accuracies."""
    rng = np.random.default_rng(rng_seed)
    ev = Evidence("probe", list(ladder), {m: PARAMS[m] for m in ladder})
    for t in range(tasks):
        for seed in range(seeds):
            y = rng.integers(0, 2, n)
            groups = np.array([f"s{seed}-g{i // 2}" for i in range(n)])
            ts = TaskSeed(y, groups)

            def draw(acc: float, y: np.ndarray = y) -> np.ndarray:
                return np.where(rng.random(n) < acc, y, 1 - y)

            for m in ladder:
                ts.preds[weak_stage(m)] = draw(WEAK[m])
                ts.preds[ceiling_stage(m)] = draw(CEILING[m])
            for i, w in enumerate(ladder):
                for s in ladder[i + 1:]:
                    for method in ("xent", "logconf", "early_stop", "bootstrap"):
                        r = students(w, s, method)
                        if r is None:
                            continue
                        wp = ts.preds[weak_stage(w)]
                        agree = rng.random(n) < np.where(wp != y, r[0], r[1])
                        ts.preds[student_stage(w, s, method)] = np.where(agree, wp, 1 - wp)
                    if checkpoints is not None:
                        accs = checkpoints(w, s)
                        for which in ("oracle", "last"):
                            ts.preds[checkpoint_stage(w, s, which)] = draw(accs[which])
                        ts.preds[student_stage(w, s, "early_stop")] = draw(accs["kept"])
            ev.tasks.setdefault(f"task{t}", {})[seed] = ts
    return ev
