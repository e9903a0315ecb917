"""Deterministic, disjoint, grouped splits: weak_train (A), transfer (B), val, test."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..config import Size, SplitConfig
from ..errors import W2SError
from .base import TaskData

SPLITS = ("weak_train", "transfer", "val", "test")
MINIMUM = {"test": "min_test", "val": "min_val"}
"""The splits that have a minimum size, and the SplitConfig field holding it."""
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


def _carved_test(cfg: SplitConfig, pool: int) -> int:
    """Test examples carved from ``pool`` examples: n_test as a count or fraction; by default 20% of the
    pool (at most 5,000), at least min_test."""
    n = _count(cfg.n_test, pool, 0.2, "n_test", cap=5000)
    return max(n, cfg.min_test) if cfg.n_test is None else n


def _val(cfg: SplitConfig, pool: int) -> int:
    """Val examples from a training pool of ``pool``: n_val as a count or fraction; by default 10% of the
    pool (at most 1,000), at least min_val."""
    n = _count(cfg.n_val, pool, 0.1, "n_val", cap=1000)
    return max(n, cfg.min_val) if cfg.n_val is None else n


def _warn_once(msg: str) -> None:
    """Log ``msg`` once per process, not once per seed."""
    if msg not in _WARNED:
        _WARNED.add(msg)
        log.warning(msg)


def _assemble(out: dict[str, list[int]], cfg: SplitConfig, labels: np.ndarray, rng: np.random.Generator,
              split_seed: int) -> Splits:
    """The drawn example lists as sorted index arrays (balanced with ``cfg.balance``)."""
    result = {}
    for name in SPLITS:
        idx = np.sort(np.asarray(out[name], dtype=np.int64))
        if cfg.balance:
            idx = _balance(idx, labels, rng)
        result[name] = idx
    return Splits(result, split_seed)


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
    """Draw the four splits with ``cfg.split_seed`` (or ``seed``), then check them (``check_splits``).

    Whole groups are assigned, in a shuffled order, first to test (from the task's test pool if it
    has one), then val, weak_train and transfer (from the training pool). Defaults: test = the
    test pool, else 20% of the pool (at most 5,000, at least min_test); val = 10% of the training
    pool (at most 1,000, at least min_val); weak_train and transfer = halves of the rest. A transfer
    count larger than what is left is cut to what is left. ``max_examples`` first subsamples whole
    groups (see ``budget_parts``).
    """
    if cfg.balance and task.kind == "generation":
        raise W2SError(f"task {task.name!r} is a generation task (answers written as text): it has no classes "
                       "to balance; drop --balance (splits.balance)")
    for f in MINIMUM.values():
        v = getattr(cfg, f)
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise W2SError(f"config field 'splits.{f}': {v!r} must be an integer >= 0")
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
    if cfg.strong_pool is not None:
        return _strong_pool_splits(task, cfg, split_seed, rng, groups, pools, labels)
    parts = budget_parts(cfg, int((pools == "test").sum())) if cfg.max_examples is not None else None
    if parts is not None and cfg.pool_seed is not None:
        # the subsample is drawn by pool_seed alone (before the split draw): the splits inside it vary
        ranked = np.random.default_rng([cfg.pool_seed, 104729]).permutation(len(groups)).tolist()
        keep = _subsample(groups, ranked, pools, *parts)
        groups = [g for i, g in enumerate(groups) if i in keep]
    perm = rng.permutation(len(groups))
    groups = [groups[i] for i in perm]
    if parts is not None and cfg.pool_seed is None:
        keep = _subsample(groups, range(len(groups)), pools, *parts)
        groups = [g for i, g in enumerate(groups) if i in keep]

    train_groups = [g for g in groups if pools[g[0]] == "train"]
    test_groups = [g for g in groups if pools[g[0]] == "test"]
    n_train_pool = int(sum(len(g) for g in train_groups))
    out: dict[str, list[int]] = {}
    asked: dict[str, int] = {}
    if test_groups:
        n_test_pool = int(sum(len(g) for g in test_groups))
        # under max_examples the subsample's test part was sized for the test split: all of it is test
        asked["test"] = n_test_pool if parts is not None else _count(cfg.n_test, n_test_pool, 1.0, "n_test")
        out["test"], _ = _take(test_groups, 0, asked["test"])
        pos = 0
    else:
        asked["test"] = _carved_test(cfg, n_train_pool)
        out["test"], pos = _take(train_groups, 0, asked["test"])
    asked["val"] = _val(cfg, n_train_pool)
    out["val"], pos = _take(train_groups, pos, asked["val"])
    rest = n_train_pool - len(out["test"]) * (not test_groups) - len(out["val"])
    n_weak = _count(cfg.n_weak_train, n_train_pool, 0.0, "n_weak_train") if cfg.n_weak_train is not None else rest // 2
    out["weak_train"], pos = _take(train_groups, pos, n_weak)
    left = int(sum(len(g) for g in train_groups[pos:]))
    n_tr = _count(cfg.n_transfer, n_train_pool, 0.0, "n_transfer") if cfg.n_transfer is not None else left
    if n_tr > left:
        _warn_once(f"transfer: asked for {n_tr} examples, {left} are left; using {left}")
    out["transfer"], pos = _take(train_groups, pos, n_tr)

    splits = _assemble(out, cfg, labels, rng, split_seed)
    check_splits(task, cfg, splits, asked)
    return splits


def _strong_pool_splits(task: TaskData, cfg: SplitConfig, split_seed: int, rng: np.random.Generator,
                        groups: list[np.ndarray], pools: np.ndarray, labels: np.ndarray) -> Splits:
    """``splits.strong_pool``: test (when carved), val and transfer from one sample S of the training
    pool's groups, drawn by pool_seed alone (the same S for every seed); weak_train from the training
    pool outside S. Each seed shuffles the groups inside S and outside it its own way."""
    n_s = cfg.strong_pool
    if isinstance(n_s, bool) or not isinstance(n_s, int) or n_s < 4:
        raise W2SError(f"config field 'splits.strong_pool': {n_s!r}; give a count of examples >= 4, or null")
    if cfg.max_examples is not None:
        raise W2SError("config fields 'splits.strong_pool' and 'splits.max_examples' are both set: use one "
                       "(strong_pool already fixes the sample the strong model sees)")
    train_ids = [i for i, g in enumerate(groups) if pools[g[0]] == "train"]
    n_train_pool = int(sum(len(groups[i]) for i in train_ids))
    ranked = np.random.default_rng([0 if cfg.pool_seed is None else cfg.pool_seed, 7919]).permutation(len(train_ids))
    in_s: set[int] = set()
    got = 0
    for j in ranked:
        if got >= n_s:
            break
        in_s.add(train_ids[j])
        got += len(groups[train_ids[j]])
    if n_train_pool - got < 4:  # whole groups: the sample may overshoot n_s by a group
        biggest = max((len(groups[i]) for i in train_ids), default=1)
        bound = n_train_pool - 4 - biggest
        fix = (f"use at most {bound}" if bound >= 4 else
               "the task is too small for it: drop splits.strong_pool")
        raise W2SError(f"config field 'splits.strong_pool': {n_s} examples (whole groups: {got}), but task "
                       f"{task.name!r} has {n_train_pool} in its training pool and weak_train needs at least 4 "
                       f"outside the sample; {fix}")
    has_test_pool = any(pools[g[0]] == "test" for g in groups)
    need = (0 if has_test_pool else _carved_test(cfg, got)) + _val(cfg, got)
    if got - need < 2:
        parts = ("val" if has_test_pool else "test and val")
        raise W2SError(f"config field 'splits.strong_pool': a sample of {got} examples cannot hold {parts} "
                       f"({need} examples: splits.n_test / n_val, or at least splits.min_test={cfg.min_test} and "
                       f"min_val={cfg.min_val}) and leave transfer 2; use splits.strong_pool >= {need + 2}, or "
                       "smaller splits.n_val / n_test (lower the minimums knowingly)")
    perm = rng.permutation(len(groups))
    shuffled = [groups[i] for i in perm]
    in_pool = [perm[k] in in_s for k in range(len(perm))]
    strong = [g for g, s in zip(shuffled, in_pool) if s]
    rest = [g for g, s in zip(shuffled, in_pool) if not s and pools[g[0]] == "train"]
    test_groups = [g for g in shuffled if pools[g[0]] == "test"]
    out: dict[str, list[int]] = {}
    asked: dict[str, int] = {}
    if test_groups:
        asked["test"] = _count(cfg.n_test, int(sum(len(g) for g in test_groups)), 1.0, "n_test")
        out["test"], _ = _take(test_groups, 0, asked["test"])
        pos = 0
    else:
        asked["test"] = _carved_test(cfg, got)
        out["test"], pos = _take(strong, 0, asked["test"])
    asked["val"] = _val(cfg, got)
    out["val"], pos = _take(strong, pos, asked["val"])
    left = int(sum(len(g) for g in strong[pos:]))
    n_tr = _count(cfg.n_transfer, got, 0.0, "n_transfer") if cfg.n_transfer is not None else left
    if n_tr > left:
        _warn_once(f"transfer: asked for {n_tr} examples, {left} are left in splits.strong_pool; using {left}")
    out["transfer"], _ = _take(strong, pos, n_tr)
    n_rest = int(sum(len(g) for g in rest))
    n_weak = _count(cfg.n_weak_train, n_rest, 1.0, "n_weak_train") if cfg.n_weak_train is not None else n_rest
    if n_weak > n_rest:
        _warn_once(f"weak_train: asked for {n_weak} examples, {n_rest} are outside splits.strong_pool; using "
                   f"{n_rest}")
    out["weak_train"], _ = _take(rest, 0, n_weak)
    splits = _assemble(out, cfg, labels, rng, split_seed)
    try:
        check_splits(task, cfg, splits, asked)
    except W2SError as e:
        raise W2SError(f"{e}\n  (with splits.strong_pool={n_s}: transfer, val and test come from its sample of "
                       f"{got} examples, weak_train from the {n_rest} outside it; a larger strong_pool gives "
                       "transfer, val and test more, a smaller one gives weak_train more)") from None
    return splits


def budget_parts(cfg: SplitConfig, n_test_pool: int) -> tuple[int, int]:
    """(test-pool examples, train-pool examples) a ``max_examples`` subsample takes.

    The test split's size at a budget of B = max_examples is the carved size at B (n_test as a count,
    a fraction of B, or by default 20% of B, at least min_test); val's is its size from the training
    pool (n_val, or 10% of it, at least min_val). Both are reserved first: a task with its own test
    pool gives the test split from that pool (all of it if smaller) and B minus that from the training
    pool; a task without one takes B from the training pool and carves test from it. weak_train and
    transfer share the rest. A budget that leaves them nothing is refused.
    """
    budget = int(cfg.max_examples)  # type: ignore[arg-type]
    test = _carved_test(cfg, budget)
    if n_test_pool:
        test = min(test, n_test_pool)
        train = budget - test
        val = _val(cfg, train)
    else:
        train = budget
        val = _val(cfg, budget)
    if budget - test - val < 4:
        why, less = [], []
        for name, n in (("test", test), ("val", val)):
            asked = getattr(cfg, f"n_{name}")
            if asked is not None:
                why.append(f"{name} {n} (splits.n_{name}={asked})")
                less.append(f"a smaller splits.n_{name}")
            else:
                minimum = getattr(cfg, MINIMUM[name])
                why.append(f"{name} {n} (at least splits.{MINIMUM[name]}={minimum})")
                less.append(f"a lower minimum (--set splits.{MINIMUM[name]}={minimum // 4})")
        raise W2SError(
            f"config field 'splits.max_examples': {budget} examples cannot hold {why[0]} and {why[1]} and still "
            "give weak_train and transfer two examples each (every split needs two classes): use --max-examples "
            f"{test + val + 4} at the very least (weak_train and transfer share what is above {test + val}; a few "
            f"hundred each is a usable start), or {' and '.join(less)}, knowing that accuracy on fewer examples "
            "is noisier")
    return (test if n_test_pool else 0), train


def _subsample(groups: list[np.ndarray], ranked, pools: np.ndarray, n_test: int, n_train: int) -> set[int]:
    """The groups (indices) a subsample keeps, taken in the order ``ranked``: test-pool groups until
    ``n_test`` examples, training-pool groups until ``n_train`` (a group may overshoot by its size)."""
    cap = {"test": n_test, "train": n_train}
    got = {"test": 0, "train": 0}
    keep: set[int] = set()
    for i in ranked:
        p = pools[groups[i][0]]
        if got[p] < cap[p]:
            keep.add(i)
            got[p] += len(groups[i])
        if got["test"] >= cap["test"] and got["train"] >= cap["train"]:
            break
    return keep


def check_splits(task: TaskData, cfg: SplitConfig, splits: Splits, asked: dict[str, int] | None = None) -> None:
    """Refuse splits that cannot give a trustworthy result, before anything is trained: a val or test
    split under its minimum (splits.min_val, splits.min_test), an empty split, or a split holding
    one class only. The error names each such split, its size and the fix. ``asked``: the val and test
    sizes the config asked for (to tell a request below the minimum from too little data)."""
    labels = task.frame["label"].to_numpy()
    budget = f" (--max-examples {cfg.max_examples})" if cfg.max_examples is not None else ""
    more = f"a larger --max-examples than {cfg.max_examples}" if cfg.max_examples is not None else "a larger task"
    after = " after --balance" if cfg.balance else ""
    problems = []
    for name in SPLITS:
        idx = splits[name]
        n = len(idx)
        field = MINIMUM.get(name)
        minimum = getattr(cfg, field) if field else 0
        if field and n < minimum:
            req = getattr(cfg, f"n_{name}")
            if req is not None and asked is not None and asked[name] < minimum:
                fix = (f"splits.n_{name}={req} asks for fewer than splits.{field}={minimum}; to accept a "
                       f"{name} split this small, lower the minimum too: --set splits.{field}={n}")
            else:
                fix = (f"use more data ({more}, where the task holds more: a task's own {name} pool is used "
                       f"whole and cannot grow) or, accepting a noisier measure, lower the minimum: "
                       f"--set splits.{field}={n}")
            problems.append(f"split {name!r} has {_n(n)}{after}, under splits.{field}={minimum}: {fix}")
        elif n == 0:
            problems.append(f"split {name!r} is empty ({len(task)} examples); use more data or smaller split "
                            "sizes (splits.n_*)")
        elif task.kind != "generation":  # a generation task's examples are all answerable: no classes
            classes = np.unique(labels[idx])
            if len(classes) < 2:
                c = int(classes[0])
                label = f"{c} ({task.label_names[c]})" if c < len(task.label_names) else str(c)
                problems.append(f"split {name!r} has {_n(n)}, all of one class (label {label}), so accuracy "
                                f"and PGR on it mean nothing: use more data ({more}) or a larger splits.n_{name}")
    if problems:
        raise W2SError(f"task {task.name!r}{budget}: the splits drawn with split seed {splits.seed} cannot give a "
                       "trustworthy result; nothing was trained:\n  - " + "\n  - ".join(problems))


def _n(n: int) -> str:
    return f"{n} example" if n == 1 else f"{n} examples"
