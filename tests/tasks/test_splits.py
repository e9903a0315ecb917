"""make_splits: deterministic, disjoint, grouped splits with the documented sizes."""

from __future__ import annotations

import logging
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from w2sgen.config import SplitConfig
from w2sgen.errors import W2SError
from w2sgen.tasks.base import TaskData
from w2sgen.tasks.splits import SPLITS, check_splits, make_splits

MAX_GROUP = 3  # the synthetic tasks below use groups of 2 and 3 examples
LOW = {"min_test": 0, "min_val": 0}
"""The val and test minimums lowered explicitly: the size arithmetic is tested on small synthetic tasks."""


def grouped_task(
    n_groups: int = 200,
    sizes: tuple[int, ...] = (2, 3),
    pos_rate: float = 0.5,
    n_test_groups: int = 0,
    seed: int = 0,
) -> TaskData:
    """Groups of the given sizes (cycled); the last ``n_test_groups`` groups form a test pool."""
    rng = np.random.default_rng(seed)
    rows = []
    for g in range(n_groups):
        pool = "test" if g >= n_groups - n_test_groups else "train"
        for _ in range(sizes[g % len(sizes)]):
            i = len(rows)
            rows.append({"id": f"ex{i}", "text": f"text {i}", "label": int(rng.random() < pos_rate),
                         "group": f"g{g}", "pool": pool})
    return TaskData("synthetic", pd.DataFrame(rows))


def singleton_task(n: int, n_test: int = 0) -> TaskData:
    """n examples, one per group (sizes are then exact), alternating labels."""
    frame = pd.DataFrame({
        "id": [f"ex{i}" for i in range(n)],
        "text": [f"text {i}" for i in range(n)],
        "label": np.arange(n) % 2,
        "group": [f"g{i}" for i in range(n)],
        "pool": ["test" if i >= n - n_test else "train" for i in range(n)],
    })
    return TaskData("singletons", frame)


def split_of(task: TaskData, splits) -> np.ndarray:
    """The split name of every row ('' for rows in no split)."""
    where = np.full(len(task), "", dtype=object)
    for name in SPLITS:
        where[splits[name]] = name
    return where


def assert_disjoint(splits) -> None:
    seen: set[int] = set()
    for name in SPLITS:
        idx = splits[name].tolist()
        assert len(idx) == len(set(idx)), f"{name} repeats an index"
        assert not seen & set(idx), f"{name} overlaps an earlier split"
        seen |= set(idx)


# ------------------------------------------------------------------ determinism and seeds
def test_same_split_seed_gives_the_same_splits():
    task = grouped_task()
    a = make_splits(task, SplitConfig(), seed=3)
    b = make_splits(task, SplitConfig(), seed=3)
    for name in SPLITS:
        np.testing.assert_array_equal(a[name], b[name])
    assert a.seed == b.seed == 3


def test_a_different_seed_gives_different_splits():
    task = grouped_task()
    a = make_splits(task, SplitConfig(), seed=3)
    b = make_splits(task, SplitConfig(), seed=4)
    for name in SPLITS:
        assert set(a[name].tolist()) != set(b[name].tolist()), name


def test_split_seed_is_independent_of_the_run_seed():
    task = grouped_task()
    cfg = SplitConfig(split_seed=7)
    a = make_splits(task, cfg, seed=1)
    b = make_splits(task, cfg, seed=2)
    c = make_splits(task, SplitConfig(), seed=7)  # no split_seed: the run seed is the split seed
    d = make_splits(task, SplitConfig(), seed=1)
    assert a.seed == b.seed == 7
    for name in SPLITS:
        np.testing.assert_array_equal(a[name], b[name])
        np.testing.assert_array_equal(a[name], c[name])
    assert any(set(a[n].tolist()) != set(d[n].tolist()) for n in SPLITS)


