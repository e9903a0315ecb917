"""The losses of issue 5 (kl, reverse_ce, entropy, window, adaptconf) against hand-computed values.

Row [0, log 3] has softmax p = [0.25, 0.75]; row [0, 0] has p = [0.5, 0.5].
"""

import math

import pytest
import torch

from w2sgen.train.losses import adaptconf, entropy, kl, reverse_ce, window, xent

L3 = math.log(3.0)
P = (0.25, 0.75)


def grad_of(fn, logits, *args):
    z = logits.clone().requires_grad_(True)
    fn(z, *args).backward()
    return z.grad


def test_kl_is_student_to_weak():
    logits = torch.tensor([[0.0, L3]])
    weak = torch.tensor([[0.5, 0.5]])
    want = 0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5)
    assert kl(logits, weak).item() == pytest.approx(want, rel=1e-6)
    # zero where the student matches the weak labels, and not the reverse direction's value
    assert kl(torch.tensor([[0.0, 0.0]]), weak).item() == pytest.approx(0.0, abs=1e-7)
    reverse = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    assert kl(logits, weak).item() != pytest.approx(reverse, rel=1e-3)


def test_kl_gradient():
    """∂KL/∂z_j = p_j (log p_j − log w_j − KL)."""
    logits = torch.tensor([[0.0, L3]])
    weak = torch.tensor([[0.2, 0.8]])
    k = 0.25 * math.log(0.25 / 0.2) + 0.75 * math.log(0.75 / 0.8)
    want = [p * (math.log(p) - math.log(w) - k) for p, w in zip(P, (0.2, 0.8))]
    torch.testing.assert_close(grad_of(kl, logits, weak), torch.tensor([want]), rtol=1e-5, atol=1e-6)


def test_reverse_ce_matches_hand_computation():
    logits = torch.tensor([[0.0, L3], [0.0, 0.0]])
    weak = torch.tensor([[0.2, 0.8], [0.5, 0.5]])
    row1 = -(0.25 * math.log(0.2) + 0.75 * math.log(0.8))
    row2 = math.log(2.0)
    assert reverse_ce(logits, weak).item() == pytest.approx((row1 + row2) / 2, rel=1e-6)
    # a hard weak label: log 0 is clamped, so the loss stays finite
    assert math.isfinite(reverse_ce(logits, torch.tensor([[0.0, 1.0], [1.0, 0.0]])).item())


def test_reverse_ce_gradient():
    """∂/∂z_j (−Σ_k p_k log w_k) = −p_j (log w_j − Σ_k p_k log w_k)."""
    logits = torch.tensor([[0.0, L3]])
    weak = torch.tensor([[0.2, 0.8]])
    m = 0.25 * math.log(0.2) + 0.75 * math.log(0.8)
    want = [-p * (math.log(w) - m) for p, w in zip(P, (0.2, 0.8))]
    torch.testing.assert_close(grad_of(reverse_ce, logits, weak), torch.tensor([want]), rtol=1e-5, atol=1e-6)


def test_entropy_value_and_gradient():
    logits = torch.tensor([[0.0, L3]])
    weak = torch.tensor([[0.2, 0.8]])
    h = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    ce = -(0.2 * math.log(0.25) + 0.8 * math.log(0.75))
    assert entropy(logits, weak, 0.4).item() == pytest.approx(0.6 * ce + 0.4 * h, rel=1e-6)
    assert entropy(logits, weak, 0.0).item() == pytest.approx(xent(logits, weak).item(), rel=1e-6)
    # the self-target is not detached: the gradient is (1−α)(p − w) + α ∂H/∂z, ∂H/∂z_j = −p_j (log p_j + H)
    want = [0.6 * (p - w) + 0.4 * (-p * (math.log(p) + h)) for p, w in zip(P, (0.2, 0.8))]
    torch.testing.assert_close(grad_of(entropy, logits, weak, 0.4), torch.tensor([want]), rtol=1e-5, atol=1e-6)
    # the entropy term pushes the student towards its own argmax (class 1)
    g_h = grad_of(entropy, logits, weak, 1.0)
    assert g_h[0, 1] < 0 < g_h[0, 0]


