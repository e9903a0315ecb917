"""What the student did with the weak answers (student_effects): agreement by the task's checker."""

from __future__ import annotations

import numpy as np
import pytest

from w2sgen.generation.checkers import exact_match, numeric_match
from w2sgen.generation.scoring import student_effects


def test_agreement_uses_the_tasks_checker():
    weak = ["131", "The answer is 7", "12", "x"]
    student = ["The answer is 131", "7.", "13", "y"]
    weak_right = np.array([True, False, True, False])
    student_right = np.array([True, False, False, False])
    num = student_effects(weak_right, student_right, weak, student, numeric_match)
    assert num["agreement"] == pytest.approx(0.5)  # 131 = 131, 7 = 7; 12 ≠ 13; no number in x or y
    assert num["agreement_weak_right"] == pytest.approx(0.5) and num["agreement_weak_wrong"] == pytest.approx(0.5)
    assert num["fixed"] == 0 and num["broken"] == pytest.approx(0.25) and num["fixed_of_wrong"] == 0
    ex = student_effects(weak_right, student_right, weak, student, exact_match)
    assert ex["agreement"] == 0  # as text, no pair is the same answer
    two = student_effects(np.array([True, False]), np.array([True, True]), ["France", "the Nile"], ["france.", "Nile"],
                          exact_match)
    assert two["agreement"] == 1 and two["fixed"] == pytest.approx(0.5)  # case, punctuation, articles