# ------------------------------------------------------------------ structure
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_splits_are_disjoint_sorted_and_cover_the_task_by_default(seed):
    task = grouped_task()
    s = make_splits(task, SplitConfig(), seed=seed)
    assert_disjoint(s)
    for name in SPLITS:
        idx = s[name]
        assert idx.dtype.kind == "i"
        assert np.all(np.diff(idx) > 0), f"{name} is not sorted"
        assert idx.min() >= 0 and idx.max() < len(task)
    # by default transfer takes everything that is left: no example is lost
    assert sum(s.sizes().values()) == len(task)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_groups_never_straddle_splits(seed):
    task = grouped_task(n_groups=150, sizes=(2, 3, 3))
    cfg = SplitConfig(n_weak_train=41, n_transfer=57, n_val=23, n_test=31, **LOW)
    s = make_splits(task, cfg, seed=seed)
    where = split_of(task, s)
    per_group = pd.Series(where).groupby(task.frame["group"]).agg(lambda x: set(x))
    straddling = per_group[per_group.map(len) > 1]
    assert straddling.empty, f"groups in several splits: {straddling.head().to_dict()}"


def test_a_group_spanning_both_pools_is_refused():
    frame = pd.DataFrame({"id": list("abcd"), "text": list("abcd"), "label": [0, 1, 0, 1],
                          "group": ["g0", "g0", "g1", "g2"], "pool": ["train", "test", "train", "train"]})
    with pytest.raises(W2SError, match="spans the train and test pools"):
        make_splits(TaskData("t", frame), SplitConfig(), seed=0)


# ------------------------------------------------------------------ sizes
@pytest.mark.parametrize("seed", [0, 5])
def test_requested_counts_are_honoured_within_one_group(seed):
    task = grouped_task(n_groups=200)  # 500 examples
    want = {"weak_train": 50, "transfer": 60, "val": 20, "test": 30}
    cfg = SplitConfig(n_weak_train=50, n_transfer=60, n_val=20, n_test=30, **LOW)
    sizes = make_splits(task, cfg, seed=seed).sizes()
    for name, n in want.items():
        assert n <= sizes[name] < n + MAX_GROUP, (name, sizes)


def test_counts_are_exact_with_singleton_groups():
    task = singleton_task(300)
    cfg = SplitConfig(n_weak_train=50, n_transfer=60, n_val=20, n_test=30, **LOW)
    assert make_splits(task, cfg, seed=0).sizes() == {"weak_train": 50, "transfer": 60, "val": 20, "test": 30}


def test_fractions_are_fractions_of_the_training_pool():
    task = singleton_task(1000)
    cfg = SplitConfig(n_weak_train=0.3, n_transfer=0.25, n_val=0.05, n_test=0.15, **LOW)
    sizes = make_splits(task, cfg, seed=0).sizes()
    assert sizes == {"weak_train": 300, "transfer": 250, "val": 50, "test": 150}


def test_fractions_with_groups():
    task = grouped_task(n_groups=400)  # 1000 examples
    cfg = SplitConfig(n_weak_train=0.3, n_transfer=0.25, n_val=0.05, n_test=0.15, **LOW)
    sizes = make_splits(task, cfg, seed=1).sizes()
    for name, n in {"weak_train": 300, "transfer": 250, "val": 50, "test": 150}.items():
        assert n <= sizes[name] < n + MAX_GROUP, (name, sizes)


@pytest.mark.parametrize("field,value", [("n_val", 1.5), ("n_test", 0.0), ("n_weak_train", -3)])
def test_bad_sizes_are_refused(field, value):
    with pytest.raises(W2SError, match=f"splits.{field}"):
        make_splits(grouped_task(), SplitConfig(**{field: value}), seed=0)


def test_default_sizes_without_a_test_pool():
    task = singleton_task(500)
    sizes = make_splits(task, SplitConfig(**LOW), seed=0).sizes()
    assert sizes["test"] == 100  # 20%
    assert sizes["val"] == 50  # 10% of the pool
    assert sizes["weak_train"] == (500 - 100 - 50) // 2
    assert sizes["transfer"] == 500 - 100 - 50 - sizes["weak_train"]


