"""Probe heads: a grid trained as one batched model equals each head trained alone; choosing a head on val."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from w2sgen.config import ProbeConfig
from w2sgen.errors import W2SError
from w2sgen.methods import METHODS
from w2sgen.train.probe import fit_probe, predict, predict_heads, resolve_solver, train_heads
from w2sgen.train.select import Reference, choose

GRID = [1e-3, 1e-2, 1e-1]


def toy(n: int = 240, d: int = 12, seed: int = 0, pos: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Features (n, d) and labels (n,): class 1 (a fraction ``pos``) is shifted along the first feature."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < pos).astype(np.int64)
    x = rng.normal(size=(n, d)).astype(np.float32)
    x[:, 0] += 1.5 * y
    return x, y


def onehot(y: np.ndarray) -> np.ndarray:
    return np.eye(2, dtype=np.float32)[y]


def loss_of(name: str):
    m = METHODS.get(name)
    return m.make_loss(m.config())


@pytest.mark.parametrize(("method", "solver", "head"), [("xent", "lbfgs", "linear"), ("logconf", "adam", "linear"),
                                                        ("xent", "adam", "mlp")])
def test_a_batched_head_equals_the_same_head_trained_alone(method, solver, head):
    """Adam: the same arithmetic per head. L-BFGS: each head stops at its own tolerance, and float
    rounding in a wider matmul can move that stop by an iteration, so both solve to a tolerance at
    which the (unique, strictly convex) optimum pins the predictions within 1e-5."""
    x, y = toy()
    loss = loss_of(method)
    grid = [1e-2, 1e-1, 1.0] if solver == "lbfgs" else GRID
    kw = dict(head=head, hidden=16, epochs=4, batch_size=32, tol=1e-7, max_iter=500)
    together = train_heads(x, onehot(y), loss, ProbeConfig(weight_decay=grid, **kw), seed=3)
    assert together.solver == solver
    probs = predict_heads(together.heads, x)  # (C, N, K)
    for c, wd in enumerate(grid):
        alone = train_heads(x, onehot(y), loss, ProbeConfig(weight_decay=[wd], **kw), seed=3)
        np.testing.assert_allclose(predict(alone.head(0), x), probs[c], atol=1e-5)
        np.testing.assert_allclose(predict(together.head(c), x), probs[c], atol=1e-6)  # the stored format
    assert not np.allclose(probs[0], probs[-1], atol=1e-3)  # the weight decays matter


def test_logconf_threshold_is_per_head():
    """logconf hardens each head's own predictions at its batch's quantile: the grid's heads reach it
    in one call with their logits (C, B, K) (heads_batched), and a loss without that flag is called
    with one head's (B, K) logits at a time (vmapped). Either way each head gets its own threshold."""
    seen = []
    lc = loss_of("logconf")

    def spy(logits, target, step, total, window=None):
        seen.append(logits.shape)
        return lc(logits, target, step, total)

    x, y = toy(n=64)
    cfg = ProbeConfig(weight_decay=GRID, epochs=1, batch_size=32)
    train_heads(x, onehot(y), spy, cfg, seed=0)
    assert seen and set(seen) == {torch.Size([32, 2])}  # (B, K) of one head (vmapped over the heads)
    seen.clear()
    spy.heads_batched = True
    train_heads(x, onehot(y), spy, cfg, seed=0)
    assert seen and set(seen) == {torch.Size([3, 32, 2])}  # every head's logits in one call
    # heads that differ (strengths 1e-3 … 10, several epochs): one threshold shared by the heads would
    # harden them differently than each head's own does
    x, y = toy(n=240)
    wide = ProbeConfig(weight_decay=[1e-3, 1.0, 10.0], epochs=6, batch_size=32, lr=3e-2)
    batched = predict_heads(train_heads(x, onehot(y), spy, wide, seed=0).heads, x)
    spy.heads_batched = False
    looped = predict_heads(train_heads(x, onehot(y), spy, wide, seed=0).heads, x)
    assert not np.allclose(batched[0], batched[-1], atol=1e-2)  # the heads do differ
    np.testing.assert_allclose(batched, looped, atol=1e-6)

    def shared(logits, target, step, total, window=None):  # a broken batched logconf: one threshold for all
        from w2sgen.train.losses import warmup_alpha, xent

        probs = torch.softmax(logits.detach(), -1)  # (C, B, K)
        tau = torch.quantile(probs[..., 1].flatten(), 1 - target[:, 1].mean())  # over every head at once
        hard = torch.nn.functional.one_hot((probs[..., 1] > tau).long(), 2).float()
        alpha = warmup_alpha(step, total, 0.5, 0.2)  # logconf's defaults, as ``lc``
        return xent(logits, (1 - alpha) * target + alpha * hard)

    shared.heads_batched = True
    broken = predict_heads(train_heads(x, onehot(y), shared, wide, seed=0).heads, x)
    assert not np.allclose(broken, looped, atol=1e-4)  # the comparison above would see a shared threshold


