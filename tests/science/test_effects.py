"""Each method's scientific effect, on a planted task (``planted.py``) through the real protocol.

Every test asserts an effect that must hold, with a margin that held on each seed, and has a twin
that runs the method deliberately broken (``xfail(strict=True)``): the twin proves the test can
fail. The margins were measured on seeds 0 and 1 (see the comments); the tests check both seeds.
"""

from __future__ import annotations

import os
from copy import deepcopy
from pathlib import Path

import numpy as np
import pytest
from science import planted

from w2sgen import aggregate, stats
from w2sgen.methods import METHODS

os.environ.setdefault("W2S_PROGRESS", "0")
pytestmark = pytest.mark.integration

SEEDS = (0, 1)
SMALL = {"weak_train": 50, "transfer": 300, "val": 200, "test": 500}
LINEAR = planted.probe(epochs=40, lr=1e-2)
MLP = planted.probe(epochs=100, head="mlp", lr=1e-2)
"""An MLP head on 5 features and 300 transfer examples: it can fit label noise, late in training."""
FILTERS = {"knn_filter": {"drop_frac": 0.25}, "logreg_filter": {"drop_frac": 0.25}}


def _run(p, methods, cache: Path, seed: int, probe, method_args=None, monkeypatch=None):
    return planted.run(p, methods, cache, seed=seed, probe_cfg=probe, method_args=method_args,
                       monkeypatch=monkeypatch)


def _fixed(rec, p, method: str) -> float:
    """Share of the transfer examples whose weak label is wrong that the student gets right."""
    wrong = p.wrong[p.rows("transfer")]
    return float((planted.transfer_pred(rec, p, method)[wrong] == p.y[p.rows("transfer")][wrong]).mean())


# --------------------------------------------------------------------------- shared runs (module scope)


@pytest.fixture(scope="module")
def flips_linear(tmp_path_factory):
    """25% random, confident flips; a linear student; both probe filters spied on."""
    kept: dict[tuple[str, int], np.ndarray] = {}
    mp = pytest.MonkeyPatch()
    for name in FILTERS:
        m = METHODS.get(name)
        mp.setattr(m, "select_fn", _spy(m.select_fn, name, kept))
    out = {}
    try:
        for seed in SEEDS:
            p = planted.flips(seed)
            kept["seed"] = seed
            out[seed] = (p, _run(p, ["xent", *FILTERS], tmp_path_factory.mktemp(f"fl{seed}"), seed, LINEAR, FILTERS))
    finally:
        mp.undo()
    return out, kept


def _spy(select_fn, name: str, kept: dict):
    def spy(cfg, weak, ctx, *rest):  # rest: the candidates' positions, where the protocol passes them
        res = select_fn(cfg, weak, ctx, *rest)
        kept[(name, kept["seed"])] = np.asarray(res[0], dtype=bool)
        return res

    return spy


@pytest.fixture(scope="module")
def flips_mlp(tmp_path_factory):
    """30% random, confident flips; an MLP student that fits them late in training: xent,
    early_stop and s2s (3 folds; the targets its final student trains on are spied on)."""
    out = {}
    mp = pytest.MonkeyPatch()
    try:
        for seed in SEEDS:
            p = planted.flips(seed, rate=0.3, margin=2.0, noise_dims=4, sizes=SMALL)
            cache = tmp_path_factory.mktemp(f"fm{seed}")
            seen = _spy_s2s(mp)
            rec = _run(p, ["xent", "early_stop", "s2s"], cache, seed, MLP, S2S)
            out[seed] = (p, rec, cache, seen["target"])
    finally:
        mp.undo()
    return out


S2S = {"s2s": {"folds": 3}}


def _spy_s2s(monkeypatch) -> dict:
    """Record the targets s2s's final student trains on (what ``ctx.train_student`` receives)."""
    from w2sgen.methods.context import StudentContext

    seen: dict = {}
    real = StudentContext.train_student

    def spy(self, plan, side=None):
        if plan.method.name == "s2s":
            seen["target"] = np.asarray(plan.target)
        return real(self, plan, side)

    monkeypatch.setattr(StudentContext, "train_student", spy)
    return seen


@pytest.fixture(scope="module")
def stripes(tmp_path_factory):
    """The weak model is wrong in narrow bands of a feature it lacks; an MLP student: xent, logconf."""
    out = {}
    for seed in SEEDS:
        p = planted.systematic(seed, margin=2.0, noise_dims=4, stripes=3.0, sizes=SMALL)
        cache = tmp_path_factory.mktemp(f"st{seed}")
        out[seed] = (p, _run(p, ["xent", "logconf"], cache, seed, MLP), cache)
    return out


