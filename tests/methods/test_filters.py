"""The feature-probe label filters: knn_filter, logreg_filter, topo_filter (kind ``select``)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from conftest import write_toy_task

import w2sgen
from w2sgen.errors import W2SError
from w2sgen.methods import METHODS
from w2sgen.methods import _filtering as F
from w2sgen.methods._folds import fold_ids
from w2sgen.methods.knn_filter import knn_scores
from w2sgen.methods.logreg_filter import logreg_scores
from w2sgen.methods.topo_filter import largest_components, topo_scores, zeta_keep
from w2sgen.protocol import split_arrays

FILTERS = ["knn_filter", "logreg_filter", "topo_filter"]
FLIPPED = np.array([3, 17, 30, 52, 71, 88])  # 3 in each cluster


def _clusters(n: int = 100, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two well-separated Gaussian clusters in 6-d: (x (n, 6), truth (n,), weak one-hot (n, 2) with
    FLIPPED labels flipped)."""
    rng = np.random.default_rng(seed)
    y = (np.arange(n) >= n // 2).astype(int)
    x = rng.normal(0, 0.3, (n, 6))
    x[:, 0] += np.where(y == 1, 3.0, -3.0)
    x[:, 1] += np.where(y == 1, -2.0, 2.0)
    noisy = y.copy()
    noisy[FLIPPED] = 1 - noisy[FLIPPED]
    return x, y, np.eye(2, dtype=np.float32)[noisy]


def _flag_mask(n: int = 100) -> np.ndarray:
    m = np.zeros(n, dtype=bool)
    m[FLIPPED] = True
    return m


# --------------------------------------------------------------------------- shared pieces


def test_disagreement_and_most_disagreeing_exact():
    pred = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.5, 0.5]])
    weak = np.array([[0.7, 0.3], [0.6, 0.4], [0.1, 0.9], [0.5, 0.5]])  # hard: 0, 0, 1, 0 (tie -> 0)
    np.testing.assert_allclose(F.disagreement(pred, weak), [0.1, 0.8, 0.6, 0.5])
    np.testing.assert_array_equal(F.most_disagreeing(F.disagreement(pred, weak), 0.5), [False, True, True, False])
    np.testing.assert_array_equal(F.most_disagreeing(np.array([0.3, 0.3, 0.3, 0.1]), 0.25),
                                  [True, False, False, False])  # ties: the lower index first
    assert not F.most_disagreeing(np.ones(4), 0.0).any()


def test_apply_action_drop_and_relabel_exact():
    weak = np.array([[0.7, 0.3], [0.6, 0.4], [0.2, 0.8]], dtype=np.float32)
    pred = np.array([[0.9, 0.1], [0.3, 0.7], [0.4, 0.6]])
    flagged = np.array([False, True, True])
    keep, t = F.apply_action("drop", weak, flagged, pred)
    np.testing.assert_array_equal(keep, [True, False, False])
    np.testing.assert_array_equal(t, weak)
    keep, t = F.apply_action("relabel", weak, flagged, pred)
    assert keep.all()
    np.testing.assert_array_equal(t, np.array([[0.7, 0.3], [0, 1], [0, 1]], np.float32))  # one-hot of the probe's argmax


def test_fold_ids_match_the_context_folds():
    from w2sgen.methods.context import StudentContext

    groups = np.repeat(np.arange(10), 3)[:29]  # frame rows 0..28 in groups of 3
    rows = np.arange(6, 29)
    ctx = SimpleNamespace(seed=3, groups=lambda r: groups[r])
    want = StudentContext.folds(ctx, rows, 4)
    got = fold_ids(groups[rows], 4, 3)
    assert all(np.array_equal(a, b) for a, b in zip(got, want))
    assert sorted(np.concatenate(got).tolist()) == list(range(23))


# --------------------------------------------------------------------------- knn