def test_lbfgs_reaches_the_regularised_optimum():
    """Binary softmax with λ/2·‖W‖² on both columns is logistic regression with C = 2 / (λ N) on
    w = w1 − w0 (sklearn minimises Σ loss + ‖w‖² / (2C))."""
    from sklearn.linear_model import LogisticRegression

    x, y = toy(n=300)
    res = train_heads(x, onehot(y), loss_of("xent"), ProbeConfig(weight_decay=[0.05], tol=1e-7, max_iter=500), 0)
    assert res.solver == "lbfgs" and res.converged == [True]
    z = (x - x.mean(0)) / x.std(0, ddof=1)
    ref = LogisticRegression(C=2 / (0.05 * len(x)), tol=1e-10, max_iter=10_000).fit(z, y)
    w = res.heads.weight[0].detach().numpy()
    np.testing.assert_allclose(w[:, 1] - w[:, 0], ref.coef_[0], atol=1e-4)


@pytest.mark.parametrize(("n", "d", "k", "standardize"), [(60, 100, 2, True), (300, 12, 3, True), (300, 12, 2, False)])
def test_preconditioned_lbfgs_reaches_the_optimum_with_few_examples_three_classes_or_raw_features(n, d, k, standardize):
    """The preconditioner (features' second moment, eigendecomposed) changes the path, not the optimum:
    N < D (directions the features do not span), K = 3 (sklearn's multinomial problem, C = 1 / (λ N)),
    and unstandardised features far from 0 all land on sklearn's solution."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(1)
    y = rng.integers(0, k, n)
    x = rng.normal(size=(n, d)).astype(np.float32)
    x[:, 0] += 1.5 * y
    if not standardize:
        x += 20.0
    lam = 0.05
    cfg = ProbeConfig(weight_decay=[lam], tol=1e-6, max_iter=2000, standardize=standardize)
    res = train_heads(x, np.eye(k, dtype=np.float32)[y], loss_of("xent"), cfg, 0)
    assert res.solver == "lbfgs" and res.converged == [True]
    z = (x - x.mean(0)) / x.std(0, ddof=1) if standardize else x.astype(np.float64)
    ref = LogisticRegression(C=(2 if k == 2 else 1) / (lam * n), tol=1e-12, max_iter=100_000).fit(z, y)
    w = res.heads.weight[0].detach().numpy()  # (D, K)
    ours = w[:, 1] - w[:, 0] if k == 2 else w.T
    np.testing.assert_allclose(ours, ref.coef_[0] if k == 2 else ref.coef_, atol=2e-3)
    held = rng.normal(size=(50, d)).astype(np.float32) + (20.0 if not standardize else 0.0)
    zh = (held - x.mean(0)) / x.std(0, ddof=1) if standardize else held
    np.testing.assert_allclose(predict(res.head(0), held), ref.predict_proba(zh), atol=2e-3)  # off the data too


def test_a_high_variance_column_does_not_hide_the_signal():
    """Unstandardised features with one column of huge variance: the small real directions of the
    features' second moment stay in the preconditioner (only float64 rounding is cut), so the head
    still finds the signal in another column, as sklearn does."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 400)
    x = rng.normal(size=(400, 16))
    x[:, 0] *= 2000.0
    x[:, 1] += 1.5 * y
    x = x.astype(np.float32)
    lam = 1e-3
    res = train_heads(x, onehot(y), loss_of("xent"), ProbeConfig(weight_decay=[lam], standardize=False,
                                                                 tol=1e-6, max_iter=3000), 0)
    ref = LogisticRegression(C=2 / (lam * 400), tol=1e-12, max_iter=100_000).fit(x.astype(np.float64), y)
    yh = rng.integers(0, 2, 400)
    xh = rng.normal(size=(400, 16))
    xh[:, 0] *= 2000.0
    xh[:, 1] += 1.5 * yh
    ours = (predict(res.head(0), xh.astype(np.float32)).argmax(1) == yh).mean()
    theirs = (ref.predict(xh) == yh).mean()
    assert theirs > 0.7 and ours >= theirs - 0.02


def test_lbfgs_refuses_a_zero_weight_decay():
    x, y = toy(n=40)
    with pytest.raises(W2SError, match="'probe.weight_decay'.*holds 0.*1e-4, or probe.solver=adam"):
        train_heads(x, onehot(y), loss_of("xent"), ProbeConfig(weight_decay=[0.0, 0.1]), 0)
    assert train_heads(x, onehot(y), loss_of("xent"), ProbeConfig(weight_decay=[0.0], solver="adam", epochs=1), 0)
    from w2sgen.config import RunConfig

    with pytest.raises(W2SError, match="'probe.weight_decay'.*holds 0"):  # refused before anything runs
        RunConfig(task="cities", weak="a", strong="b", probe=ProbeConfig(weight_decay=[0.0, 0.1])).validate()
    RunConfig(task="cities", weak="a", strong="b", probe=ProbeConfig(weight_decay=[0.0], solver="adam")).validate()


