"""Tasks from local data files (.jsonl, .csv, .tsv, .parquet) and task YAMLs.

Errors name ``FILE:LINE`` (lines counted from 1; for CSV/TSV the header is line 1) and the field.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import W2SError
from .base import COLUMNS, TaskData

DATA_SUFFIXES = (".jsonl", ".csv", ".tsv", ".parquet")
_TRUE = {"true", "yes", "pos", "positive"}
_FALSE = {"false", "no", "neg", "negative"}


def is_data_file(name: str) -> bool:
    return Path(name).suffix.lower() in DATA_SUFFIXES


def iter_jsonl(lines: Iterable[str], path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line; a bad line raises ``FILE:LINE: ...``."""
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise W2SError(f"{path}:{n}: malformed JSON ({e.msg}); each line must be one JSON object") from None
        if not isinstance(rec, dict):
            raise W2SError(f"{path}:{n}: expected a JSON object per line, got {type(rec).__name__}")
        yield n, rec


def _read_rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, record) for every row of the file."""
    suffix = path.suffix.lower()
    if not path.is_file():
        raise W2SError(f"{path}: no such file")
    if suffix == ".parquet":
        try:
            frame = pd.read_parquet(path)
        except Exception as e:
            raise W2SError(f"{path}: not a readable parquet file ({type(e).__name__}); re-export it") from None
        return [(i + 1, rec) for i, rec in enumerate(frame.to_dict("records"))]
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        line = path.read_bytes()[: e.start].count(b"\n") + 1
        raise W2SError(f"{path}:{line}: not UTF-8 text; save the file as UTF-8") from None
    except OSError as e:
        raise W2SError(f"{path}: cannot read ({e.strerror})") from None
    rows: list[tuple[int, dict[str, Any]]] = []
    if suffix == ".jsonl":
        return list(iter_jsonl(text.splitlines(), path))
    delim = "\t" if suffix == ".tsv" else ","
    reader = csv.reader(text.splitlines(keepends=True), delimiter=delim)
    try:
        header = next(reader)
    except StopIteration:
        return []
    except csv.Error as e:
        raise W2SError(f"{path}:1: malformed header ({e})") from None
    header = [h.strip() for h in header]
    while True:
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            raise W2SError(f"{path}:{reader.line_num}: malformed row ({e})") from None
        if not values or all(not v.strip() for v in values):
            continue
        if len(values) != len(header):
            raise W2SError(
                f"{path}:{reader.line_num}: {len(values)} fields, but the header has {len(header)} "
                f"({', '.join(header)}); quote fields that contain the delimiter"
            )
        rows.append((reader.line_num, dict(zip(header, values, strict=True))))
    return rows


def parse_label(value: Any, num_classes: int, label_names: list[str] | None, where: str) -> int:
    """An integer class in [0, num_classes) from ints, integral floats, bools or label names."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, str):
        v = value.strip()
        if label_names and v in label_names:
            return label_names.index(v)
        if num_classes == 2 and v.lower() in _TRUE | _FALSE:
            return int(v.lower() in _TRUE)
        try:
            value = float(v)
        except ValueError:
            raise W2SError(
                f"{where}: field 'label': {v!r} is not a class; use integers 0..{num_classes - 1}"
                + (f" or one of {label_names}" if label_names else "")
            ) from None
    if isinstance(value, float):
        if value != value or not value.is_integer():
            raise W2SError(f"{where}: field 'label': {value!r} is not an integer class; use 0..{num_classes - 1}")
        value = int(value)
    if not isinstance(value, int):
        raise W2SError(f"{where}: field 'label': {value!r} is not a class; use integers 0..{num_classes - 1}")
    if not 0 <= value < num_classes:
        raise W2SError(
            f"{where}: field 'label': {value} is outside the classes 0..{num_classes - 1}; fix the row, "
            "or declare num_classes in a task YAML"
        )
    return value


def load_data_file(
    path: str | Path,
    *,
    name: str | None = None,
    text_col: str = "text",
    label_col: str = "label",
    group_col: str | None = None,
    id_col: str | None = None,
    num_classes: int = 2,
    label_names: list[str] | None = None,
    pool: str = "train",
) -> pd.DataFrame:
    """Read one data file into task rows; every bad row raises ``FILE:LINE: field ...``."""
    path = Path(path)
    rows = _read_rows(path)
    if not rows:
        raise W2SError(f"{path}: no rows; the file needs a header/records with {text_col!r} and {label_col!r}")
    first_keys = set(rows[0][1])
    # a missing column is the header's fault for CSV/TSV (line 1), else the first record's
    head = 1 if path.suffix.lower() in (".csv", ".tsv") else rows[0][0]
    for col in (text_col, label_col):
        if col not in first_keys:
            raise W2SError(
                f"{path}:{head}: field {col!r}: missing column (columns: {', '.join(map(str, first_keys))}); "
                f"name the column with --{'text' if col == text_col else 'label'}-col"
            )
    if group_col is None and "group" in first_keys:
        group_col = "group"
    if group_col is not None and group_col not in first_keys:
        raise W2SError(f"{path}:{head}: field {group_col!r}: missing column given as the group column")
    stem = name or path.stem
    out = []
    for line, rec in rows:
        where = f"{path}:{line}"
        for col in (text_col, label_col):
            if col not in rec or rec[col] is None:
                raise W2SError(f"{where}: field {col!r} is missing; every row needs it")
        text = rec[text_col]
        if not isinstance(text, str) or not text.strip():
            raise W2SError(f"{where}: field {text_col!r}: expected non-empty text, got {text!r}")
        label = parse_label(rec[label_col], num_classes, label_names, where)
        ex_id = str(rec[id_col]) if id_col and rec.get(id_col) is not None else f"{stem}:{pool}:{line}"
        group = str(rec[group_col]) if group_col and rec.get(group_col) is not None else ex_id
        out.append({"id": ex_id, "text": text, "label": label, "group": group, "pool": pool})
    frame = pd.DataFrame(out, columns=COLUMNS)
    if frame["id"].duplicated().any():
        dup = frame.loc[frame["id"].duplicated(), "id"].iloc[0]
        raise W2SError(f"{path}: id {dup!r} occurs twice in column {id_col!r}; ids must be unique")
    return frame