@pytest.fixture(scope="module")
def biased(tmp_path_factory):
    """Three weak models, each biased along its own strong feature; the run's weak model is the first."""
    out = {}
    mp = pytest.MonkeyPatch()
    try:
        for seed in SEEDS:
            p = planted.biased_supervisors(seed)
            rec = _run(p, ["xent", "ensemble"], tmp_path_factory.mktemp(f"b{seed}"), seed, LINEAR,
                       {"ensemble": {"models": ["planted-weak1", "planted-weak2"]}}, monkeypatch=mp)
            out[seed] = (p, rec)
    finally:
        mp.undo()
    return out


# --------------------------------------------------------------------------- xent beats the floor


def test_xent_student_beats_the_weak_floor(flips_linear):
    # measured: weak 72.0 / 74.2%, xent 96.5 / 97.7% (seeds 0 / 1)
    runs, _ = flips_linear
    for seed, (_, rec) in runs.items():
        assert planted.test_acc(rec, "xent") >= planted.test_acc(rec, "weak") + 0.10, seed


@pytest.mark.xfail(strict=True, raises=AssertionError, reason="a student trained towards the opposite of its weak labels")
def test_xent_student_beats_the_weak_floor_broken(tmp_path, monkeypatch):
    m = METHODS.get("xent")
    make = m.make_loss
    monkeypatch.setattr(m, "make_loss", lambda cfg: _reversed(make(cfg)))
    p = planted.flips(0)
    rec = _run(p, ["xent"], tmp_path, 0, LINEAR)
    assert planted.test_acc(rec, "xent") >= planted.test_acc(rec, "weak") + 0.10


def _reversed(loss):
    def broken(logits, weak, step, total, window=None):
        return loss(logits, weak.flip(-1), step, total, window)

    return broken


# --------------------------------------------------------------------------- logconf


def test_logconf_beats_xent_when_weak_errors_are_systematic(stripes):
    """The weak model is wrong in narrow bands of a feature it lacks (confident errors); the strong
    features separate the truth. xent fits the bands late in training; logconf's confidence term
    (its own hardened predictions) resists. Measured: xent 88.2 / 85.6%, logconf 94.6 / 92.6%."""
    for seed, (_, rec, _) in stripes.items():
        assert planted.test_acc(rec, "logconf") >= planted.test_acc(rec, "xent") + 0.03, seed


@pytest.mark.xfail(strict=True, raises=AssertionError, reason="logconf with alpha_max = 0 is xent")
def test_logconf_beats_xent_when_weak_errors_are_systematic_broken(stripes):
    p, _, cache = stripes[0]
    rec = _run(p, ["xent", "logconf"], cache, 0, MLP, {"logconf": {"alpha_max": 0.0}})
    assert planted.test_acc(rec, "logconf") >= planted.test_acc(rec, "xent") + 0.03


# --------------------------------------------------------------------------- filters


def _drop_quality(p, keep: np.ndarray) -> tuple[float, float]:
    """(share of the flipped transfer labels dropped, share of the dropped that were flipped)."""
    wrong = p.wrong[p.rows("transfer")]
    dropped = ~keep
    return float((dropped & wrong).sum() / wrong.sum()), float((dropped & wrong).sum() / max(dropped.sum(), 1))


@pytest.mark.parametrize("name", list(FILTERS))
def test_filter_drops_most_flipped_labels(flips_linear, name):
    # measured (drop_frac 0.25 at a 25% flip rate): knn 0.88 / 0.76 of flips dropped, 0.91 / 0.87 of
    # the dropped flipped; logreg 0.90 / 0.85 and 0.94 / 0.98 (seeds 0 / 1)
    runs, kept = flips_linear
    for seed, (p, rec) in runs.items():
        recall, precision = _drop_quality(p, kept[(name, seed)])
        assert recall >= 0.6 and precision >= 0.6, (seed, recall, precision)
        assert rec["students"][name]["n_train"] == int(kept[(name, seed)].sum())