def test_same_seed_same_heads_and_the_seed_changes_adam():
    x, y = toy()
    for method in ("xent", "logconf"):
        a = predict_heads(train_heads(x, onehot(y), loss_of(method), ProbeConfig(epochs=3), seed=1).heads, x)
        b = predict_heads(train_heads(x, onehot(y), loss_of(method), ProbeConfig(epochs=3), seed=1).heads, x)
        np.testing.assert_array_equal(a, b)
    c = predict_heads(train_heads(x, onehot(y), loss_of("logconf"), ProbeConfig(epochs=3), seed=2).heads, x)
    assert not np.array_equal(a, c)  # adam's data order comes from the seed


def test_solver_choice():
    cfg = ProbeConfig()
    assert resolve_solver(cfg, loss_of("xent")) == "lbfgs"
    assert resolve_solver(cfg, loss_of("logconf")) == "adam"
    assert resolve_solver(cfg, loss_of("xent"), minibatch=True) == "adam"  # epochs to watch (early_stop)
    assert resolve_solver(ProbeConfig(head="mlp"), loss_of("xent")) == "adam"
    with pytest.raises(W2SError, match="probe.solver.*lbfgs needs a loss"):
        resolve_solver(ProbeConfig(solver="lbfgs"), loss_of("logconf"))


def test_nonfinite_loss_in_full_batch_training():
    x, y = toy(n=40)
    bad = onehot(y)
    bad[3] = np.nan
    with pytest.raises(W2SError, match=r"stage ceiling \(m\): loss is nan at the start.*skip_nonfinite"):
        train_heads(x, bad, loss_of("xent"), ProbeConfig(), 0, desc="ceiling (m)")
    with pytest.raises(W2SError, match="every head's loss is non-finite"):
        train_heads(x, bad, loss_of("xent"), ProbeConfig(skip_nonfinite=True), 0)


def test_choose_takes_the_best_score_and_the_larger_weight_decay_on_ties():
    assert choose([0.8, 0.9, 0.7], GRID, "agreement") == 1
    assert choose([0.9, 0.9, 0.7], GRID, "agreement") == 1  # tie: more regularised
    assert choose([0.3, 0.2, 0.2], GRID, "xent") == 2
    assert choose([float("nan"), 0.5, 0.6], GRID, "agreement") == 2
    assert choose([0.9, 0.5, 0.6], GRID, "agreement", usable=[False, True, True]) == 2


def test_the_reference_decides_the_head():
    """The same grid, scored against the val ground truth or against weak labels that are the truth
    flipped: ground truth keeps the best head, the weak labels the worst (agreement = 1 − accuracy)."""
    x, y = toy(n=400, seed=1)
    xv, yv = toy(n=200, seed=2)
    cfg = ProbeConfig(weight_decay=[1e-3, 1e4])  # a fitted head and one that knows only the prior
    gt = fit_probe(x, onehot(y), loss_of("xent"), cfg, 0, xv, Reference(onehot(yv), "ground truth"))
    weak = fit_probe(x, onehot(y), loss_of("xent"), cfg, 0, xv, Reference(onehot(1 - yv), "weak labels"))
    acc = [float((p.argmax(1) == yv).mean()) for p in predict_heads(gt.result.heads, xv)]
    assert acc[0] > acc[1] + 0.1
    assert gt.chosen == 0 and weak.chosen == 1
    assert gt.info["grid"]["val_scores"] == pytest.approx(acc)
    assert weak.info["grid"]["val_scores"] == pytest.approx([1 - a for a in acc])
    assert weak.info["grid"] == {"weight_decay": [1e-3, 1e4], "select": "agreement", "reference": "weak labels",
                                 "val_scores": weak.info["grid"]["val_scores"], "chosen": 1,
                                 "chosen_weight_decay": 1e4}


def test_a_grid_needs_a_val_split():
    x, y = toy(n=40)
    with pytest.raises(W2SError, match="val split is empty"):
        fit_probe(x, onehot(y), loss_of("xent"), ProbeConfig(), 0, x[:0], Reference(onehot(y[:0]), "ground truth"))
    one = fit_probe(x, onehot(y), loss_of("xent"), ProbeConfig(weight_decay=[0.01]), 0)  # one head: nothing to choose
    assert one.chosen == 0 and one.info["grid"]["val_scores"] is None
