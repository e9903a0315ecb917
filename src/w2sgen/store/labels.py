"""Weak-label files: example id -> probability of each class (bring your own supervisor)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import W2SError


def write_labels(path: str | Path, ids: list[str], splits: list[str], probs: np.ndarray) -> None:
    """Write ``id, split, prob`` (binary: P(label=1)) or ``id, split, probs`` (a JSON list per row).

    The format follows the suffix: .csv, .jsonl or .parquet.
    """
    from .atomic import atomic_write_bytes

    path = Path(path)
    frame = pd.DataFrame({"id": ids, "split": splits})
    if probs.shape[1] == 2:
        frame["prob"] = probs[:, 1].astype(float)
    else:
        frame["probs"] = [json.dumps([float(x) for x in row]) for row in probs]
    suffix = path.suffix.lower()
    if suffix == ".csv":
        data = frame.to_csv(index=False).encode()
    elif suffix == ".jsonl":
        data = frame.to_json(orient="records", lines=True).encode()
    elif suffix == ".parquet":
        import io

        buf = io.BytesIO()
        frame.to_parquet(buf, index=False)
        data = buf.getvalue()
    else:
        raise W2SError(f"{path}: unknown label-file format {suffix!r}; use .csv, .jsonl or .parquet")
    atomic_write_bytes(path, data)


def read_labels(path: str | Path, num_classes: int) -> dict[str, np.ndarray]:
    """id -> (K,) probabilities. Rows name their line on error (``FILE:LINE: field 'prob': ...``)."""
    from ..tasks.files import _read_rows

    path = Path(path)
    if path.suffix.lower() not in (".csv", ".jsonl", ".parquet", ".tsv"):
        raise W2SError(f"{path}: weak labels must be .csv, .tsv, .jsonl or .parquet with columns id and prob")
    rows = _read_rows(path)
    if not rows:
        raise W2SError(f"{path}: no rows; expected columns id and prob")
    out: dict[str, np.ndarray] = {}
    for line, rec in rows:
        where = f"{path}:{line}"
        if "id" not in rec or rec["id"] is None:
            raise W2SError(f"{where}: field 'id' is missing; every row needs the example id")
        if "prob" in rec and num_classes == 2:
            try:
                p = float(rec["prob"])
            except (TypeError, ValueError):
                raise W2SError(f"{where}: field 'prob': {rec['prob']!r} is not a number in [0, 1]") from None
            if not 0.0 <= p <= 1.0:
                raise W2SError(f"{where}: field 'prob': {p} is outside [0, 1]")
            vec = np.array([1.0 - p, p], dtype=np.float32)
        elif "probs" in rec:
            raw = rec["probs"]
            try:
                vec = np.asarray(json.loads(raw) if isinstance(raw, str) else raw, dtype=np.float32)
            except (TypeError, ValueError):
                raise W2SError(f"{where}: field 'probs': expected a list of {num_classes} numbers") from None
            if vec.shape != (num_classes,) or not np.all(vec >= 0) or abs(float(vec.sum()) - 1) > 1e-3:
                raise W2SError(f"{where}: field 'probs': expected {num_classes} probabilities summing to 1")
        else:
            raise W2SError(f"{where}: field 'prob' is missing (P(label=1) for binary tasks, or 'probs')")
        key = str(rec["id"])
        if key in out:
            raise W2SError(f"{where}: field 'id': {key!r} appears twice")
        out[key] = vec
    return out