def test_default_sizes_with_groups_are_halves_of_the_rest():
    task = grouped_task(n_groups=200)  # 500 examples
    s = make_splits(task, SplitConfig(**LOW), seed=2)
    sizes = s.sizes()
    assert 100 <= sizes["test"] < 100 + MAX_GROUP
    assert 50 <= sizes["val"] < 50 + MAX_GROUP
    rest = len(task) - sizes["test"] - sizes["val"]
    assert abs(sizes["weak_train"] - rest / 2) <= MAX_GROUP
    assert sizes["weak_train"] + sizes["transfer"] == rest


def test_default_val_and_test_are_capped_on_large_tasks():
    # SplitConfig documents: val at most 1,000, carved test at most 5,000
    task = singleton_task(60_000)
    sizes = make_splits(task, SplitConfig(), seed=0).sizes()
    assert sizes["val"] == 1000
    assert sizes["test"] == 5000
    assert sizes["weak_train"] == (60_000 - 6000) // 2
    # the cap binds only the defaults: an explicit fraction is taken as given
    sizes = make_splits(task, SplitConfig(n_val=0.1, n_test=0.2), seed=0).sizes()
    assert sizes["val"] == 6000 and sizes["test"] == 12_000


# ------------------------------------------------------------------ a task with its own test pool
def test_test_pool_feeds_test_only():
    task = grouped_task(n_groups=200, n_test_groups=40)
    pools = task.frame["pool"].to_numpy()
    s = make_splits(task, SplitConfig(**LOW), seed=0)
    # default test = the whole test pool
    np.testing.assert_array_equal(s["test"], np.flatnonzero(pools == "test"))
    for name in ("weak_train", "transfer", "val"):
        assert set(pools[s[name]]) == {"train"}, name
    # the other splits share out the whole training pool
    train_idx = np.concatenate([s[n] for n in ("weak_train", "transfer", "val")])
    assert sorted(train_idx.tolist()) == np.flatnonzero(pools == "train").tolist()
    n_train = int((pools == "train").sum())
    assert s.sizes()["val"] >= round(0.1 * n_train)


def test_a_test_count_draws_from_the_test_pool():
    task = grouped_task(n_groups=200, n_test_groups=40)
    pools = task.frame["pool"].to_numpy()
    s = make_splits(task, SplitConfig(n_test=20, n_val=30, **LOW), seed=4)
    assert set(pools[s["test"]]) == {"test"}
    assert 20 <= len(s["test"]) < 20 + MAX_GROUP
    for name in ("weak_train", "transfer", "val"):
        assert set(pools[s[name]]) == {"train"}, name


# ------------------------------------------------------------------ balance, max_examples, cuts, errors
def test_balance_gives_exactly_half_of_each_label():
    task = grouped_task(n_groups=400, pos_rate=0.25, seed=1)
    unbalanced = make_splits(task, SplitConfig(**LOW), seed=0)
    labels = task.frame["label"].to_numpy()
    # the task is imbalanced to start with
    assert labels[unbalanced["weak_train"]].mean() < 0.4
    s = make_splits(task, SplitConfig(balance=True, **LOW), seed=0)
    for name in SPLITS:
        counts = Counter(labels[s[name]].tolist())
        assert counts[0] == counts[1] > 0, (name, counts)
        # balancing only drops examples, it never moves one to another split
        assert set(s[name].tolist()) <= set(unbalanced[name].tolist())
    assert_disjoint(s)


def test_balance_is_deterministic():
    task = grouped_task(n_groups=300, pos_rate=0.3, seed=2)
    a = make_splits(task, SplitConfig(balance=True, **LOW), seed=9)
    b = make_splits(task, SplitConfig(balance=True, **LOW), seed=9)
    for name in SPLITS:
        np.testing.assert_array_equal(a[name], b[name])