def test_window_trains_only_unsure_examples():
    logits = torch.tensor([[0.0, L3], [0.0, 0.0]])  # max prob 0.75 and 0.5
    weak = torch.tensor([[0.2, 0.8], [0.1, 0.9]])
    ce1 = -(0.2 * math.log(0.25) + 0.8 * math.log(0.75))
    ce2 = math.log(2.0)
    # r = 0.2: 0.75 ≥ 0.7, row 1 is out; the sum is still divided by the batch size
    assert window(logits, weak, 0.2).item() == pytest.approx(ce2 / 2, rel=1e-6)
    assert window(logits, weak, 0.3).item() == pytest.approx((ce1 + ce2) / 2, rel=1e-6)
    assert window(logits, weak, 0.0).item() == 0.0
    # the mask carries no gradient; the excluded row gets none at all
    g = grad_of(window, logits, weak, 0.2)
    torch.testing.assert_close(g, torch.tensor([[0.0, 0.0], [(0.5 - 0.1) / 2, (0.5 - 0.9) / 2]]))


def test_adaptconf_matches_hand_computation():
    # the student says 1 (0.75), the weak label says 0 (0.6): c_s = −log 0.75, c_w = −log 0.25
    logits = torch.tensor([[0.0, L3]])
    weak = torch.tensor([[0.6, 0.4]])
    beta = 1 / (1 + 9)  # exp(c_s/T) / (exp(c_s/T) + exp(c_w/T)) with T = 0.5: 1 / (1 + 3²)
    ce_w = -(0.6 * math.log(0.25) + 0.4 * math.log(0.75))
    want = (1 - beta) * ce_w + beta * -math.log(0.75)
    assert adaptconf(logits, weak, 0.5).item() == pytest.approx(want, rel=1e-6)
    # T = 1: β = 1 / (1 + 3)
    want1 = 0.75 * ce_w + 0.25 * -math.log(0.75)
    assert adaptconf(logits, weak, 1.0).item() == pytest.approx(want1, rel=1e-6)
    # argmaxes agree: β = 1/2
    agree = torch.tensor([[0.3, 0.7]])
    want_a = 0.5 * -(0.3 * math.log(0.25) + 0.7 * math.log(0.75)) + 0.5 * -math.log(0.75)
    assert adaptconf(logits, agree, 0.5).item() == pytest.approx(want_a, rel=1e-6)


def test_adaptconf_gradient_treats_beta_and_self_label_as_constants():
    logits = torch.tensor([[0.0, L3]])
    weak = torch.tensor([[0.6, 0.4]])
    beta = 0.1
    want = [(1 - beta) * (p - w) + beta * (p - h) for p, w, h in zip(P, (0.6, 0.4), (0.0, 1.0))]
    torch.testing.assert_close(grad_of(adaptconf, logits, weak, 0.5), torch.tensor([want]), rtol=1e-5, atol=1e-6)


def test_losses_are_batch_means_and_never_differentiate_the_weak_labels():
    logits = torch.tensor([[0.0, L3], [0.3, -0.2], [1.0, 0.0]])
    weak = torch.tensor([[0.2, 0.8], [0.7, 0.3], [0.45, 0.55]], requires_grad=True)
    for fn, args in ((kl, ()), (reverse_ce, ()), (entropy, (0.3,)), (window, (0.3,)), (adaptconf, (0.5,))):
        whole = fn(logits, weak.detach(), *args).item()
        rows = [fn(logits[i : i + 1], weak.detach()[i : i + 1], *args).item() for i in range(3)]
        assert whole == pytest.approx(sum(rows) / 3, rel=1e-6), fn.__name__
        z = logits.clone().requires_grad_(True)
        fn(z, weak.detach(), *args).backward()
        assert z.grad is not None and torch.isfinite(z.grad).all(), fn.__name__

