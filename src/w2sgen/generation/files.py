"""Generation tasks from data files: a .jsonl, .csv, .tsv or .parquet file with ``prompt`` and ``answer``
columns (and optionally ``group`` and ``id``) is a generation task (``--task FILE``); errors name
``FILE:LINE`` and the field, like classification files."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import W2SError
from ..tasks.base import COLUMNS
from .tasks import LABEL_NAMES, GenTaskData

PROMPT, ANSWER = "prompt", "answer"


def columns(path: str | Path) -> set[str]:
    """The column names of a data file (its header, first record or parquet schema); empty when unreadable
    (the classification loader then reports the problem)."""
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            return set(pq.read_schema(path).names)
        with path.open(encoding="utf-8") as f:
            if suffix == ".jsonl":
                for line in f:
                    if line.strip():
                        rec = json.loads(line)
                        return set(rec) if isinstance(rec, dict) else set()
                return set()
            header = next(csv.reader(f, delimiter="\t" if suffix == ".tsv" else ","), [])
            return {h.strip() for h in header}
    except Exception:  # noqa: BLE001 - unreadable (OSError, bad JSON/CSV, pyarrow's errors): the loader reports it
        return set()


def is_generation_file(path: str | Path) -> bool:
    """Whether a data file holds a generation task: it has ``prompt`` and ``answer`` columns."""
    return {PROMPT, ANSWER} <= columns(path)


def one_line_answer(v: Any, where: str) -> str:
    """A row's answer as the one line a model must write (stripped): a list or mapping (it would become
    the text "['a', 'b']") and an answer over several lines (decoding stops at a newline, so no output
    could match it) are refused, naming ``where`` (FILE:LINE) and the fix."""
    if isinstance(v, (list, tuple, dict, set, np.ndarray)):
        kind = "list" if isinstance(v, np.ndarray) else type(v).__name__  # parquet's list columns: arrays
        raise W2SError(f"{where}: field {ANSWER!r}: a {kind} ({_short(v)}) is not one answer; give "
                       "the answer as a single string")
    text = str(v).strip()
    if "\n" in text or "\r" in text:
        raise W2SError(f"{where}: field {ANSWER!r}: {_short(text)} spans several lines, but models write answers "
                       "on one line (decoding stops at a newline), so it could never be right; put the answer on "
                       "one line")
    return text


def _short(v: Any, n: int = 60) -> str:
    r = repr(v.tolist() if isinstance(v, np.ndarray) else v)
    return r if len(r) <= n else r[: n - 3] + "..."


def gen_file_task(path: str | Path, group_col: str | None = None, id_col: str | None = "id") -> GenTaskData:
    """A generation task made of one data file (scored by normalised exact match unless gen.checker says)."""
    from ..tasks.files import _read_rows

    path = Path(path)
    rows = _read_rows(path)
    if not rows:
        raise W2SError(f"{path}: no rows; the file needs records with {PROMPT!r} and {ANSWER!r}")
    first = set(rows[0][1])
    if group_col is None and "group" in first:
        group_col = "group"
    if group_col is not None and group_col not in first:
        head = 1 if path.suffix.lower() in (".csv", ".tsv") else rows[0][0]
        raise W2SError(f"{path}:{head}: field {group_col!r}: missing column given as the group column")
    out = []
    for line, rec in rows:
        where = f"{path}:{line}"
        vals = {}
        for col in (PROMPT, ANSWER):
            v = rec.get(col)
            if v is None or (isinstance(v, float) and v != v) or not str(v).strip():
                raise W2SError(f"{where}: field {col!r}: expected non-empty text, got {v!r}; every row needs it")
            vals[col] = str(v) if col == PROMPT else one_line_answer(v, where)
        ex_id = str(rec[id_col]) if id_col and rec.get(id_col) is not None else f"{path.stem}:train:{line}"
        group = str(rec[group_col]) if group_col and rec.get(group_col) is not None else ex_id
        out.append({"id": ex_id, "text": vals[PROMPT], "label": 1, "group": group, "pool": "train",
                    "answer": vals[ANSWER]})
    frame = pd.DataFrame(out, columns=[*COLUMNS, "answer"])
    if frame["id"].duplicated().any():
        dup = frame.loc[frame["id"].duplicated(), "id"].iloc[0]
        raise W2SError(f"{path}: id {dup!r} occurs twice in column {id_col!r}; ids must be unique")
    return GenTaskData(path.stem, frame, 2, list(LABEL_NAMES))