def file_task(path: str | Path, text_col: str = "text", label_col: str = "label",
              group_col: str | None = None) -> TaskData:
    """A task made of one data file (binary labels 0/1 unless a task YAML says otherwise)."""
    path = Path(path)
    frame = load_data_file(path, text_col=text_col, label_col=label_col, group_col=group_col)
    return TaskData(path.stem, frame)


_YAML_FIELDS = {"name", "description", "files", "file", "text_col", "label_col", "group_col", "id_col",
                "num_classes", "label_names", "hub", "license", "version"}


def yaml_task(path: str | Path) -> TaskData:
    """A task declared in YAML: local ``file``/``files`` ({train: ..., test: ...}) or a ``hub`` dataset."""
    from ..config import load_yaml
    from ..errors import did_you_mean

    path = Path(path)
    spec = load_yaml(path)
    for key in spec:
        if key not in _YAML_FIELDS:
            raise W2SError(f"{path}: unknown field {key!r}.{did_you_mean(str(key), _YAML_FIELDS)}")
    name = str(spec.get("name") or path.stem)
    label_names = spec.get("label_names")
    if label_names is not None and (not isinstance(label_names, list) or len(label_names) < 2):
        raise W2SError(f"{path}: field 'label_names': expected a list of at least two names")
    num_classes = spec.get("num_classes", len(label_names) if label_names else 2)
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 2:
        raise W2SError(f"{path}: field 'num_classes': expected an integer >= 2, got {num_classes!r}")
    label_names = [str(x) for x in label_names] if label_names else [str(i) for i in range(num_classes)]
    if len(label_names) != num_classes:
        raise W2SError(f"{path}: field 'label_names' has {len(label_names)} names but num_classes is {num_classes}")
    cols = {k: spec[k] for k in ("text_col", "label_col", "group_col", "id_col") if k in spec}
    if "hub" in spec:
        hub = spec["hub"]
        if not isinstance(hub, dict) or "dataset" not in hub:
            raise W2SError(f"{path}: field 'hub': expected {{dataset: ID, splits: {{train: [train], test: [test]}}}}")
        from .base import load_hub_records

        splits = hub.get("splits") or {"train": ["train"]}
        if not isinstance(splits, dict):
            raise W2SError(f"{path}: field 'hub.splits': expected a mapping such as {{train: [train], test: [test]}}")
        splits = {k: v if isinstance(v, list) else [v] for k, v in splits.items()}
        records = load_hub_records(hub["dataset"], hub.get("config"), splits, name)
        frames = []
        for pool, recs in records.items():
            frames.append(_records_frame(recs, name, pool, num_classes, label_names, path, **cols))
        frame = pd.concat(frames, ignore_index=True)
    else:
        files = spec.get("files") or ({"train": spec["file"]} if "file" in spec else None)
        if not isinstance(files, dict) or not files:
            raise W2SError(f"{path}: give 'file: data.jsonl' or 'files: {{train: a.jsonl, test: b.jsonl}}' or 'hub:'")
        frames = []
        for pool, f in files.items():
            if pool not in ("train", "test"):
                raise W2SError(f"{path}: field 'files': pool {pool!r} must be train or test")
            if not isinstance(f, str) or not f:
                raise W2SError(f"{path}: field 'files.{pool}': expected a file name, got {f!r}")
            fp = Path(f) if Path(f).is_absolute() else path.parent / f
            frames.append(load_data_file(fp, name=name, num_classes=num_classes, label_names=label_names,
                                         pool=pool, **cols))
        frame = pd.concat(frames, ignore_index=True)
    return TaskData(name, frame, num_classes, label_names)


def _records_frame(recs, name, pool, num_classes, label_names, path, text_col="text", label_col="label",
                   group_col=None, id_col=None) -> pd.DataFrame:
    out = []
    for i, rec in enumerate(recs):
        where = f"{path} (hub split {pool}, record {i + 1})"
        if text_col not in rec or label_col not in rec:
            raise W2SError(f"{where}: missing field {text_col if text_col not in rec else label_col!r}")
        label = parse_label(rec[label_col], num_classes, label_names, where)
        ex_id = str(rec[id_col]) if id_col else f"{name}:{pool}:{i}"
        out.append({"id": ex_id, "text": str(rec[text_col]), "label": label,
                    "group": str(rec[group_col]) if group_col else ex_id, "pool": pool})
    return pd.DataFrame(out, columns=COLUMNS)
