"""bootstrap, s2s and ensemble: core computations on hand-made inputs, out-of-fold checks with a fake
context, and end-to-end probe runs on tiny random encoders and the toy task."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from conftest import build_tiny_encoder, toy_config, write_toy_task

import w2sgen
from w2sgen.config import RunConfig, SplitConfig
from w2sgen.errors import W2SError
from w2sgen.methods import METHODS
from w2sgen.methods.bootstrap import accuracy, ladder
from w2sgen.methods.compose import parse
from w2sgen.methods.context import StudentContext
from w2sgen.methods.ensemble import combine, confidence_weights
from w2sgen.methods.s2s import flipped
from w2sgen.protocol import StudentPlan
from w2sgen.store.cache import StageCache

# --------------------------------------------------------------------------- registry and settings


def test_registered_with_kinds_and_defaults():
    kinds = {"bootstrap": "labels", "s2s": "train", "ensemble": "labels"}
    for name, kind in kinds.items():
        m = METHODS.get(name)
        assert m.kind == kind and m.description and "\n" not in m.description
    assert METHODS.get("bootstrap").config().models == ["smollm2-135m"]
    assert METHODS.get("bootstrap").config({"models": []}).models == []
    c = METHODS.get("s2s").config()
    assert (c.iterations, c.folds) == (1, 5)
    e = METHODS.get("ensemble").config()
    assert (e.models, e.seeds, e.combine) == ([], [], "mean")
    assert parse("bootstrap+logconf").name == "bootstrap+logconf"
    assert parse("ensemble+logconf+s2s").name == "ensemble+logconf+s2s"
    with pytest.raises(W2SError, match="both labels"):
        parse("bootstrap+ensemble")


@pytest.mark.parametrize("name, bad, field", [
    ("bootstrap", {"folds": 1}, "folds"), ("bootstrap", {"rung_loss": "nope"}, "rung_loss"),
    ("bootstrap", {"rung_loss": "confidence_filter"}, "rung_loss"), ("s2s", {"iterations": -1}, "iterations"),
    ("s2s", {"folds": 1}, "folds"), ("ensemble", {"combine": "vote"}, "combine"),
    ("ensemble", {"seeds": [1, 1]}, "repeat"),
])
def test_bad_settings_are_user_errors(name, bad, field):
    with pytest.raises(W2SError, match=f"{name}.*{field}"):
        METHODS.get(name).config(bad)


# --------------------------------------------------------------------------- core computations


def test_ladder_order_and_accuracy():
    assert ladder("w", [], "s") == ["w", "s"]
    assert ladder("w", ["m1", "m2"], "s") == ["w", "m1", "m2", "s"]
    assert accuracy(np.array([1, 0, 1]), np.array([[0.2, 0.8], [0.3, 0.7], [0.4, 0.6]])) == pytest.approx(2 / 3)


def test_flipped_counts_changed_hard_labels():
    a = np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8], [0.7, 0.3]])
    b = np.array([[0.6, 0.4], [0.6, 0.4], [0.1, 0.9], [0.2, 0.8]])
    assert flipped(a, b) == 0.5
    assert flipped(a, a) == 0.0


def test_ensemble_of_identical_supervisors_is_that_supervisor_exactly():
    rng = np.random.default_rng(0)
    for K in (2, 3):
        p = rng.dirichlet(np.ones(K), size=17).astype(np.float32)  # (N, K)
        p[0] = 1.0 / K  # a uniform row: all confidence weights 0 -> the mean
        p[1] = np.eye(K, dtype=np.float32)[0]  # a one-hot row (0 log 0 = 0)
        for J in (1, 2, 3, 5):
            for mode in ("mean", "confidence"):
                out = combine(np.stack([p] * J), mode)
                assert out.dtype == np.float32
                np.testing.assert_array_equal(out, p)


def test_confidence_weighting_by_hand():
    a, b = [0.9, 0.1], [0.2, 0.8]
    ca = 1 - (-(0.9 * math.log(0.9) + 0.1 * math.log(0.1))) / math.log(2)  # 0.531004
    cb = 1 - (-(0.2 * math.log(0.2) + 0.8 * math.log(0.8))) / math.log(2)  # 0.278072
    wa, wb = ca / (ca + cb), cb / (ca + cb)
    probs = np.array([[a, [1.0, 0.0], [0.5, 0.5]],
                      [b, [0.5, 0.5], [0.5, 0.5]]], dtype=np.float32)  # (J=2, N=3, K=2)
    w = confidence_weights(probs)
    np.testing.assert_allclose(w[:, 0], [wa, wb], rtol=1e-6)
    np.testing.assert_allclose(w[:, 1], [1.0, 0.0])  # a certain supervisor and a uniform one
    np.testing.assert_allclose(w[:, 2], [0.5, 0.5])  # both uniform: the mean
    out = combine(probs, "confidence")
    np.testing.assert_allclose(out[0], [wa * 0.9 + wb * 0.2, wa * 0.1 + wb * 0.8], rtol=1e-6)
    np.testing.assert_allclose(out[0], [0.659417, 0.340583], atol=1e-6)
    np.testing.assert_allclose(out[1:], [[1.0, 0.0], [0.5, 0.5]])
    np.testing.assert_allclose(combine(probs, "mean")[0], [0.55, 0.45], rtol=1e-6)


# --------------------------------------------------------------------------- s2s with a fake context


class _SeenStage:
    """A fake model: p_1 = 1 on the transfer rows of the groups it trained on, 0 on the others; 1/2 on
    val and test. ``group``: row -> group (default: each row its own group)."""

    def __init__(self, seen: set[int], group=lambda r: r):
        self.seen_groups = {group(r) for r in seen}
        self.group = group

    def probs(self, split, ids):
        if split != "transfer":
            return np.full((len(ids), 2), 0.5, dtype=np.float32)
        p1 = np.array([float(self.group(int(i[1:])) in self.seen_groups) for i in ids], dtype=np.float32)
        return np.stack([1 - p1, p1], axis=1)


class _FakeCtx:
    """What s2s and StudentContext.oof_eval touch; records every model trained."""

    oof_eval = StudentContext.oof_eval
    folds = StudentContext.folds
    num_classes = 2

    def __init__(self, n: int = 11, group_sizes: list[int] | None = None):
        self.seed = 0
        self.strong = "strong"
        self._rows = {"val": np.arange(0, 4), "test": np.arange(4, 8), "transfer": np.arange(8, 8 + n)}
        self.labels = np.zeros(8 + n, dtype=np.int64)
        self._groups = np.arange(8 + n)  # each row its own group, or transfer in groups of group_sizes
        if group_sizes is not None:
            assert sum(group_sizes) == n
            self._groups[8:] = 8 + np.repeat(np.arange(len(group_sizes)), group_sizes)
        self.trained: list[tuple[str, dict, np.ndarray]] = []
        self.students: list[StudentPlan] = []

    def rows(self, split):
        return self._rows[split]

    def groups(self, rows):
        return self._groups[np.asarray(rows)]

    def ids(self, split):
        return [f"r{r}" for r in self._rows[split]]

    def train(self, stage, side, rows, target, loss_fn, inputs=None, seed=None, extra_info=None, ref=None):
        assert side == "strong" and len(rows) == len(target)
        self.trained.append((stage, dict(inputs or {}), np.asarray(rows)))
        return _SeenStage({int(r) for r in rows}, lambda r: int(self._groups[r]))

    def train_student(self, plan, side=None):
        self.students.append(plan)
        return "the student"


def _plan(rows: np.ndarray) -> StudentPlan:
    spec = parse("s2s")
    target = np.tile(np.array([[0.0, 1.0]], dtype=np.float32), (len(rows), 1))  # weak: all class 1
    return StudentPlan(spec, spec, [f"r{r}" for r in rows], rows, target, loss_fn="loss", info={"n_train": len(rows)})


def test_s2s_zero_iterations_is_the_plain_student():
    ctx = _FakeCtx()
    plan = _plan(ctx.rows("transfer"))
    m = METHODS.get("s2s")
    assert m.train_fn(m.config({"iterations": 0}), ctx, plan) == "the student"
    assert ctx.students == [plan] and ctx.trained == []


def test_s2s_relabels_out_of_fold():
    ctx = _FakeCtx()
    rows = np.delete(ctx.rows("transfer"), [2, 5])  # a filtered plan: 9 of the 11 transfer rows
    plan = _plan(rows)
    m = METHODS.get("s2s")
    assert m.train_fn(m.config({"iterations": 2, "folds": 3}), ctx, plan) == "the student"
    relabel = [t for t in ctx.trained if t[1]["role"] == "relabel"]
    fresh = [t for t in ctx.trained if t[1]["role"] == "student"]
    assert len(relabel) == 6 and len(fresh) == 1  # 3 folds per round; the last round's student is the plan's
    for r in range(2):
        trained = [t[2] for t in relabel[3 * r:3 * r + 3]]
        held = [np.setdiff1d(rows, t) for t in trained]
        assert sorted(np.concatenate(held).tolist()) == rows.tolist()  # the held-out folds partition the rows
        for t, h in zip(trained, held):
            assert not set(t.tolist()) & set(h.tolist())
    (student,) = ctx.students
    # every label comes from a model that did not train on it: the fake predicts p_1 = 0 there
    np.testing.assert_array_equal(student.target[:, 1], 0.0)
    assert student.rows is rows and student.inputs == plan.inputs and student.loss_fn == "loss"
    rounds = student.info["s2s"]
    assert [r["iteration"] for r in rounds] == [1, 2] and student.info["n_train"] == 9
    assert rounds[0]["flipped_vs_weak"] == 1.0 and rounds[1]["flipped_vs_previous"] == 0.0
    assert "student_test" in rounds[0] and "student_test" not in rounds[1]  # predictions, scored by the protocol
    assert plan.target[:, 1].tolist() == [1.0] * 9  # the plan itself is not modified


GROUPS = [3, 4, 3, 4, 4, 3, 3, 4, 3, 4]  # 35 transfer rows in groups of 3 and 4


def test_oof_eval_never_labels_a_group_it_trained_on():
    """The fake fold models predict p_1 = 1 exactly on the groups they trained on: every out-of-fold
    label is 0 iff no fold model labelled a group it trained on (by-example folds fail this)."""
    ctx = _FakeCtx(n=35, group_sizes=GROUPS)
    rows = ctx.rows("transfer")
    target = np.tile(np.array([[0.0, 1.0]], dtype=np.float32), (len(rows), 1))
    oof, ev = ctx.oof_eval("s2s", "strong", rows, target, "loss", 3)
    np.testing.assert_array_equal(oof[:, 1], 0.0)
    assert len(ctx.trained) == 3 and ev["test"].shape == (4, 2)
    held = [np.setdiff1d(rows, t[2]) for t in ctx.trained]
    assert sorted(np.concatenate(held).tolist()) == rows.tolist()
    assert max(map(len, held)) - min(map(len, held)) <= max(GROUPS)  # roughly balanced folds
    for t, h in zip(ctx.trained, held):
        assert not set(ctx.groups(t[2]).tolist()) & set(ctx.groups(h).tolist())
    with pytest.raises(W2SError, match=r"'s2s'.*at least 11 groups.*35 transfer examples form 10"):
        ctx.oof_eval("s2s", "strong", rows, target, "loss", 11)


def test_s2s_relabels_out_of_group():
    ctx = _FakeCtx(n=35, group_sizes=GROUPS)
    plan = _plan(ctx.rows("transfer"))
    m = METHODS.get("s2s")
    m.train_fn(m.config({"iterations": 2, "folds": 4}), ctx, plan)
    relabel = [t for t in ctx.trained if t[1]["role"] == "relabel"]
    assert len(relabel) == 8
    for _, _, trained in relabel:
        labelled = np.setdiff1d(plan.rows, trained)
        assert not set(ctx.groups(trained).tolist()) & set(ctx.groups(labelled).tolist())
    (student,) = ctx.students
    np.testing.assert_array_equal(student.target[:, 1], 0.0)  # no label from a model that saw the group


# --------------------------------------------------------------------------- end to end (tiny random encoders)


_config = toy_config


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_encoders):
    """Two probe runs sharing one cache: (1) the degenerate settings (no rung, no iteration) next to
    xent, (2) a three-rung ladder, two s2s rounds and a two-model, two-seed ensemble."""
    tmp = tmp_path_factory.mktemp("ladder")
    toy = write_toy_task(tmp / "toy.jsonl")
    weak, strong = tiny_encoders
    mid = build_tiny_encoder(tmp / "mid", seed=2)
    mp = pytest.MonkeyPatch()
    mp.setenv("W2S_CACHE_DIR", str(tmp / "cache"))
    try:
        plain = w2sgen.run(_config(toy, weak, strong, tmp / "out1", methods=["xent", "bootstrap", "s2s", "ensemble"],
                                   method_args={"bootstrap": {"models": []}, "s2s": {"iterations": 0},
                                                "ensemble": {"seeds": [1]}}),
                           cache_dir=tmp / "cache")
        full = w2sgen.run(_config(toy, weak, strong, tmp / "out2",
                                  methods=["bootstrap", "bootstrap+logconf", "s2s", "ensemble"],
                                  method_args={"bootstrap": {"models": [str(mid)], "folds": 2},
                                               "s2s": {"iterations": 2, "folds": 2},
                                               "ensemble": {"models": [str(mid)], "seeds": [1],
                                                            "combine": "confidence"}}),
                          cache_dir=tmp / "cache")
    finally:
        mp.undo()
    return {"plain": plain.runs[0], "full": full.runs[0], "cache": StageCache(tmp / "cache"),
            "weak": str(weak), "strong": str(strong), "mid": str(mid)}


def _student_probs(runs, rec, name) -> pd.DataFrame:
    key = rec["stages"]["students"][name]["key"]
    return pd.read_parquet(runs["cache"].path("student", key) / "predictions.parquet")


def test_bootstrap_without_rungs_is_plain_w2s(runs):
    rec = runs["plain"]
    st = rec["stages"]["students"]
    assert st["bootstrap"]["key"] != st["xent"]["key"]
    a, b = _student_probs(runs, rec, "bootstrap"), _student_probs(runs, rec, "xent")
    assert a[["id", "split"]].equals(b[["id", "split"]])
    np.testing.assert_allclose(a[["prob_0", "prob_1"]].to_numpy(), b[["prob_0", "prob_1"]].to_numpy(), atol=1e-6)
    tr = st["bootstrap"]["train"]
    assert tr["ladder_models"] == [runs["weak"], runs["strong"]]
    assert len(tr["ladder"]) == 1 and tr["ladder"][0]["model"] == runs["weak"]
    an = st["bootstrap"]["analysis"]["bootstrap"]["ladder"]  # ground truth: the protocol's analysis
    assert an[0]["test_acc"] == pytest.approx(rec["stages"]["weak"]["test"]["acc"])


def test_bootstrap_ladder_rungs(runs):
    rec = runs["full"]
    st = rec["stages"]["students"]
    for name in ("bootstrap", "bootstrap+logconf"):
        tr = st[name]["train"]
        assert tr["ladder_models"] == [runs["weak"], runs["mid"], runs["strong"]]
        assert [r["rung"] for r in tr["ladder"]] == [0, 1]
        assert [r["model"] for r in tr["ladder"]] == [runs["weak"], runs["mid"]]
        assert not any("acc" in k for r in tr["ladder"] for k in r)  # no ground truth in the method's record
        an = st[name]["analysis"]
        assert [r["rung"] for r in an["bootstrap"]["ladder"]] == [0, 1]
        assert all(0 <= r["test_acc"] <= 1 and 0 <= r["transfer_acc"] <= 1 for r in an["bootstrap"]["ladder"])
        assert an["supervisor"]["test"]["acc"] == pytest.approx(an["bootstrap"]["ladder"][-1]["test_acc"])
        assert st[name]["n_train"] == 40 and np.isfinite(st[name]["final_loss"])
    assert st["bootstrap"]["key"] != st["bootstrap+logconf"]["key"]
    # the rung's two fold models are cached stages, shared by both students
    assert len(list((runs["cache"].root / "stages" / "bootstrap").iterdir())) == 2


def test_s2s_zero_iterations_end_to_end_is_the_plain_student(runs):
    rec = runs["plain"]
    a, b = _student_probs(runs, rec, "s2s"), _student_probs(runs, rec, "xent")
    np.testing.assert_allclose(a[["prob_0", "prob_1"]].to_numpy(), b[["prob_0", "prob_1"]].to_numpy(), atol=1e-6)


def test_s2s_rounds_end_to_end(runs):
    st = runs["full"]["stages"]["students"]["s2s"]
    rounds = st["train"]["s2s"]
    assert [r["iteration"] for r in rounds] == [1, 2]
    for r in rounds:
        assert 0 <= r["flipped_vs_weak"] <= 1 and 0 <= r["flipped_vs_previous"] <= 1
    an = st["analysis"]["s2s"]["rounds"]
    assert [r["iteration"] for r in an] == [1, 2]
    assert all(0 <= r["relabellers_test_acc"] <= 1 and 0 <= r["label_acc"] <= 1 for r in an)
    assert 0 <= an[0]["test_acc"] <= 1 and an[1]["test_acc"] is None  # round 2's student is the student
    assert rounds[0]["flipped_vs_previous"] == rounds[0]["flipped_vs_weak"]
    assert st["n_train"] == 40 and 0 <= st["test"]["acc"] <= 1
    # 2 rounds x 2 folds + round 1's student (when the relabels differ; equal labels share a stage)
    assert 3 <= len(list((runs["cache"].root / "stages" / "s2s").iterdir())) <= 5


def test_ensemble_end_to_end(runs):
    rec = runs["plain"]
    ens = rec["stages"]["students"]["ensemble"]["train"]["ensemble"]
    assert ens["combine"] == "mean"
    assert [(s["model"], s["seed"]) for s in ens["supervisors"]] == [(runs["weak"], 0), (runs["weak"], 1)]
    an = rec["stages"]["students"]["ensemble"]["analysis"]
    assert an["ensemble"]["supervisors"][0]["test_acc"] == pytest.approx(rec["stages"]["weak"]["test"]["acc"])
    assert an["ensemble"]["test_acc"] == pytest.approx(an["supervisor"]["test"]["acc"])
    # the second seed's floor is a cached floor stage next to the run's own
    assert len(list((runs["cache"].root / "stages" / "floor").iterdir())) >= 2
    full = runs["full"]["stages"]["students"]["ensemble"]["train"]["ensemble"]
    assert full["combine"] == "confidence"
    assert [(s["model"], s["seed"]) for s in full["supervisors"]] == [
        (runs["weak"], 0), (runs["weak"], 1), (runs["mid"], 0), (runs["mid"], 1)]
    assert full["supervisors"][:2] == ens["supervisors"]  # the same floors, from the cache


@pytest.mark.integration
def test_bootstrap_default_ladder_on_packaged_models(tmp_path, cache_dir):
    """The default rung on the packaged CPU ladder: minilm-l6 → smollm2-135m → mpnet-base."""
    toy = write_toy_task(tmp_path / "toy.jsonl", n=48)
    cfg = RunConfig(task=str(toy), weak="minilm-l6", strong="mpnet-base", out=str(tmp_path / "out"), seeds=[0],
                    splits=SplitConfig(n_weak_train=12, n_transfer=12, n_val=8, n_test=16, min_val=8, min_test=16),
                    methods=["bootstrap+logconf"], method_args={"bootstrap": {"folds": 2}})
    cfg.probe.epochs = 5
    rec = w2sgen.run(cfg, cache_dir=cache_dir).runs[0]
    tr = rec["stages"]["students"]["bootstrap+logconf"]["train"]
    assert tr["ladder_models"] == ["minilm-l6", "smollm2-135m", "mpnet-base"]
    assert [r["model"] for r in tr["ladder"]] == ["minilm-l6", "smollm2-135m"]
    assert 0 <= rec["stages"]["students"]["bootstrap+logconf"]["test"]["acc"] <= 1


def test_bootstrap_resolves_a_prepared_rung_loss_from_each_rungs_labels():
    """``rung_loss=window`` (radius from the labels' confidence) is prepared per rung, on the labels the
    rung trains on, and its resolved settings go in the fold stages' keys."""
    from types import SimpleNamespace

    from w2sgen.methods.bootstrap import _supervise

    class Ctx(_FakeCtx):
        weak = SimpleNamespace(model=SimpleNamespace(name="weak"))
        cfg = SimpleNamespace(method_args={"window": {"radius": "midweak"}})

        def __init__(self):
            super().__init__(n=12)
            self.strong = SimpleNamespace(model=SimpleNamespace(name="strong"))

        def side(self, model):
            return "strong"

        def weak_probs(self, split):
            n = len(self._rows[split])
            p1 = np.linspace(0.55, 0.95, n, dtype=np.float32)
            return np.stack([1 - p1, p1], axis=1)

        def probs_stage(self, stage, probs, info):
            return info

    m = METHODS.get("bootstrap")
    info = _supervise(m.config({"models": ["mid"], "folds": 2, "rung_loss": "window"}), Ctx())
    assert [r["rung"] for r in info["ladder"]] == [0, 1]
    # the fake context's fold models train with the window radius resolved from rung 0's labels
    ctx_settings = Ctx()
    _supervise(m.config({"models": ["mid"], "folds": 2, "rung_loss": "window"}), ctx_settings)
    radii = {t[1]["rung_loss_settings"]["radius"] for t in ctx_settings.trained}
    assert len(radii) == 1 and isinstance(next(iter(radii)), float)
