"""One exception type for every user error, and helpers that make its messages useful."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class W2SError(Exception):
    """A problem with the user's input (a name, a file, a config field), not a bug.

    The CLI prints the message without a traceback and exits with status 2
    (set ``W2S_DEBUG=1`` to see the traceback).
    """


def did_you_mean(name: str, choices: Iterable[str], n: int = 3) -> str:
    """Return `` Did you mean: a, b?`` for the closest names, or a list of all names."""
    choices = sorted(set(choices))
    close = difflib.get_close_matches(name, choices, n=n, cutoff=0.5)
    if close:
        return f" Did you mean: {', '.join(close)}?"
    return f" Known names: {', '.join(choices)}." if choices else ""


def unknown(kind: str, name: str, choices: Iterable[str], hint: str = "") -> W2SError:
    """The error for an unknown registry name (task, model, method, ...)."""
    return W2SError(f"unknown {kind} {name!r}.{did_you_mean(name, choices)}{hint}")


class GroundTruthError(W2SError):
    """A method tried to read ground truth of transfer, val or test (the label firewall refused it)."""