def test_max_examples_subsamples_by_group():
    task = grouped_task(n_groups=400)  # 1000 examples
    s = make_splits(task, SplitConfig(max_examples=100, **LOW), seed=0)
    total = sum(s.sizes().values())
    assert 100 <= total < 100 + MAX_GROUP
    assert all(n > 0 for n in s.sizes().values())
    assert_disjoint(s)
    # whole groups were kept
    used = np.concatenate([s[n] for n in SPLITS])
    groups = task.frame["group"].to_numpy()
    kept = set(groups[used].tolist())
    assert (task.frame["group"].isin(kept)).sum() == len(used)
    # a different seed keeps other examples
    other = make_splits(task, SplitConfig(max_examples=100, **LOW), seed=1)
    assert set(used.tolist()) != set(np.concatenate([other[n] for n in SPLITS]).tolist())


def test_max_examples_below_four_is_refused():
    with pytest.raises(W2SError, match="max_examples"):
        make_splits(grouped_task(), SplitConfig(max_examples=3, **LOW), seed=0)


def test_too_large_transfer_is_cut_to_what_is_left(caplog, monkeypatch):
    import w2sgen.tasks.splits as splits_mod

    monkeypatch.setattr(splits_mod, "_WARNED", set())
    task = singleton_task(500)
    cfg = SplitConfig(n_weak_train=100, n_val=50, n_test=50, n_transfer=10_000, **LOW)
    logger = logging.getLogger("w2sgen")
    logger.addHandler(caplog.handler)  # the package logger may not propagate
    try:
        with caplog.at_level(logging.WARNING, logger="w2sgen"):
            sizes = make_splits(task, cfg, seed=0).sizes()
    finally:
        logger.removeHandler(caplog.handler)
    assert sizes == {"weak_train": 100, "transfer": 300, "val": 50, "test": 50}
    assert any("transfer" in r.getMessage() and "300" in r.getMessage() for r in caplog.records)


def test_an_empty_split_raises():
    with pytest.raises(W2SError, match="is empty"):
        make_splits(singleton_task(3), SplitConfig(**LOW), seed=0)


def test_a_zero_count_raises_naming_the_split():
    with pytest.raises(W2SError, match="'weak_train' is empty"):
        make_splits(singleton_task(100), SplitConfig(n_weak_train=0, **LOW), seed=0)


def test_nothing_left_for_transfer_raises():
    with pytest.raises(W2SError, match="'transfer' is empty"):
        make_splits(singleton_task(100), SplitConfig(n_test=20, n_val=10, n_weak_train=70, **LOW), seed=0)


def test_max_examples_leaves_the_train_pool_its_share_when_the_test_pool_is_large():
    """A task whose test pool dwarfs its train pool (tweet_eval: 2k / 12k): a subsample of 1,000 with
    n_test=200 keeps 200 test examples and gives the other 800 to the train pool."""
    task = singleton_task(5000, n_test=4000)
    cfg = SplitConfig(n_weak_train=300, n_transfer=400, n_val=100, n_test=200, max_examples=1000)
    sizes = make_splits(task, cfg, 0).sizes()
    assert sizes == {"weak_train": 300, "transfer": 400, "val": 100, "test": 200}
    assert (task.frame["pool"].to_numpy()[make_splits(task, cfg, 0)["test"]] == "test").all()


@pytest.mark.parametrize("n_test", [0, 1500])
def test_pool_seed_fixes_the_subsample_and_the_seed_still_draws_the_splits(n_test):
    task = singleton_task(5000, n_test=n_test)
    cfg = SplitConfig(n_weak_train=200, n_transfer=300, n_val=50, n_test=150, max_examples=1000, pool_seed=7,
                      **LOW)
    used = []
    for seed in range(4):
        sp = make_splits(task, cfg, seed)
        assert sp.sizes() == {"weak_train": 200, "transfer": 300, "val": 50, "test": 150}
        used.append(set(np.concatenate([sp[s] for s in SPLITS]).tolist()))
    pool = set().union(*used)
    assert len(pool) <= 1000  # every seed draws inside one subsample of at most max_examples
    assert len({frozenset(u) for u in used}) > 1  # ... and the splits still change with the seed
    without = set().union(*(set(np.concatenate([make_splits(task, SplitConfig(
        n_weak_train=200, n_transfer=300, n_val=50, n_test=150, max_examples=1000, **LOW), s)[x]
        for x in SPLITS]).tolist())
        for s in range(4)))
    assert len(without) > len(pool)  # without pool_seed each seed subsamples anew


