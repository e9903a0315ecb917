"""Checkers: normalised exact match and numeric match, as pure functions of (output, gold)."""

from __future__ import annotations

import pytest

from w2sgen.errors import W2SError
from w2sgen.generation.checkers import (
    exact_match,
    last_number,
    normalise,
    numeric_match,
    resolve_checker,
)


def test_normalise_drops_case_punctuation_articles_and_spaces():
    assert normalise("  The  United-States. ") == "unitedstates"
    assert normalise("An apple, a day!") == "apple day"
    assert normalise("theatre") == "theatre"  # an article only as a whole word


@pytest.mark.parametrize("output, gold, ok", [
    ("France", "france", True), ("the Netherlands.", "The Netherlands", True), ("France.\n", "France", True),
    ("Frances", "France", False), ("", "France", False), ("United Kingdom", "United States", False),
])
def test_exact_match(output, gold, ok):
    assert exact_match(output, gold) is ok


@pytest.mark.parametrize("text, value", [
    ("12", 12.0), ("it is -3 then 1,024", 1024.0), ("3.5 apples", 3.5), ("#### 72", 72.0), ("no number", None),
    ("x = -0.25.", -0.25),
])
def test_last_number(text, value):
    assert last_number(text) == value


@pytest.mark.parametrize("output, gold, ok", [
    ("The answer is 131", "131", True), ("131.0", "131", True), ("1,000", "1000", True), ("-3", "-3", True),
    ("3", "-3", False), ("13 then 131", "131", True), ("131 then 13", "131", False), ("none", "4", False),
    ("So 18 - 6 = 12. #### 12", "He has 18 - 6 = 12 apples. #### 12", True),
])
def test_numeric_match_reads_the_last_number(output, gold, ok):
    assert numeric_match(output, gold) is ok


def test_resolve_checker_names_functions_and_refuses_unknown():
    assert resolve_checker("exact")[1] is exact_match

    def mine(o: str, g: str) -> bool:
        return o == g

    assert resolve_checker(mine) == ("mine", mine)
    with pytest.raises(W2SError, match="gen.checker.*'exact', 'numeric'"):
        resolve_checker("fuzzy")