def test_knn_drops_exactly_the_flipped_labels_and_relabel_restores_them():
    x, y, weak = _clusters()
    pred = knn_scores(x, weak, k=10, folds=5, seed=0)
    assert pred.shape == (100, 2)
    np.testing.assert_array_equal(pred.argmax(1), y)  # the neighbourhood vote recovers the truth
    flagged = F.most_disagreeing(F.disagreement(pred, weak), len(FLIPPED) / 100)
    np.testing.assert_array_equal(flagged, _flag_mask())
    keep, t = F.apply_action("relabel", weak, flagged, pred)
    assert keep.all()
    np.testing.assert_array_equal(t.argmax(1), y)


def test_knn_a_points_own_label_never_reaches_its_own_score():
    x, _, weak = _clusters()
    base = knn_scores(x, weak, k=10, folds=5, seed=0)
    held = next(f for f in fold_ids(np.arange(100), 5, 0) if 17 in f)
    for i in (17, 52):
        w2 = weak.copy()
        w2[i] = 1 - w2[i]
        changed = knn_scores(x, w2, k=10, folds=5, seed=0)
        np.testing.assert_array_equal(changed[i], base[i])
    w2 = weak.copy()
    w2[held] = 1 - w2[held]  # nothing of its own fold votes on it either
    np.testing.assert_array_equal(knn_scores(x, w2, k=10, folds=5, seed=0)[held], base[held])


def test_knn_mean_of_neighbours_exact():
    # 1-d points; with k=1 each point's vote is the label of its nearest point outside its fold
    x = np.array([[0.0, 1.0], [0.1, 1.0], [5.0, 1.0], [5.1, 1.0]])
    lab = np.array([[1, 0], [0.5, 0.5], [0, 1], [0.2, 0.8]], dtype=np.float32)
    pred = knn_scores(x, lab, k=1, folds=2, seed=0)
    folds = fold_ids(np.arange(4), 2, 0)
    for held in folds:
        other = np.setdiff1d(np.arange(4), held)
        z = F.standardize(x)
        for i in held:
            cos = z[other] @ z[i] / (np.linalg.norm(z[other], axis=1) * np.linalg.norm(z[i]))
            np.testing.assert_allclose(pred[i], lab[other[np.argmax(cos)]])


# --------------------------------------------------------------------------- logreg


def test_logreg_drops_exactly_the_flipped_labels_and_relabel_restores_them():
    x, y, weak = _clusters()
    pred = logreg_scores(x, weak.argmax(1), 2, C=1.0, folds=5, seed=0)
    np.testing.assert_allclose(pred.sum(1), 1, atol=1e-9)
    np.testing.assert_array_equal(pred.argmax(1), y)
    flagged = F.most_disagreeing(F.disagreement(pred, weak), len(FLIPPED) / 100)
    np.testing.assert_array_equal(flagged, _flag_mask())
    _, t = F.apply_action("relabel", weak, flagged, pred)
    np.testing.assert_array_equal(t.argmax(1), y)


def test_logreg_is_out_of_fold_and_handles_a_missing_class():
    x, _, weak = _clusters()
    hard = weak.argmax(1)
    base = logreg_scores(x, hard, 2, C=1.0, folds=5, seed=0)
    held = next(f for f in fold_ids(np.arange(100), 5, 0) if 30 in f)
    h2 = hard.copy()
    h2[held] = 1 - h2[held]
    np.testing.assert_allclose(logreg_scores(x, h2, 2, C=1.0, folds=5, seed=0)[held], base[held])
    p3 = logreg_scores(x, hard, 3, C=1.0, folds=5, seed=0)  # class 2 never appears
    assert p3.shape == (100, 3) and (p3[:, 2] == 0).all()
    one = logreg_scores(x, np.zeros(100, dtype=int), 2, C=1.0, folds=5, seed=0)
    np.testing.assert_array_equal(one, np.eye(2)[np.zeros(100, dtype=int)])


# --------------------------------------------------------------------------- out-of-group


