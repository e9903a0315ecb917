"""Deterministic, disjoint, grouped splits: weak_train (A), transfer (B), val, test."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..config import Size, SplitConfig
from ..errors import W2SError
from .base import TaskData

SPLITS = ("weak_train", "transfer", "val", "test")
log = logging.getLogger("w2sgen")
_WARNED: set[str] = set()


@dataclass
class Splits:
    """Row indices into a task's frame for each split (sorted, disjoint)."""

    indices: dict[str, np.ndarray]
    seed: int

    def __getitem__(self, split: str) -> np.ndarray:
        return self.indices[split]

    def sizes(self) -> dict[str, int]:
        return {k: int(len(v)) for k, v in self.indices.items()}


def _count(size: Size, pool: int, default: float, field: str, cap: int | None = None) -> int:
    """A size as a count: an int is a count, a float in (0, 1] a fraction of ``pool``.

    ``None`` gives ``default * pool``, at most ``cap`` (the cap binds only the default).
    """
    if size is None:
        n = int(round(default * pool))
        return n if cap is None else min(n, cap)
    if isinstance(size, float):
        if not 0.0 < size <= 1.0:
            raise W2SError(f"config field 'splits.{field}': {size} is neither a count nor a fraction in (0, 1]")
        return int(round(size * pool))
    if size < 0:
        raise W2SError(f"config field 'splits.{field}': {size} must not be negative")
    return int(size)


def _take(groups: list[np.ndarray], start: int, target: int) -> tuple[list[int], int]:
    """Whole groups from ``start`` on until at least ``target`` examples (or none left)."""
    out: list[int] = []
    i = start
    while len(out) < target and i < len(groups):
        out.extend(groups[i].tolist())
        i += 1
    return out, i


def _balance(idx: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Downsample every class to the rarest class's count."""
    classes, counts = np.unique(labels[idx], return_counts=True)
    if len(classes) < 2:
        return idx
    m = counts.min()
    keep = [rng.choice(idx[labels[idx] == c], size=m, replace=False) for c in classes]
    return np.sort(np.concatenate(keep))


def make_splits(task: TaskData, cfg: SplitConfig, seed: int) -> Splits:
    """Draw the four splits with ``cfg.split_seed`` (or ``seed``).

    Whole groups are assigned, in a shuffled order, first to test (from the task's test pool if it
    has one), then val, weak_train and transfer (from the training pool). Defaults: test = the
    test pool, else 20% of the pool (at most 5,000); val = 10% of the training pool (at most
    1,000); weak_train and transfer = halves of the rest. A transfer count larger than what is left is cut to what is left.
    """
    split_seed = seed if cfg.split_seed is None else cfg.split_seed
    rng = np.random.default_rng(split_seed)
    frame = task.frame
    labels = frame["label"].to_numpy()
    codes, uniques = frame["group"].factorize()
    # groups: list of index arrays; keep the pool of each group (groups never span pools)
    order = np.argsort(codes, kind="stable")
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    groups = np.split(order, bounds) if len(order) else []
    pools = frame["pool"].to_numpy()
    for g in groups:
        if len(set(pools[g])) > 1:
            raise W2SError(f"task {task.name!r}: group {frame['group'].iloc[g[0]]!r} spans the train and test pools")
    if cfg.max_examples is not None and cfg.pool_seed is not None:
        # the subsample is drawn by pool_seed alone (before the split draw): the splits inside it vary
        ranked = np.random.default_rng([cfg.pool_seed, 104729]).permutation(len(groups)).tolist()
        keep = _pool_subsample(groups, ranked, cfg.max_examples, pools, cfg)
        groups = [g for i, g in enumerate(groups) if i in keep]
    perm = rng.permutation(len(groups))
    groups = [groups[i] for i in perm]

    if cfg.max_examples is not None:
        if cfg.max_examples < 4:
            raise W2SError("config field 'splits.max_examples': need at least 4 examples (one per split)")
        test_g = [g for g in groups if pools[g[0]] == "test"]
        if test_g and isinstance(cfg.n_test, int):
            # a task with its own test pool: the test split takes what it asks for from that pool, and
            # the rest of the budget goes to the train pool (not the pools' shares of the subsample)
            test_g, n_t = _take_groups(test_g, min(cfg.n_test, cfg.max_examples // 2))
            train_g, _ = _take_groups([g for g in groups if pools[g[0]] == "train"], cfg.max_examples - n_t)
            groups = train_g + test_g
        else:
            groups, _ = _take_groups(groups, cfg.max_examples)

    train_groups = [g for g in groups if pools[g[0]] == "train"]
    test_groups = [g for g in groups if pools[g[0]] == "test"]
    n_train_pool = int(sum(len(g) for g in train_groups))
    out: dict[str, list[int]] = {}
    if test_groups:
        n_test_pool = int(sum(len(g) for g in test_groups))
        out["test"], _ = _take(test_groups, 0, _count(cfg.n_test, n_test_pool, 1.0, "n_test"))
        pos = 0
    else:
        out["test"], pos = _take(train_groups, 0, _count(cfg.n_test, n_train_pool, 0.2, "n_test", cap=5000))
    out["val"], pos = _take(train_groups, pos, _count(cfg.n_val, n_train_pool, 0.1, "n_val", cap=1000))
    rest = n_train_pool - len(out["test"]) * (not test_groups) - len(out["val"])
    n_weak = _count(cfg.n_weak_train, n_train_pool, 0.0, "n_weak_train") if cfg.n_weak_train is not None else rest // 2
    out["weak_train"], pos = _take(train_groups, pos, n_weak)
    left = int(sum(len(g) for g in train_groups[pos:]))
    n_tr = _count(cfg.n_transfer, n_train_pool, 0.0, "n_transfer") if cfg.n_transfer is not None else left
    if n_tr > left:
        msg = f"transfer: asked for {n_tr} examples, {left} are left; using {left}"
        if msg not in _WARNED:  # once per process, not once per seed
            _WARNED.add(msg)
            log.warning(msg)
    out["transfer"], pos = _take(train_groups, pos, n_tr)

    result = {}
    for name in SPLITS:
        idx = np.sort(np.asarray(out[name], dtype=np.int64))
        if cfg.balance:
            idx = _balance(idx, labels, rng)
        if len(idx) == 0:
            raise W2SError(
                f"task {task.name!r}: split {name!r} is empty ({len(frame)} examples); "
                "use more data or smaller split sizes (splits.n_*)"
            )
        result[name] = idx
    return Splits(result, split_seed)


def _pool_subsample(groups: list[np.ndarray], ranked: list[int], budget: int, pools: np.ndarray,
                    cfg: SplitConfig) -> set[int]:
    """The groups (indices) a fixed subsample keeps, taken in the pool draw's order ``ranked`` until
    ``budget`` examples: for a task with its own test pool and a count n_test, test groups only up to
    min(n_test, budget // 2) examples, so that the test split is the same for every split seed."""
    cap_test = min(cfg.n_test, budget // 2) if isinstance(cfg.n_test, int) else None
    keep: set[int] = set()
    n_train = n_test = 0
    for i in ranked:
        if n_train + n_test >= budget:
            break
        if pools[groups[i][0]] == "test" and cap_test is not None:
            if n_test < cap_test:
                keep.add(i)
                n_test += len(groups[i])
        else:
            keep.add(i)
            n_train += len(groups[i])
    return keep


def _take_groups(groups: list[np.ndarray], n: int) -> tuple[list[np.ndarray], int]:
    total = 0
    out = []
    for g in groups:
        if total >= n:
            break
        out.append(g)
        total += len(g)
    return out, total
