"""Shared pieces of the fuzz tests: settings, value strategies and the "only W2SError" check."""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from w2sgen.errors import W2SError

FUZZ = settings(
    max_examples=int(os.environ.get("W2S_FUZZ_EXAMPLES", "200")),
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.data_too_large, HealthCheck.filter_too_much],
    print_blob=True,
)
"""At least 200 cases per entry point, the same ones every run (derandomized)."""

SURVIVED: dict[str, int] = {}
"""Cases each entry point survived in this session (printed at the end of the session)."""

NAMES = ["text", "label", "group", "id", "prob", "probs", "split", "sentence", "Text", "", " text",
         "label ", "ﬁle", "a,b", "x\ty", "日本"]
TEXTS = st.one_of(st.sampled_from(["", " ", "good", "bad", "true", "false", "yes", "1", "0", "2", "-1",
                                   "0.5", "1.0", "nan", "inf", "pos", "négatif", "\x00", "a\nb", '"q"',
                                   "1e309", "０", "٣", "True", "None", "null"]),
                  st.text(max_size=12))
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-3, 5), st.integers(), st.floats(),
                    st.floats(allow_nan=False, min_value=-2, max_value=2), TEXTS)
JSONS = st.recursive(SCALARS, lambda c: st.one_of(st.lists(c, max_size=3),
                                                  st.dictionaries(st.sampled_from(NAMES), c, max_size=3)),
                     max_leaves=6)


def user_error_only(entry: str, fn: Callable[[], Any]) -> Any:
    """Call ``fn``; a W2SError is a fine answer to bad input, anything else fails the test."""
    try:
        out = fn()
    except W2SError as e:
        assert str(e).strip(), "a W2SError needs a message"
        out = e
    SURVIVED[entry] = SURVIVED.get(entry, 0) + 1
    if os.environ.get("W2S_FUZZ_TRACE"):  # see what the cases reach: W2S_FUZZ_TRACE=/tmp/trace.txt
        with open(os.environ["W2S_FUZZ_TRACE"], "a") as f:
            f.write(f"{entry}\t{type(out).__name__}\t{str(out)[:70]!r}\n")
    return out


def assert_empty(cache: Path) -> None:
    """Nothing may be written to the cache while input is checked."""
    left = [str(p) for p in cache.rglob("*")] if cache.exists() else []
    assert not left, f"written to the cache: {left[:5]}"


def mutate(data: bytes, seed: int, n: int) -> bytes:
    """``n`` random byte edits (delete, insert, replace, duplicate a span, truncate)."""
    rng = random.Random(seed)
    b = bytearray(data)
    for _ in range(n):
        op = rng.randrange(5)
        i = rng.randrange(len(b) + 1)
        if op == 0 and b:
            del b[i : i + rng.randint(1, 4)]
        elif op == 1:
            b[i:i] = bytes([rng.choice(b'",\t\n{}[]:\\0123456789abc\x00\xff\xc3')])
        elif op == 2 and b and i < len(b):
            b[i] = rng.randrange(256)
        elif op == 3 and b:
            j = rng.randrange(len(b))
            b[i:i] = b[j : j + rng.randint(1, 20)]
        else:
            del b[i:]
    return bytes(b)
