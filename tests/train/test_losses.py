"""Losses against hand-computed values."""

import math

import pytest
import torch

from w2sgen.train.losses import harden, logconf, product, warmup_alpha, xent


def test_xent_matches_hand_computation():
    logits = torch.tensor([[0.0, math.log(3.0)]])  # softmax = [0.25, 0.75]
    target = torch.tensor([[0.2, 0.8]])
    want = -(0.2 * math.log(0.25) + 0.8 * math.log(0.75))
    assert xent(logits, target).item() == pytest.approx(want, rel=1e-6)


def test_xent_is_batch_mean():
    logits = torch.tensor([[0.0, 0.0], [0.0, math.log(3.0)]])
    target = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    want = (math.log(2.0) + -math.log(0.75)) / 2
    assert xent(logits, target).item() == pytest.approx(want, rel=1e-6)


@pytest.mark.parametrize(
    "step,alpha",
    [(0, 0.0), (10, 0.125), (20, 0.25), (39, 0.4875), (40, 0.5), (41, 0.5), (100, 0.5)],
)
def test_warmup_alpha_is_linear_then_flat(step, alpha):
    # 200 steps, warmup over the first 20% = 40 steps, alpha_max 0.5
    assert warmup_alpha(step, 200, 0.5, 0.2) == pytest.approx(alpha)


def test_warmup_has_no_jump():
    values = [warmup_alpha(s, 1000, 0.5, 0.2) for s in range(1001)]
    steps = [b - a for a, b in zip(values, values[1:])]
    assert max(steps) <= 0.5 / 200 + 1e-12
    assert values[0] == 0.0 and values[-1] == 0.5


def test_harden_matches_weak_positive_rate():
    p1 = torch.tensor([0.9, 0.8, 0.6, 0.4, 0.3, 0.2, 0.1, 0.05])
    probs = torch.stack([1 - p1, p1], -1)
    hard = harden(probs, 0.25)  # 2 of 8 positive
    assert hard[:, 1].tolist() == [1, 1, 0, 0, 0, 0, 0, 0]
    hard = harden(probs, 0.5)  # threshold moves: 4 of 8 positive, though only 3 have p > 0.5
    assert hard[:, 1].sum().item() == 4
    assert hard[:, 1].tolist()[:4] == [1, 1, 1, 1]


def test_logconf_equals_hand_mixture():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [0.5, 0.0], [0.0, 3.0]])
    weak = torch.tensor([[0.6, 0.4], [0.3, 0.7], [0.8, 0.2], [0.5, 0.5]])
    # weak positive rate = mean(0.4, 0.7, 0.2, 0.5) = 0.45 -> top 45% of student p1 are hardened to 1
    p1 = torch.softmax(logits, -1)[:, 1]
    tau = torch.quantile(p1, 0.55)
    hard = torch.stack([(p1 <= tau).float(), (p1 > tau).float()], -1)
    alpha = 0.3
    want = xent(logits, (1 - alpha) * weak + alpha * hard)
    assert logconf(logits, weak, alpha).item() == pytest.approx(want.item(), rel=1e-6)
    assert logconf(logits, weak, 0.0).item() == pytest.approx(xent(logits, weak).item(), rel=1e-6)


def test_logconf_target_is_detached():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]], requires_grad=True)
    weak = torch.tensor([[0.6, 0.4], [0.3, 0.7]])
    loss = logconf(logits, weak, 0.5)
    loss.backward()
    # gradient of CE wrt logits is softmax - target (per example, / B): rows sum to zero
    assert torch.allclose(logits.grad.sum(-1), torch.zeros(2), atol=1e-6)


def test_product_target():
    logits = torch.tensor([[0.0, math.log(3.0)]])  # p_strong = [0.25, 0.75]
    weak = torch.tensor([[0.5, 0.5]])
    # t ∝ [0.25*0.5, 0.75*0.5] = [0.25, 0.75]
    want = xent(logits, torch.tensor([[0.25, 0.75]]))
    assert product(logits, weak).item() == pytest.approx(want.item(), rel=1e-6)
    # beta = 0: the target is the weak label
    assert product(logits, weak, beta=0.0).item() == pytest.approx(xent(logits, weak).item(), rel=1e-6)


def test_logconf_window_thresholds_over_the_effective_batch():
    """Under accumulation the threshold and weak rate come from window + micro-batch together."""
    logits = torch.tensor([[0.0, 0.2], [0.0, -0.2]])  # current micro-batch: p1 ≈ 0.55, 0.45
    weak = torch.tensor([[0.5, 0.5], [0.5, 0.5]])
    # earlier micro-batch of the same effective batch: the student is sure they are positive,
    # the weak labels say negative
    win_p = torch.tensor([[0.01, 0.99], [0.02, 0.98]])
    win_w = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    # over all 4: weak rate = 0.25 -> one positive, taken by the window's 0.99: both current rows negative
    got = logconf(logits, weak, 0.5, window=(win_p, win_w))
    hard = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    assert got.item() == pytest.approx(xent(logits, 0.5 * weak + 0.5 * hard).item(), rel=1e-6)
    # the micro-batch alone (rate 0.5) would harden its first row to positive instead
    alone = logconf(logits, weak, 0.5)
    hard_alone = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    assert alone.item() == pytest.approx(xent(logits, 0.5 * weak + 0.5 * hard_alone).item(), rel=1e-6)
    assert got.item() != pytest.approx(alone.item(), rel=1e-3)


@pytest.mark.parametrize("k", [2, 3])
def test_several_heads_at_once_equal_each_head_alone(k):
    """xent and logconf on (A, B, K) logits return each head's own (B, K) loss: logconf's threshold is
    per head (the heads differ here, so one shared threshold would change the losses)."""
    from w2sgen.methods import METHODS

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 32, k, generator=g) * torch.tensor([0.5, 1.0, 2.0, 4.0])[:, None, None]
    weak = torch.softmax(torch.randn(32, k, generator=g), -1)
    for name in ("xent", "logconf"):
        loss = METHODS.get(name).make_loss(METHODS.get(name).config())
        assert loss.heads_batched
        together = loss(logits, weak, 70, 100)
        alone = torch.stack([loss(lg, weak, 70, 100) for lg in logits])
        assert together.shape == (4,)
        torch.testing.assert_close(together, alone, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="window needs the logits of one head"):
        logconf(logits, weak, 0.5, window=(torch.softmax(logits[0], -1), weak))