@pytest.mark.parametrize("n_test_groups", [0, 60])
def test_strong_pool_fixes_the_strong_models_texts_and_the_seed_still_draws_every_split(n_test_groups):
    """transfer, val (and carved test) lie in one sample of the training pool, the same for every seed
    (so the strong model embeds those texts only); weak_train lies outside it; whole groups."""
    task = grouped_task(400, n_test_groups=n_test_groups)
    cfg = SplitConfig(strong_pool=300, n_weak_train=120, n_val=40, n_test=60, pool_seed=5, **LOW)
    pools = task.frame["pool"].to_numpy()
    draws = [make_splits(task, cfg, seed) for seed in range(4)]
    strong = [set(np.concatenate([sp["transfer"], sp["val"]] + ([] if n_test_groups else [sp["test"]])).tolist())
              for sp in draws]
    assert len({frozenset(s) for s in strong}) == 1  # the same sample for every seed
    assert 300 <= len(strong[0]) <= 300 + MAX_GROUP and (pools[list(strong[0])] == "train").all()
    for sp in draws:
        assert not set(sp["weak_train"].tolist()) & strong[0]
        assert len(sp["weak_train"]) >= 120 and len(sp["val"]) >= 40 and len(sp["test"]) >= 60
        if n_test_groups:
            assert (pools[sp["test"]] == "test").all()
        where = pd.Series("none", index=task.frame.index)
        for name in SPLITS:
            where.iloc[sp[name]] = name
        assert (where.groupby(task.frame["group"]).nunique() == 1).all()  # whole groups
    for name in ("transfer", "val", "weak_train"):  # each seed partitions differently
        assert len({frozenset(sp[name].tolist()) for sp in draws}) > 1
    other = make_splits(task, SplitConfig(strong_pool=300, n_weak_train=120, n_val=40, n_test=60, pool_seed=6, **LOW), 0)
    assert set(np.concatenate([other["transfer"], other["val"]]).tolist()) - strong[0]  # pool_seed draws the sample


def test_strong_pool_errors_name_the_field_and_the_fix():
    task = grouped_task(100)
    with pytest.raises(W2SError, match="'splits.strong_pool'.*use one"):
        make_splits(task, SplitConfig(strong_pool=100, max_examples=200, **LOW), 0)
    with pytest.raises(W2SError, match="'splits.strong_pool': 250 examples.*use at most 243"):
        make_splits(task, SplitConfig(strong_pool=250, **LOW), 0)
    for pool_seed in range(6):  # the advice holds whatever the sample's groups
        bound = make_splits(task, SplitConfig(strong_pool=243, n_val=5, n_test=5, pool_seed=pool_seed, **LOW), 0)
        assert len(bound["weak_train"]) >= 4
    with pytest.raises(W2SError, match="too small for it: drop splits.strong_pool"):
        make_splits(grouped_task(3), SplitConfig(strong_pool=4, **LOW), 0)
    with pytest.raises(W2SError, match="with splits.strong_pool=60: transfer, val and test come from its sample"):
        make_splits(singleton_task(100), SplitConfig(strong_pool=60, n_val=30, n_test=28, **LOW), 0)  # transfer 2, 1 class
    with pytest.raises(W2SError, match="'splits.strong_pool': a sample of 10[0-9] examples cannot hold test and "
                                       "val.*min_test=200.*strong_pool >= 30[0-9]"):
        make_splits(task, SplitConfig(strong_pool=100), 0)
    with pytest.raises(W2SError, match="cannot hold val \\(50 examples"):
        make_splits(grouped_task(100, n_test_groups=20), SplitConfig(strong_pool=50, n_val=50, **LOW), 0)
    with pytest.raises(W2SError, match="'splits.strong_pool'.*>= 4"):
        make_splits(task, SplitConfig(strong_pool=2, **LOW), 0)