@pytest.mark.xfail(strict=True, raises=AssertionError, reason="a filter whose probe scores at random drops at random")
@pytest.mark.parametrize("name", list(FILTERS))
def test_filter_drops_most_flipped_labels_broken(tmp_path, monkeypatch, name):
    import w2sgen.methods.knn_filter as knn
    import w2sgen.methods.logreg_filter as logreg

    rng = np.random.default_rng(0)

    def random_scores(x, *args, **kw):
        p1 = rng.random(len(x))
        return np.stack([1 - p1, p1], axis=1)

    monkeypatch.setattr(knn if name == "knn_filter" else logreg,
                        "knn_scores" if name == "knn_filter" else "logreg_scores", random_scores)
    kept: dict = {"seed": 0}
    m = METHODS.get(name)
    monkeypatch.setattr(m, "select_fn", _spy(m.select_fn, name, kept))
    p = planted.flips(0)
    _run(p, [name], tmp_path, 0, LINEAR, FILTERS)
    recall, precision = _drop_quality(p, kept[(name, 0)])
    assert recall >= 0.6 and precision >= 0.6


# --------------------------------------------------------------------------- early stopping


def test_early_stopping_stops_before_the_student_fits_the_errors(flips_mlp):
    """xent trained to the end (the same training, not stopped) fits many flipped labels; early
    stopping on agreement with the weak labels on val keeps an earlier checkpoint that has not.
    Measured: kept epochs 12 / 2 of 100; flipped transfer labels the student gets right 0.78 / 0.79
    (early_stop) vs 0.66 / 0.57 (xent); test 90.2 / 85.8% vs 83.8 / 83.0%."""
    for seed, (p, rec, _, _) in flips_mlp.items():
        chosen = rec["students"]["early_stop"]["train"]["early_stop"]["selected"]["epoch"]
        assert chosen <= MLP.epochs // 2, seed
        assert _fixed(rec, p, "early_stop") >= _fixed(rec, p, "xent") + 0.08, seed
        assert planted.test_acc(rec, "early_stop") >= planted.test_acc(rec, "xent") + 0.01, seed


@pytest.mark.xfail(strict=True, raises=AssertionError, reason="early stopping evaluated only after the last epoch cannot stop early")
def test_early_stopping_stops_before_the_student_fits_the_errors_broken(flips_mlp):
    p, _, cache, _ = flips_mlp[0]
    rec = _run(p, ["xent", "early_stop"], cache, 0, MLP, {"early_stop": {"every": MLP.epochs}})
    assert _fixed(rec, p, "early_stop") >= _fixed(rec, p, "xent") + 0.08


# --------------------------------------------------------------------------- ensemble


def test_ensemble_of_independent_supervisors_beats_one(biased):
    """The student imitates its supervisor's bias (xent ≈ weak); three supervisors with independent
    biases average them out. Measured: weak 79.5 / 79.0%, xent 79.8 / 77.2%, ensemble 91.7 / 89.2%."""
    for seed, (_, rec) in biased.items():
        assert planted.test_acc(rec, "ensemble") >= planted.test_acc(rec, "xent") + 0.05, seed


@pytest.mark.xfail(strict=True, raises=AssertionError, reason="an ensemble that keeps only its first supervisor")
def test_ensemble_of_independent_supervisors_beats_one_broken(tmp_path, monkeypatch):
    import w2sgen.methods.ensemble as ensemble

    monkeypatch.setattr(ensemble, "combine", lambda probs, mode="mean": np.asarray(probs[0], dtype=np.float32))
    p = planted.biased_supervisors(0)  # the sizes the real test runs
    rec = _run(p, ["xent", "ensemble"], tmp_path, 0, LINEAR, {"ensemble": {"models": ["planted-weak1", "planted-weak2"]}},
               monkeypatch=monkeypatch)
    assert planted.test_acc(rec, "ensemble") >= planted.test_acc(rec, "xent") + 0.05


# --------------------------------------------------------------------------- s2s


def _corrected(p, target: np.ndarray) -> float:
    """Share of the flipped transfer labels whose relabelled target is the truth (weak labels: 0)."""
    wrong = p.wrong[p.rows("transfer")]
    return float((target.argmax(1)[wrong] == p.y[p.rows("transfer")][wrong]).mean())


def test_out_of_fold_relabelling_corrects_random_flips(flips_mlp):
    """s2s relabels transfer with models that never saw the example: most flipped labels come back
    right, and the student trained on them fits fewer flips than xent. Measured: 0.80 / 0.71 of the
    flips corrected; flipped labels the student gets right 0.80 / 0.63 (s2s) vs 0.66 / 0.57 (xent)."""
    for seed, (p, rec, _, target) in flips_mlp.items():
        assert _corrected(p, target) >= 0.6, seed
        assert _fixed(rec, p, "s2s") >= _fixed(rec, p, "xent") + 0.03, seed


