"""Helpers shared by the dataset tasks: reading release files with precise errors, and the
deterministic choices that turn multiple-choice records into binary examples."""

from __future__ import annotations

import csv
import gzip
import json
import random
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ..errors import W2SError
from .base import find_file

Records = dict[str, list[dict[str, Any]]]


def exists(path: Path) -> Path:
    """``path``, or an error naming it (a release folder with a file missing)."""
    if not path.is_file():
        raise W2SError(f"{path}: no such file; the dataset's release folder should have it next to "
                       f"{', '.join(sorted(q.name for q in path.parent.glob('*'))[:8]) or 'nothing'}")
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """One JSON object per line (``.gz`` accepted); errors name ``FILE:LINE``."""
    exists(path)
    opener = gzip.open if path.suffix == ".gz" else open
    from .files import iter_jsonl

    with opener(path, "rt", encoding="utf-8") as f:  # type: ignore[operator]
        return [dict(rec, _where=f"{path}:{n}") for n, rec in iter_jsonl(f, path)]


def read_json(path: Path) -> Any:
    """A whole JSON document; a syntax error names ``FILE:LINE``."""
    try:
        return json.loads(exists(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise W2SError(f"{path}:{e.lineno}: malformed JSON ({e.msg})") from None


def read_table(path: Path, delimiter: str = "\t", header: bool = True,
               names: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Rows of a CSV/TSV file as dicts (``names`` for files without a header); each row
    carries ``_where`` = ``FILE:LINE`` (header = line 1)."""
    with exists(path).open(encoding="utf-8", newline="") as f:
        reader = csv.reader(f, delimiter=delimiter, quoting=csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL)
        rows = list(reader)
    start = 1
    if header:
        if not rows:
            raise W2SError(f"{path}: empty file; expected a header line")
        names, rows, start = rows[0], rows[1:], 2
    assert names is not None
    out = []
    for n, row in enumerate(rows, start=start):
        if not row:
            continue
        if len(row) < len(names):
            raise W2SError(f"{path}:{n}: expected {len(names)} columns ({', '.join(names)}), got {len(row)}")
        out.append(dict(zip(names, row, strict=False), _where=f"{path}:{n}"))
    return out


def read_lines(path: Path) -> list[str]:
    """Lines of a text file, without their newline (a last line without one is kept)."""
    return exists(path).read_text(encoding="utf-8").splitlines()


def require(rec: dict[str, Any], fields: Iterable[str], where: str | None = None) -> None:
    """Fail with ``FILE:LINE: field 'x' is missing`` when ``rec`` lacks one of ``fields``."""
    for f in fields:
        if f not in rec or rec[f] is None:
            loc = where or rec.get("_where", "record")
            raise W2SError(f"{loc}: field {f!r} is missing; the file is not in the expected format")


def pick(root: Path, candidates: list[str], task: str, what: str) -> Path:
    """:func:`find_file` under a shorter name."""
    return find_file(root, candidates, task, what)


def optional(root: Path, candidates: list[str]) -> Path | None:
    """The first of ``candidates`` that exists under ``root``, else None."""
    for c in candidates:
        if (root / c).is_file():
            return root / c
    return None


def coin(key: str) -> bool:
    """A fair coin seeded by ``key`` (the same on every machine and for every run seed)."""
    return random.Random(key).random() < 0.5


def one_candidate(key: str, choices: Sequence[str], correct: int) -> tuple[str, int]:
    """Multiple choice → binary as in the paper: the correct choice with p = 0.5 (label 1), else one
    of the wrong choices at random (label 0), seeded by ``key``."""
    rng = random.Random(key)
    if rng.random() < 0.5:
        return choices[correct], 1
    wrong = [c for k, c in enumerate(choices) if k != correct]
    return rng.choice(wrong), 0


def with_labels(rows: list[dict[str, Any]], labels_path: Path, field: str = "label") -> list[dict[str, Any]]:
    """Attach the line-aligned labels of a ``*-labels.lst`` file to the rows of its jsonl file."""
    labels = [x.strip() for x in read_lines(labels_path) if x.strip()]
    if len(labels) != len(rows):
        raise W2SError(f"{labels_path}: {len(labels)} labels for {len(rows)} records in the data file; "
                       "use the labels file that belongs to it")
    return [dict(r, **{field: y}) for r, y in zip(rows, labels, strict=True)]


def norm(text: str) -> str:
    """Collapse runs of whitespace."""
    return " ".join(str(text).split())
