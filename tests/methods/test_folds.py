"""Out-of-fold splits over groups (methods/_folds.py), and a probe run on a grouped toy task: no fold
model of s2s, bootstrap, knn_filter or logreg_filter labels an example whose group it trained on."""

from __future__ import annotations

import json

import numpy as np
import pytest

import w2sgen
from w2sgen.errors import W2SError
from w2sgen.methods._folds import fold_ids

# --------------------------------------------------------------------------- fold_ids


def _groups(sizes: list[int]) -> np.ndarray:
    """Group labels of items in groups of ``sizes``, shuffled (a group's items are not adjacent)."""
    g = np.repeat([f"q{i}" for i in range(len(sizes))], sizes)
    return g[np.random.default_rng(0).permutation(len(g))]


@pytest.mark.parametrize("k", [2, 3, 5])
def test_folds_partition_whole_groups_and_are_balanced(k):
    sizes = [3, 4] * 15 + [3]
    g = _groups(sizes)
    folds = fold_ids(g, k, seed=4)
    assert len(folds) == k
    assert sorted(np.concatenate(folds).tolist()) == list(range(len(g)))
    assert all(np.all(np.diff(f) > 0) for f in folds)  # sorted positions
    seen: set[str] = set()
    for f in folds:
        assert not seen & set(g[f].tolist())  # no group in two folds
        seen |= set(g[f].tolist())
    n = [len(f) for f in folds]
    assert max(n) - min(n) <= max(sizes)


def test_folds_are_deterministic_from_the_seed():
    g = _groups([3, 4] * 10)
    a, b, c = fold_ids(g, 3, 0), fold_ids(g, 3, 0), fold_ids(g, 3, 1)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert any(not np.array_equal(x, y) for x, y in zip(a, c))


def test_one_example_per_group_is_a_seeded_permutation_dealt_round_robin():
    n, k, seed = 23, 4, 3
    perm = np.random.default_rng([seed, 7919]).permutation(n)
    want = [np.sort(perm[f::k]) for f in range(k)]
    got = fold_ids(np.arange(n), k, seed)
    assert all(np.array_equal(a, b) for a, b in zip(got, want))
    assert [len(f) for f in got] == [len(f) for f in np.array_split(np.arange(n), k)]  # 6, 6, 6, 5


def test_fewer_groups_than_folds_names_the_method_and_the_fix():
    with pytest.raises(W2SError) as e:
        fold_ids(np.repeat(["a", "b", "c"], 4), 5, 0, "s2s")
    msg = str(e.value)
    assert "'s2s'" in msg and "at least 5 groups" in msg and "12 transfer examples form 3" in msg
    assert "--set s2s.folds=3" in msg
    with pytest.raises(W2SError, match="at least 1 groups"):
        fold_ids(np.arange(10), 1, 0)


# --------------------------------------------------------------------------- a probe run on a grouped task


def _grouped_toy_task(path, n_groups: int = 48):
    """Questions with 3 or 4 candidates each (a group), labels mixed inside a group: 168 examples."""
    rng = np.random.default_rng(0)
    rows = []
    for q in range(n_groups):
        city = ["paris", "berlin", "rome", "madrid", "tokyo", "lima"][q % 6]
        for c in range(3 + q % 2):
            y = int(rng.integers(2)) if c else q % 2
            word = rng.choice(["good", "great"] if y else ["bad", "awful"])
            rows.append({"text": f"{city} the movie {word} {q} {c}", "label": y, "group": f"q{q}"})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_no_fold_model_labels_a_group_it_trained_on(tmp_path, tiny_encoders, monkeypatch):
    """Records the rows every fold stage trained on (s2s, bootstrap) and the folds the probe filters
    used, in a real probe run, and checks them against the task's groups."""
    from conftest import toy_config

    from w2sgen.methods import knn_filter, logreg_filter
    from w2sgen.methods.context import StudentContext
    from w2sgen.tasks import load_task

    weak, strong = tiny_encoders
    task_file = _grouped_toy_task(tmp_path / "grouped.jsonl")
    group = load_task(str(task_file)).frame["group"].to_numpy()  # frame row -> group
    trained: list[tuple[str, np.ndarray]] = []
    oof_calls: list[tuple[str, np.ndarray, list[np.ndarray]]] = []
    probe_folds: list[tuple[np.ndarray, list[np.ndarray]]] = []
    train, oof_eval = StudentContext.train, StudentContext.oof_eval

    def spy_train(self, stage, side, rows, *a, **kw):
        trained.append((stage, np.asarray(rows)))
        return train(self, stage, side, rows, *a, **kw)

    def spy_oof_eval(self, stage, side, rows, *a, **kw):
        start = len(trained)
        out = oof_eval(self, stage, side, rows, *a, **kw)
        oof_calls.append((stage, np.asarray(rows), [r for _, r in trained[start:]]))
        return out

    def spy_folds(groups, folds, seed, method):
        out = fold_ids(groups, folds, seed, method)
        probe_folds.append((np.asarray(groups), out))
        return out

    monkeypatch.setattr(StudentContext, "train", spy_train)
    monkeypatch.setattr(StudentContext, "oof_eval", spy_oof_eval)
    monkeypatch.setattr(knn_filter, "fold_ids", spy_folds)
    monkeypatch.setattr(logreg_filter, "fold_ids", spy_folds)
    cfg = toy_config(task_file, weak, strong, tmp_path / "out",
                     methods=["s2s", "bootstrap", "knn_filter", "logreg_filter"],
                     method_args={"s2s": {"folds": 3}, "bootstrap": {"models": [str(weak)], "folds": 3},
                                  "knn_filter": {"k": 5, "folds": 4}, "logreg_filter": {"folds": 4}})
    cfg.splits.n_transfer = 60
    cfg.probe.epochs = 2
    w2sgen.run(cfg, cache_dir=tmp_path / "cache")

    assert sorted(s for s, _, _ in oof_calls) == ["bootstrap", "s2s"]
    for stage, rows, fold_rows in oof_calls:
        assert len(fold_rows) == 3
        assert len(set(group[rows])) < len(rows)  # transfer holds whole groups of several candidates
        for fit in fold_rows:
            labelled = np.setdiff1d(rows, fit)
            assert len(labelled) > 0 and not set(group[fit]) & set(group[labelled]), stage
    assert len(probe_folds) == 2  # knn_filter, logreg_filter
    for groups, folds in probe_folds:
        assert len(set(groups.tolist())) < len(groups) and set(groups.tolist()) <= set(group.tolist())
        for held in folds:
            rest = np.setdiff1d(np.arange(len(groups)), held)
            assert not set(groups[held].tolist()) & set(groups[rest].tolist())
