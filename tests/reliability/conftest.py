"""Fixtures of the reliability tests: a private, watched cache directory."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.append(str(Path(__file__).parent))  # for `import fuzzing` (tests/conftest.py stays `conftest`)


@pytest.fixture
def empty_cache(tmp_path, monkeypatch) -> Path:
    """W2S_CACHE_DIR points at an empty directory that fuzzed input must leave empty."""
    d = tmp_path / "w2s-cache"
    d.mkdir()
    monkeypatch.setenv("W2S_CACHE_DIR", str(d))
    monkeypatch.setenv("W2S_MODELS_DIR", str(tmp_path / "models"))
    return d


def pytest_terminal_summary(terminalreporter):
    from fuzzing import SURVIVED

    if SURVIVED:
        terminalreporter.write_sep("-", "fuzzed cases survived per entry point")
        for name, n in sorted(SURVIVED.items()):
            terminalreporter.write_line(f"{name:<40} {n}")
