"""SST-2 (Socher et al. 2013; GLUE): is a movie-review sentence positive?

Hub: ``stanfordnlp/sst2`` (train feeds our training pool, validation is our test pool: the
hub's test split has no labels). Local: the GLUE layout ``SST-2/{train,dev}.tsv``, or the
re-split in ``../shared/data/sst2`` (``data/SST-2/{train,dev,test}.tsv``, where train+dev is GLUE
train and test is GLUE dev). Repeated sentences are dropped, as are training sentences that
also occur in the test pool.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from ..errors import W2SError
from .base import find_file


def _read_tsv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def load_local(root: Path) -> dict[str, list[dict[str, Any]]]:
    train = find_file(root, ["data/SST-2/train.tsv", "SST-2/train.tsv", "train.tsv"], "sst2", "train.tsv")
    base_dir = train.parent
    files = {p: base_dir / f"{p}.tsv" for p in ("train", "dev", "test")}
    labelled = {}
    for split, p in files.items():
        if p.is_file():
            cols, rows = _read_tsv(p)
            if "label" in cols and "sentence" in cols:
                labelled[split] = (p, rows)
    # GLUE layout: test.tsv is unlabelled, dev.tsv is the test pool. Re-split layout: test.tsv is.
    test_split = "test" if "test" in labelled else "dev" if "dev" in labelled else None
    if test_split is None:
        raise W2SError(f"task 'sst2': no labelled dev.tsv or test.tsv next to {train}")
    out: dict[str, list[dict[str, Any]]] = {"train": [], "test": []}
    for split, (p, rows) in labelled.items():
        pool = "test" if split == test_split else "train"
        for n, r in enumerate(rows, start=2):
            if r.get("label") not in ("0", "1"):
                raise W2SError(f"{p}:{n}: field 'label': {r.get('label')!r} is not 0 or 1")
            out[pool].append({"sentence": r["sentence"], "label": int(r["label"])})
    return out


def format_sst2(rec: dict[str, Any], pool: str, i: int) -> list[dict[str, Any]]:
    text = " ".join(str(rec["sentence"]).split())
    return [{"text": text, "label": int(rec["label"]), "group": f"text:{text.lower()}"}]
