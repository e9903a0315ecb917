import math

import numpy as np
import pytest

from w2sgen.metrics import accuracy, agreement_split, auroc, pgr


def probs(p1):
    p1 = np.asarray(p1, dtype=float)
    return np.stack([1 - p1, p1], 1)


def test_accuracy_and_auroc():
    y = np.array([0, 1, 1, 0])
    p = probs([0.2, 0.9, 0.4, 0.6])
    assert accuracy(y, p) == 0.5
    # positives scored 0.9, 0.4; negatives 0.2, 0.6: pairs won = (0.9>0.2, 0.9>0.6, 0.4>0.2) = 3/4
    assert auroc(y, p) == pytest.approx(0.75)
    assert math.isnan(auroc(np.array([1, 1]), probs([0.2, 0.3])))


def test_pgr_values():
    assert pgr(0.6, 0.7, 0.8) == pytest.approx(0.5)
    assert pgr(0.6, 0.8, 0.8) == pytest.approx(1.0)
    assert pgr(0.6, 0.55, 0.8) == pytest.approx(-0.25)


def test_pgr_zero_gap_is_nan():
    assert math.isnan(pgr(0.7, 0.75, 0.7))


def test_pgr_negative_gap_still_a_ratio():
    # weak beats the ceiling: gap = -0.1; a student at 0.75 "recovers" 0.5 of a negative gap
    assert pgr(0.8, 0.75, 0.7) == pytest.approx(0.5)


def test_agreement_split():
    y = np.array([1, 1, 0, 0])
    weak = probs([0.9, 0.2, 0.1, 0.8])  # right, wrong, right, wrong
    student = probs([0.8, 0.1, 0.7, 0.3])  # agrees, agrees, disagrees, disagrees
    a = agreement_split(y, weak, student)
    assert a["agreement"] == 0.5
    assert a["agreement_weak_right"] == 0.5
    assert a["agreement_weak_wrong"] == 0.5
    student2 = probs([0.8, 0.1, 0.2, 0.9])  # agrees everywhere
    assert agreement_split(y, weak, student2)["agreement_weak_wrong"] == 1.0
