"""Run records on disk: ``OUT/<run>/run.json`` + ``predictions/<stage>.parquet`` (their tables: ``w2sgen.aggregate``)."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import W2SError
from .atomic import atomic_write_json


def safe_name(name: str) -> str:
    """A path component that cannot escape its directory: [A-Za-z0-9._-] only, starting with a letter
    or digit (no ``.``/``..``, no hidden or option-like names), at most 80 characters. A longer name
    keeps its first 71 characters and gains a hash of the whole name, so long paths stay distinct."""
    s = re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).lstrip("._-").rstrip("._") or "x"
    if len(s) > 80:
        import hashlib

        s = f"{s[:71]}-{hashlib.sha256(str(name).encode('utf-8', 'surrogatepass')).hexdigest()[:8]}"
    return s


def run_dir_name(task: str, weak: str, strong: str, mode: str, seed: int) -> str:
    return "__".join(safe_name(x) for x in (task, weak, strong, mode, f"seed{seed}"))


def write_run(out: Path, name: str, record: dict[str, Any], stage_dirs: dict[str, Path],
              frames: dict[str, pd.DataFrame] | None = None, tables: dict[str, pd.DataFrame] | None = None) -> Path:
    """Write one run's folder atomically: built in a hidden sibling and renamed into place.

    ``stage_dirs`` maps a stage to its predictions file (copied); ``frames`` maps a stage to
    predictions held in memory; ``tables`` maps a relative path (``generations/weak.parquet``) to
    another table of the run (a generation run's answers). A failed write (full disk, unwritable directory) raises a
    W2SError naming the folder and leaves neither a partial folder nor a temporary file.
    """
    import os
    import tempfile
    import uuid

    from ..safety import writing

    out = Path(out)
    d = out / name
    with writing("results directory", out):
        out.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=out, prefix=f".{name}."))
        try:
            pred = tmp / "predictions"
            pred.mkdir()
            for stage, src in stage_dirs.items():
                shutil.copyfile(src, pred / f"{safe_name(stage)}.parquet")
            for stage, frame in (frames or {}).items():
                frame.to_parquet(pred / f"{safe_name(stage)}.parquet", index=False)
            for rel, frame in (tables or {}).items():
                parts = [safe_name(p) for p in Path(rel).parts]  # never outside the run folder
                (tmp.joinpath(*parts[:-1])).mkdir(parents=True, exist_ok=True)
                frame.to_parquet(tmp.joinpath(*parts), index=False)
            atomic_write_json(tmp / "run.json", _clean(record))  # a complete folder has run.json
            old = None
            if d.exists():  # a rerun replaces the previous folder
                old = out / f".{name}.old-{uuid.uuid4().hex[:8]}"
                os.replace(d, old)
            os.replace(tmp, d)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return d


def _clean(x: Any) -> Any:
    """JSON-safe: NaN/inf become null."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    return x


def read_runs(root: str | Path) -> list[dict[str, Any]]:
    root = Path(root)
    if not root.is_dir():
        raise W2SError(f"{root}: no such results directory")
    runs = []
    for f in sorted(root.glob("*/run.json")):
        if f.parent.name.startswith("."):  # a run folder being written or replaced
            continue
        try:
            rec = json.loads(f.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise W2SError(f"{f}: unreadable run record ({e}); delete that run folder and rerun it") from None
        rec["_dir"] = str(f.parent)
        runs.append(rec)
    return runs