def _grouped_clusters() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The two clusters with 100 points in groups of 3 and 4 (a group's points are near-duplicates, as
    the candidates of one question share their passage): (x (100, 6), weak (100, 2), groups (100,))."""
    x, _, weak = _clusters()
    groups = np.repeat(np.arange(29), [3, 4] * 14 + [2])  # 28 groups of 3 and 4, one of 2
    rng = np.random.default_rng(1)
    centre = {g: x[groups == g][0] for g in np.unique(groups)}
    x = np.stack([centre[g] for g in groups]) + rng.normal(0, 1e-3, x.shape)
    return x, weak, groups


@pytest.mark.parametrize("probe", ["knn", "logreg"])
def test_probe_filters_never_score_an_example_with_its_groups_labels(probe):
    """Flipping the weak labels of a whole group changes nothing of that group's own scores: no probe
    that scored a group trained on any of it (by-example folds fail this: a near-duplicate group-mate
    in the training folds votes on the example)."""
    x, weak, groups = _grouped_clusters()

    def score(w, by):
        if probe == "knn":
            return knn_scores(x, w, k=1, folds=5, seed=0, groups=by)
        return logreg_scores(x, w.argmax(1), 2, C=100.0, folds=5, seed=0, groups=by)

    def leaks(by) -> bool:
        """Whether flipping a group's weak labels moves any of that group's own scores."""
        base = score(weak, by)
        for g in (0, 5, 11, 17, 23, 28):
            member = groups == g
            w2 = weak.copy()
            w2[member] = 1 - w2[member]
            if not np.array_equal(score(w2, by)[member], base[member]):
                return True
        return False

    assert not leaks(groups)
    assert leaks(None)  # by-example folds (each example its own group): a group-mate votes


@pytest.mark.parametrize("name", ["knn_filter", "logreg_filter"])
def test_the_filter_hooks_split_folds_by_the_contexts_groups(name, monkeypatch):
    import importlib

    x, y, weak = _clusters()
    groups = np.repeat(np.arange(29), [3, 4] * 14 + [2])
    mod = importlib.import_module(f"w2sgen.methods.{name}")
    seen = []

    def spy(g, folds, seed, method):
        out = fold_ids(g, folds, seed, method)
        seen.append((np.asarray(g), out))
        return out

    monkeypatch.setattr(mod, "fold_ids", spy)
    m = METHODS.get(name)
    m.select(m.config({"k": 10} if name == "knn_filter" else {}), weak, FakeCtx(x, y, groups=groups))
    ((g, folds),) = seen
    np.testing.assert_array_equal(g, groups)  # transfer's groups, in transfer order
    for held in folds:
        rest = np.setdiff1d(np.arange(100), held)
        assert not set(groups[held]) & set(groups[rest])


def test_fewer_groups_than_folds_is_a_user_error():
    x, weak, _ = _grouped_clusters()
    with pytest.raises(W2SError, match=r"'knn_filter'.*5 out-of-fold splits need at least 5 groups.*form 4.*"
                                       r"--set knn_filter.folds=4"):
        knn_scores(x, weak, k=1, folds=5, seed=0, groups=np.arange(100) % 4)


# --------------------------------------------------------------------------- topo


def test_largest_components_on_a_hand_made_graph():
    from scipy.sparse import csr_matrix

    # class 0: {0,1,2} connected, {3} alone; class 1: {4,5} and {6,7}: equal sizes -> the one holding 4
    edges = [(0, 1), (1, 2), (2, 3), (4, 5), (6, 7), (5, 6)]  # 2–3 and 5–6 cross classes or join...
    hard = np.array([0, 0, 0, 1, 1, 1, 0, 0])
    # with these labels: class 0 = {0,1,2,6,7}: components {0,1,2}, {6,7}; class 1 = {3,4,5}: {4,5}, {3}
    a = np.zeros((8, 8))
    for i, j in edges:
        a[i, j] = a[j, i] = 1
    keep = largest_components(csr_matrix(a), hard)
    np.testing.assert_array_equal(keep, [True, True, True, False, True, True, False, False])


def test_topo_drops_exactly_the_flipped_labels_and_relabel_restores_them():
    x, y, weak = _clusters()
    rejected, pred, counts = topo_scores(x, weak.argmax(1), 2, k=10, zeta=0.5)
    np.testing.assert_array_equal(rejected, _flag_mask())
    assert counts["rejected_component"] + counts["rejected_zeta"] == len(FLIPPED)
    _, t = F.apply_action("relabel", weak, rejected, pred)
    np.testing.assert_array_equal(t.argmax(1), y)


def test_zeta_filtering_exact():
    # unit vectors at these angles (degrees); the class-1 point at 7° sits among class 0
    deg = np.array([0, 5, 10, 15, 90, 95, 100, 7])
    hard = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    u = np.stack([np.cos(np.radians(deg)), np.sin(np.radians(deg))], 1)
    member = np.ones(8, dtype=bool)
    # k=3: 7° -> {5, 10, 0}: 0/3 share its label; 0° -> {5, 7, 10}, 5° -> {7, 0, 10}, 10° -> {7, 5, 15},
    # 15° -> {10, 7, 5}: 2/3 each; 90° -> {95, 100, 15}, 95° and 100° -> the other two and 15°: 2/3 each
    np.testing.assert_array_equal(zeta_keep(u, hard, member, 3, 0.5), [1, 1, 1, 1, 1, 1, 1, 0])
    assert not zeta_keep(u, hard, member, 3, 0.7).any()  # 2/3 < 0.7
    np.testing.assert_array_equal(zeta_keep(u, hard, member, 3, 0.0), member)
    out = member.copy()
    out[[5, 6]] = False  # non-members stay out and are not anyone's neighbours: 90° -> {15, 10, 7}
    np.testing.assert_array_equal(zeta_keep(u, hard, out, 3, 0.5), [1, 1, 1, 1, 0, 0, 0, 0])


# --------------------------------------------------------------------------- method hooks with a fake context


class FakeCtx:
    def __init__(self, x: np.ndarray, y: np.ndarray, seed: int = 0, groups: np.ndarray | None = None):
        self.x, self.seed = x, seed
        self.labels = np.concatenate([np.zeros(7, dtype=int), y])  # frame rows 7.. are transfer
        self._groups = np.concatenate([-1 - np.arange(7), np.arange(len(x)) if groups is None else groups])

    def groups(self, rows):
        return self._groups[np.asarray(rows)]

    def frozen_strong(self):
        return "strong"

    def rows(self, split: str) -> np.ndarray:
        assert split == "transfer"
        return np.arange(7, 7 + len(self.x))

    def features(self, side, rows):
        assert side == "strong"
        return self.x[np.asarray(rows) - 7]


@pytest.mark.parametrize("name, args", [("knn_filter", {"k": 10}), ("logreg_filter", {}), ("topo_filter", {})])
def test_select_hook_with_a_fake_context(name, args):
    x, y, weak = _clusters()
    m = METHODS.get(name)
    assert m.kind == "select" and m.select_uses_context
    info: dict = {}
    cfg = m.config({**args, "drop_frac": len(FLIPPED) / 100} if name != "topo_filter" else args)
    keep, t = m.select(cfg, weak, FakeCtx(x, y), info=info)
    np.testing.assert_array_equal(keep, ~_flag_mask())
    np.testing.assert_array_equal(t, weak)
    s = info[name]
    assert s["n_flagged"] == len(FLIPPED) and s["n_kept"] == 100 - len(FLIPPED) and s["action"] == "drop"
    assert "analysis_gt" not in s  # no ground truth behind the firewall: the protocol scores the arrays
    facts, arrays = split_arrays({"select": info})
    student = SimpleNamespace(info=facts, arrays=arrays)
    a = m.analyze_fn(cfg, student, {"transfer": y}, None)
    assert a["weak_acc_flagged"] == 0.0 and a["weak_acc_unflagged"] == 1.0 and a["probe_acc"] == 1.0
    keep, t = m.select(m.config({**cfg.__dict__, "action": "relabel"}), weak, FakeCtx(x, y))
    assert keep.all()
    np.testing.assert_array_equal(t.argmax(1), y)


@pytest.mark.parametrize("name, bad", [("knn_filter", {"k": 0}), ("knn_filter", {"folds": 1}),
                                       ("knn_filter", {"action": "fix"}), ("logreg_filter", {"C": 0}),
                                       ("logreg_filter", {"drop_frac": 1.0}), ("topo_filter", {"zeta": 1.5}),
                                       ("topo_filter", {"k": -1})])
def test_bad_settings_are_user_errors(name, bad):
    with pytest.raises(W2SError, match=name):
        METHODS.get(name).config(bad)


def test_the_filters_need_a_context():
    m = METHODS.get("knn_filter")
    with pytest.raises(ValueError, match="context"):
        m.select(m.config(), np.eye(2, dtype=np.float32)[[0, 1, 0]])


# --------------------------------------------------------------------------- end to end (tiny random encoders)

E2E = [*FILTERS, "knn_filter+logconf"]


@pytest.fixture(scope="module")
def e2e(tmp_path_factory, tiny_encoders):
    from w2sgen.config import RunConfig, SplitConfig

    tmp = tmp_path_factory.mktemp("filters")
    toy = write_toy_task(tmp / "toy.jsonl")
    weak, strong = tiny_encoders
    mp = pytest.MonkeyPatch()
    mp.setenv("W2S_CACHE_DIR", str(tmp / "cache"))
    try:
        cfg = RunConfig(task=str(toy), weak=str(weak), strong=str(strong), out=str(tmp / "out"), seeds=[0],
                        splits=SplitConfig(n_weak_train=40, n_transfer=40, n_val=20, n_test=20, min_val=20, min_test=20),
                        methods=["xent", *E2E], method_args={"logreg_filter": {"action": "relabel"}})
        cfg.probe.epochs = 5
        cfg.probe.lr = 1e-2
        res = w2sgen.run(cfg, cache_dir=tmp / "cache")
    finally:
        mp.undo()
    return res


@pytest.mark.parametrize("name", E2E)
def test_end_to_end_probe(e2e, name):
    row = e2e.table.set_index("method").loc[name]
    assert 0 <= row["w2s_acc"] <= 1 and 0 <= row["w2s_auroc"] <= 1
    st = e2e.runs[0]["stages"]["students"]
    s = st[name]
    assert np.isfinite(s["final_loss"]) and not s["cached"]
    sel = s["train"]["select"]["knn_filter" if name.startswith("knn") else name]
    assert sel["n"] == 40 and sel["n_kept"] == s["n_train"]
    if name.startswith("knn_filter"):
        assert s["n_train"] == 36 and sel["n_flagged"] == 4  # drop_frac 0.1 of 40
    elif name == "logreg_filter":
        assert s["n_train"] == 40 and sel["action"] == "relabel"
    else:
        assert s["n_train"] == 40 - sel["n_flagged"] > 0
    assert s["key"] != st["xent"]["key"]


def test_composition_filters_then_uses_the_loss(e2e):
    st = e2e.runs[0]["stages"]["students"]
    assert st["knn_filter+logconf"]["key"] != st["knn_filter"]["key"]
    assert st["knn_filter+logconf"]["train"]["select"] == st["knn_filter"]["train"]["select"]


# --------------------------------------------------------------------------- real data (cities)


@pytest.mark.integration
def test_filters_on_cities_minilm_to_mpnet(tmp_path, cache_dir):
    """Small real run; prints test accuracy of each filter vs xent (no assertion on them)."""
    from w2sgen.config import RunConfig, SplitConfig

    cfg = RunConfig(task="cities", weak="minilm-l6", strong="mpnet-base", out=str(tmp_path / "out"), seeds=[0],
                    splits=SplitConfig(n_weak_train=300, n_transfer=500, n_val=100, n_test=300),
                    methods=["xent", *FILTERS])
    res = w2sgen.run(cfg, cache_dir=cache_dir)
    t = res.table.set_index("method")
    rec = res.runs[0]["stages"]
    print("\nweak", rec["weak"]["test"]["acc"], "ceiling", rec["ceiling"]["test"]["acc"])
    for name in ["xent", *FILTERS]:
        print(name, "w2s_acc", round(float(t.loc[name, "w2s_acc"]), 4), "n_train", rec["students"][name]["n_train"],
              "gt", rec["students"][name]["analysis"].get(name))
        assert 0 <= t.loc[name, "w2s_acc"] <= 1


def test_filters_chain_each_scoring_only_what_the_previous_kept():
    """knn_filter+logreg_filter: logreg sees only knn's survivors; drop_frac counts over them."""
    from w2sgen.methods.compose import parse
    from w2sgen.protocol import StageInputs, StageKey
    from w2sgen.tasks.splits import Splits

    x, y, weak = _clusters()
    n = len(weak)
    spec = parse("knn_filter+logreg_filter", {"knn_filter": {"k": 10, "drop_frac": 0.25},
                                              "logreg_filter": {"drop_frac": 0.1}})
    transfer = np.arange(7, 7 + n)
    keys = StageInputs(None, StageKey(), {"transfer": [f"t{i}" for i in range(n)]}, np.zeros(7 + n, int),
                       Splits({"transfer": transfer}, 0))
    plan = keys.student_plan(spec, weak, FakeCtx(x, y))
    knn, lr = plan.info["select"]["knn_filter"], plan.info["select"]["logreg_filter"]
    assert (knn["n"], knn["n_flagged"], knn["n_kept"]) == (n, 25, 75)
    assert (lr["n"], lr["n_flagged"], lr["n_kept"]) == (75, round(0.1 * 75), 75 - round(0.1 * 75))
    survivors = knn["arrays"]["positions"][knn["arrays"]["kept"]]
    np.testing.assert_array_equal(lr["arrays"]["positions"], survivors)  # logreg scored knn's survivors only
    kept = lr["arrays"]["positions"][lr["arrays"]["kept"]]
    np.testing.assert_array_equal(plan.rows, transfer[kept])
    assert plan.ids == [f"t{i}" for i in kept] and len(plan.target) == len(kept)