@pytest.mark.xfail(strict=True, raises=AssertionError, reason="s2s with no relabelling round trains on the weak labels")
def test_out_of_fold_relabelling_corrects_random_flips_broken(flips_mlp, monkeypatch):
    p, _, cache, _ = flips_mlp[0]
    seen = _spy_s2s(monkeypatch)
    _run(p, ["s2s"], cache, 0, MLP, {"s2s": {"folds": 3, "iterations": 0}})
    if "target" not in seen:  # a cached student skips the pipeline: the twin would not test s2s
        pytest.fail("the s2s student never trained (the spy saw nothing)")
    assert _corrected(p, seen["target"]) >= 0.6


# --------------------------------------------------------------------------- the small-gap guard


def _zero_gap(tmp_path, seed: int):
    # the floor and the ceiling train on as many examples: the same model, the same data size
    p = planted.same_model(seed, sizes={"weak_train": 300, "transfer": 300, "val": 100, "test": 500})
    rec = _run(p, ["xent"], tmp_path / str(seed), seed, LINEAR)
    return p, rec


def test_small_gap_guard_flags_a_planted_zero_gap_run(tmp_path):
    """Weak and strong are the same model: the ceiling cannot beat the floor. The run is flagged,
    and it stays flagged with no threshold at all (its gap's interval includes 0); its PGR is null.
    Measured gaps: −0.6 [−3.2, +2.0] and +0.6 [−2.3, +3.5] points."""
    for seed in SEEDS:
        p, rec = _zero_gap(tmp_path, seed)
        st = aggregate.finish_run(rec, p.task, p.splits, rec["_stages"])
        assert st["flagged"] and rec["students"]["xent"]["pgr_acc"] is None, seed
        assert st["gap_acc_lo"] <= 0 <= st["gap_acc_hi"], seed
        assert aggregate.finish_run(rec, p.task, p.splits, rec["_stages"], threshold=0.0)["flagged"], seed


@pytest.mark.xfail(strict=True, raises=AssertionError, reason="a guard whose rule never flags")
def test_small_gap_guard_flags_a_planted_zero_gap_run_broken(tmp_path, monkeypatch):
    monkeypatch.setattr(stats, "flag_reason", lambda gap, threshold=stats.GAP_THRESHOLD: None)
    p, rec = _zero_gap(tmp_path, 0)
    assert aggregate.finish_run(rec, p.task, p.splits, rec["_stages"])["flagged"]


def test_small_gap_guard_passes_a_real_gap(biased):
    """A strong model that separates the truth above a biased weak one: gaps 20.5 [17.3, 23.7] and
    21.0 [17.7, 24.3] points, not flagged, PGR kept."""
    for seed, (p, rec) in biased.items():
        st = aggregate.finish_run(rec, p.task, p.splits, rec["_stages"])
        assert not st["flagged"] and st["gap_acc_lo"] > 0.1, seed
        assert rec["students"]["xent"]["pgr_acc"] is not None


@pytest.mark.xfail(strict=True, raises=AssertionError, reason="a guard whose rule flags everything")
def test_small_gap_guard_passes_a_real_gap_broken(biased, monkeypatch):
    monkeypatch.setattr(stats, "flag_reason", lambda gap, threshold=stats.GAP_THRESHOLD: "always")
    p, rec = biased[0]
    copy = {k: deepcopy(v) for k, v in rec.items() if k != "_stages"}  # finish_run edits the record
    assert not aggregate.finish_run(copy, p.task, p.splits, rec["_stages"])["flagged"]


def test_finish_run_warns_of_a_constant_weak_model(biased, caplog):
    """A weak model that answers one class for every test example is named in a warning; the real
    biased weak model of the same run is not."""

    class Constant:
        def probs(self, split, ids):
            return np.tile([0.3, 0.7], (len(ids), 1))  # (N, K): class 1 everywhere

    p, rec = biased[0]
    for stages, warned in ((dict(rec["_stages"], weak=Constant()), True), (rec["_stages"], False)):
        copy = {k: deepcopy(v) for k, v in rec.items() if k != "_stages"}  # finish_run edits the record
        caplog.clear()
        with caplog.at_level("WARNING", logger="w2sgen"):
            aggregate.finish_run(copy, p.task, p.splits, stages)
        assert ("constant supervisor" in caplog.text) is warned, caplog.text
