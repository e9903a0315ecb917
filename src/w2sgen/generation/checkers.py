"""Checkers: whether a written answer is right, given the gold answer (pure functions of two strings).

    exact   : normalise(output) == normalise(gold), where normalise lowercases, drops punctuation,
              the articles a/an/the and extra whitespace (SQuAD's answer normalisation)
    numeric : the last number in the output equals the last number in the gold answer
              (thousands separators dropped; equal within 1e-6)

A task may also name its own function ``(output, gold) -> bool`` (``GenTaskSpec.checker``).
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable

from ..errors import W2SError

Checker = Callable[[str, str], bool]

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")


def normalise(text: str) -> str:
    """Lowercase, punctuation removed, articles (a, an, the) removed, whitespace collapsed."""
    text = str(text).lower().translate(_PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(output: str, gold: str) -> bool:
    """normalise(output) == normalise(gold)."""
    return normalise(output) == normalise(gold)


def last_number(text: str) -> float | None:
    """The last number written in ``text`` (``1,000`` -> 1000.0, ``-3.5`` -> -3.5); None if there is none."""
    found = _NUMBER.findall(str(text))
    for raw in reversed(found):
        try:
            return float(raw.replace(",", ""))
        except ValueError:  # a lone "," group such as "1,,"
            continue
    return None


def numeric_match(output: str, gold: str) -> bool:
    """|last_number(output) − last_number(gold)| ≤ 1e-6 (False when either has no number)."""
    a, b = last_number(output), last_number(gold)
    return a is not None and b is not None and abs(a - b) <= 1e-6


CHECKERS: dict[str, Checker] = {"exact": exact_match, "numeric": numeric_match}
"""The named checkers (``gen.checker``)."""


def resolve_checker(checker: str | Checker) -> tuple[str, Checker]:
    """(name, function) of a checker name or function (a function's name is its ``__name__``)."""
    if callable(checker):
        return getattr(checker, "__name__", "custom"), checker
    if checker not in CHECKERS:
        raise W2SError(f"config field 'gen.checker': {checker!r} is not a checker; use one of {sorted(CHECKERS)}")
    return checker, CHECKERS[checker]