# ------------------------------------------------------------------ minimums (splits.min_test, splits.min_val)
def _classes(task: TaskData, s) -> dict[str, int]:
    labels = task.frame["label"].to_numpy()
    return {name: len(set(labels[s[name]].tolist())) for name in SPLITS}


def test_default_val_and_test_are_at_least_the_minimums():
    sizes = make_splits(singleton_task(600), SplitConfig(), seed=0).sizes()
    assert sizes == {"test": 200, "val": 100, "weak_train": 150, "transfer": 150}  # not 20% / 10%: 120 / 60


@pytest.mark.parametrize("pool_seed", [None, 3])
@pytest.mark.parametrize("n_test_pool", [0, 900])
def test_max_examples_reserves_the_minimums_first(n_test_pool, pool_seed):
    """A large training pool and a small test pool (sst2: 67k / 872): the budget's test share is no
    longer the test pool's share of the task (about 8 of 600), with its own test pool or carved."""
    task = singleton_task(60_000 + n_test_pool, n_test=n_test_pool)
    pools = task.frame["pool"].to_numpy()
    s = make_splits(task, SplitConfig(max_examples=600, pool_seed=pool_seed), seed=1)
    assert s.sizes() == {"test": 200, "val": 100, "weak_train": 150, "transfer": 150}
    assert set(pools[s["test"]]) == {"test" if n_test_pool else "train"}
    assert all(n == 2 for n in _classes(task, s).values())


def test_max_examples_with_pool_seed_keeps_one_test_split_across_seeds():
    task = singleton_task(20_000, n_test=900)
    cfg = SplitConfig(max_examples=600, pool_seed=5)
    tests = {tuple(make_splits(task, cfg, seed)["test"].tolist()) for seed in range(3)}
    assert len(tests) == 1


def test_sst2_with_600_examples_gets_usable_splits():
    """Issue 13, item 6: `--max-examples 600` on sst2 drew a test split of 4 examples of one class."""
    from conftest import require_data

    from w2sgen.tasks import load_task

    task = load_task("sst2", str(require_data("sst2")))
    pools = task.frame["pool"].to_numpy()
    for cfg in (SplitConfig(max_examples=600), SplitConfig(max_examples=600, pool_seed=0)):
        for seed in (0, 1):
            s = make_splits(task, cfg, seed)
            sizes = s.sizes()
            assert sizes["test"] >= 200 and sizes["val"] >= 100, sizes
            assert sizes["weak_train"] > 0 and sizes["transfer"] > 0 and sum(sizes.values()) <= 600 + MAX_GROUP
            assert set(pools[s["test"]]) == {"test"}  # from sst2's own test pool (GLUE dev)
            assert all(n == 2 for n in _classes(task, s).values()), sizes


def test_a_budget_below_the_minimums_is_refused_before_drawing():
    with pytest.raises(W2SError) as e:
        make_splits(singleton_task(5000), SplitConfig(max_examples=300), seed=0)
    msg = str(e.value)
    for part in ("splits.max_examples", "300 examples", "test 200", "splits.min_test=200", "val 100",
                 "splits.min_val=100", "--max-examples 304", "--set splits.min_test=50"):
        assert part in msg, (part, msg)


def test_a_test_split_under_the_minimum_names_split_size_and_fix():
    task = singleton_task(1150, n_test=150)  # the task's own test pool holds 150
    with pytest.raises(W2SError) as e:
        make_splits(task, SplitConfig(), seed=0)
    msg = str(e.value)
    assert "split 'test' has 150 examples, under splits.min_test=200" in msg
    assert "use more data" in msg and "--set splits.min_test=150" in msg
    assert "'val'" not in msg  # val is fine


