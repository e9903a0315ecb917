"""Checkpoints within a long finetune: write one every N optimizer steps, resume from the latest.

Layout: ``<dir>/step-00000012/{state.pt, meta.json}``. A checkpoint is built in a temporary
sibling directory and renamed into place (readers see a whole checkpoint or none); ``meta.json``
records the step and a fingerprint of the run (config, seed, data), and a checkpoint whose
fingerprint differs is ignored. ``state.pt`` holds only tensors and plain containers, and is
read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..store.atomic import atomic_write_json

log = logging.getLogger("w2sgen")
FORMAT = 1
PREFIX = "step-"


def fingerprint(**parts: Any) -> str:
    """sha256 (first 24 hex digits) of the canonical JSON of what makes a run's trajectory."""
    blob = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def rng_state() -> dict[str, Any]:
    """The global RNG states (torch CPU and CUDA, numpy, python) as tensors and plain values."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"key": np_state[0], "state": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
        "python": {"version": py_state[0], "state": list(py_state[1]), "gauss": py_state[2]},
    }


def set_rng_state(s: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    torch.set_rng_state(s["torch"])
    if s["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(s["cuda"])
    n = s["numpy"]
    np.random.set_state((n["key"], n["state"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    p = s["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))


def save_checkpoint(root: Path, step: int, state: dict[str, Any], fp: str, keep: int = 1) -> Path:
    """Write ``state`` as the checkpoint of ``step`` under ``root`` atomically; keep the newest ``keep``."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"{PREFIX}{step:08d}"
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{final.name}."))
    try:
        with (tmp / "state.pt").open("wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        atomic_write_json(tmp / "meta.json", {"format": FORMAT, "step": step, "fingerprint": fp})
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    for old in _checkpoints(root)[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _checkpoints(root: Path) -> list[Path]:
    """Checkpoint directories under ``root``, oldest first (temporary ones excluded)."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith(PREFIX))


def latest_checkpoint(root: Path | None, fp: str) -> Path | None:
    """The newest complete checkpoint under ``root`` made by a run with fingerprint ``fp``, or None."""
    if root is None:
        return None
    for d in reversed(_checkpoints(Path(root))):
        try:
            meta = json.loads((d / "meta.json").read_text())
        except (OSError, ValueError):
            log.warning("checkpoint %s is incomplete; ignoring it", d)
            continue
        if meta.get("format") != FORMAT or meta.get("fingerprint") != fp or not (d / "state.pt").is_file():
            log.warning("checkpoint %s is from another run or format; ignoring it", d)
            continue
        return d
    return None


def load_checkpoint(d: Path) -> dict[str, Any]:
    """The state saved in checkpoint directory ``d``."""
    return torch.load(Path(d) / "state.pt", map_location="cpu", weights_only=True)