def test_the_loss_resolves_from_the_examples_the_filters_kept():
    """knn_filter+window: window's ``midweak`` radius is the median margin of the kept weak labels,
    not of the whole transfer set."""
    from w2sgen.methods.compose import parse
    from w2sgen.methods.window import midweak
    from w2sgen.protocol import StageInputs, StageKey
    from w2sgen.tasks.splits import Splits

    x, y, hard = _clusters()
    n = len(hard)
    # soft weak labels: confident and graded where right, unsure where flipped (what knn drops)
    c = np.where(hard.argmax(1) == y, np.random.default_rng(0).uniform(0.1, 1.0, n), 0.05)[:, None]
    weak = (0.5 + (hard - 0.5) * c).astype(np.float32)
    spec = parse("knn_filter+window", {"knn_filter": {"k": 10, "drop_frac": 0.25}})
    transfer = np.arange(7, 7 + n)
    keys = StageInputs(None, StageKey(), {"transfer": [f"t{i}" for i in range(n)]}, np.zeros(7 + n, int),
                       Splits({"transfer": transfer}, 0))
    plan = keys.student_plan(spec, weak, FakeCtx(x, y))
    radius = plan.method.loss.cfg.radius
    assert radius == pytest.approx(midweak(plan.target))
    assert radius != pytest.approx(midweak(weak))  # the dropped examples move the median here