def test_a_val_split_under_the_minimum_names_split_size_and_fix():
    task = singleton_task(300, n_test=240)  # a training pool of 60 examples
    with pytest.raises(W2SError) as e:
        make_splits(task, SplitConfig(), seed=0)
    msg = str(e.value)
    assert "split 'val' has 60 examples, under splits.min_val=100" in msg and "--set splits.min_val=60" in msg
    assert "split 'weak_train' is empty" in msg  # every problem of the draw is listed at once


def test_budget_message_names_the_minimum_under_max_examples():
    task = singleton_task(1150, n_test=150)
    with pytest.raises(W2SError, match=r"split 'test' has 150 examples.*a larger --max-examples than 1000"):
        make_splits(task, SplitConfig(max_examples=1000), seed=0)


def test_an_explicit_small_n_test_needs_a_lowered_minimum():
    task = singleton_task(2000)
    with pytest.raises(W2SError) as e:
        make_splits(task, SplitConfig(n_test=50), seed=0)
    msg = str(e.value)
    assert "split 'test' has 50 examples, under splits.min_test=200" in msg
    assert "splits.n_test=50 asks for fewer" in msg and "--set splits.min_test=50" in msg
    with pytest.raises(W2SError, match=r"split 'val' has 30 examples.*splits.n_val=30 asks for fewer.*"
                                       r"--set splits.min_val=30"):
        make_splits(task, SplitConfig(n_val=30), seed=0)


def test_lowered_minimums_accept_small_splits():
    task = singleton_task(2000)
    cfg = SplitConfig(n_test=50, n_val=30, min_test=50, min_val=30)
    sizes = make_splits(task, cfg, seed=0).sizes()
    assert sizes["test"] == 50 and sizes["val"] == 30
    with pytest.raises(W2SError, match="'test' has 50"):
        make_splits(task, SplitConfig(n_test=50, n_val=30, min_test=51, min_val=30), seed=0)


def test_balance_below_the_minimum_says_so():
    task = grouped_task(n_groups=1000, pos_rate=0.1, n_test_groups=200, seed=3)  # ~500 test, ~50 positive
    with pytest.raises(W2SError, match=r"split 'test' has \d+ examples after --balance, under splits.min_test"):
        make_splits(task, SplitConfig(balance=True), seed=0)


@pytest.mark.parametrize("name", SPLITS)
def test_a_split_of_one_class_is_refused(name):
    task = singleton_task(1000)
    s = make_splits(task, SplitConfig(), seed=0)
    frame = task.frame.copy()
    frame.loc[s[name], "label"] = 1  # every example of this split positive
    one = TaskData(task.name, frame)
    with pytest.raises(W2SError) as e:
        check_splits(one, SplitConfig(), s)
    msg = str(e.value)
    n = len(s[name])
    assert f"split {name!r} has {n} examples, all of one class (label 1 (true))" in msg
    assert "use more data" in msg and f"splits.n_{name}" in msg
    assert msg.count("all of one class") == 1  # the other splits are fine


def test_a_one_class_test_pool_is_refused_at_make_splits():
    """The failure of issue 13: a test split of one class gave weak 0%, ceiling 50%, PGR 0.00."""
    frame = singleton_task(1500, n_test=300).frame.copy()
    frame.loc[frame["pool"] == "test", "label"] = 0
    with pytest.raises(W2SError, match=r"split 'test' has 300 examples, all of one class \(label 0 \(false\)\)"):
        make_splits(TaskData("onesided", frame), SplitConfig(), seed=0)


@pytest.mark.parametrize("field", ["min_test", "min_val"])
def test_a_negative_minimum_is_refused(field):
    with pytest.raises(W2SError, match=f"splits.{field}"):
        make_splits(singleton_task(1000), SplitConfig(**{field: -1}), seed=0)
