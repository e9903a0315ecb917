"""Shared fixtures. Tests never touch the network: HF_HUB_OFFLINE=1 is forced here."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("W2S_PROGRESS", "0")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]


def data_root() -> Path:
    return Path(os.environ.get("W2S_DATA_DIR") or REPO.parent / "shared" / "data")


def require_data(name: str) -> Path:
    """``$W2S_DATA_DIR/name``; skip when absent, unless W2S_REQUIRE_DATA=1 (CI), then fail."""
    p = data_root() / name
    if not p.is_dir():
        msg = f"real data {p} is absent (set W2S_DATA_DIR)"
        if os.environ.get("W2S_REQUIRE_DATA") == "1":
            pytest.fail(msg + " and W2S_REQUIRE_DATA=1")
        pytest.skip(msg)
    return p


@pytest.fixture
def cache_dir(tmp_path, monkeypatch) -> Path:
    """A private stage cache for the test (models stay in the shared models directory)."""
    d = tmp_path / "cache"
    monkeypatch.setenv("W2S_CACHE_DIR", str(d))
    return d
