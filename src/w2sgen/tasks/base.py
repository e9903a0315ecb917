"""What a task is: labelled examples with ids and groups, drawn from one or two pools."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import W2SError

COLUMNS = ["id", "text", "label", "group", "pool"]
"""Every task yields a frame with these columns. ``pool`` is ``train`` or ``test``: the
task's own split the example came from (splits never draw test examples from ``train``
when the task has a labelled test pool)."""


@dataclass
class TaskData:
    """A loaded task: one row per example (columns :data:`COLUMNS`)."""

    name: str
    frame: pd.DataFrame
    num_classes: int = 2
    label_names: list[str] = field(default_factory=lambda: ["false", "true"])
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        missing = [c for c in COLUMNS if c not in self.frame.columns]
        if missing:
            raise ValueError(f"task frame lacks columns {missing}")
        self.frame = self.frame[COLUMNS].reset_index(drop=True)
        self.frame["label"] = self.frame["label"].astype(np.int64)
        if self.frame["id"].duplicated().any():
            dup = self.frame.loc[self.frame["id"].duplicated(), "id"].iloc[0]
            raise W2SError(f"task {self.name!r}: example id {dup!r} occurs twice; ids must be unique")

    def __len__(self) -> int:
        return len(self.frame)

    def fingerprint(self) -> str:
        """sha256 over (id, text, label, group, pool) of every example, in order."""
        h = hashlib.sha256()
        for row in self.frame.itertuples(index=False):
            h.update(f"{row.id}\x1f{row.text}\x1f{row.label}\x1f{row.group}\x1f{row.pool}\x1e".encode())
        return h.hexdigest()


Loader = Callable[[Path], dict[str, list[dict[str, Any]]]]
Formatter = Callable[[dict[str, Any], str, int], list[dict[str, Any]]]


@dataclass
class TaskSpec:
    """A registered task: where its records come from and how a record becomes examples."""

    name: str
    description: str
    format: Formatter
    """(record, pool, index) -> list of {text, label[, group][, id]}: one record can give several examples."""
    hub_id: str | None = None
    """Hugging Face dataset id (the path users take)."""
    hub_config: str | None = None
    hub_splits: dict[str, list[str]] = field(default_factory=dict)
    """Our pool (train/test) -> the hub's split names that feed it."""
    load_local: Loader | None = None
    """Directory of the original release files -> {pool: records}."""
    local_files: str = ""
    """The files load_local looks for (for error messages and docs)."""
    generate: Callable[[], dict[str, list[dict[str, Any]]]] | None = None
    """For generated tasks (no hub, no files): () -> {pool: records}."""
    license: str = "unknown"
    source: str = ""
    label_names: list[str] = field(default_factory=lambda: ["false", "true"])
    version: str = "1"
    dedupe_text: bool = False
    """Drop repeated texts (keeping the first) and train-pool texts that also occur in the test pool."""

    @property
    def num_classes(self) -> int:
        return len(self.label_names)

    # ------------------------------------------------------------------ loading
    def load(self, data_dir: str | Path | None = None, hub_id: str | None = None) -> TaskData:
        """Load from ``data_dir`` (original files), else generate, else the hub."""
        if data_dir is not None:
            if self.load_local is None:
                raise W2SError(f"task {self.name!r} has no local-file loader; drop --data-dir")
            records = self.load_local(resolve_data_dir(Path(data_dir), self))
        elif self.generate is not None:
            records = self.generate()
        else:
            records = load_hub_records(hub_id or self.hub_id, self.hub_config, self.hub_splits, self.name)
        return self.build(records)

    def build(self, records: dict[str, list[dict[str, Any]]]) -> TaskData:
        rows = []
        for pool, recs in records.items():
            for i, rec in enumerate(recs):
                for j, ex in enumerate(self.format(rec, pool, i)):
                    rows.append(
                        {
                            "id": ex.get("id", f"{self.name}:{pool}:{i}" + (f":{j}" if j else "")),
                            "text": ex["text"],
                            "label": int(ex["label"]),
                            "group": str(ex.get("group", f"{pool}:{i}")),
                            "pool": pool,
                        }
                    )
        frame = pd.DataFrame(rows, columns=COLUMNS)
        notes = []
        if self.dedupe_text and len(frame):
            n0 = len(frame)
            # Within each pool keep the first copy; then drop train rows whose text (or group:
            # groups never span pools) also occurs in the test pool. The test pool stays whole.
            frame = frame.drop_duplicates(["pool", "text"], keep="first")
            test = frame.loc[frame["pool"] == "test"]
            leak = frame["text"].isin(set(test["text"])) | frame["group"].isin(set(test["group"]))
            frame = frame[~((frame["pool"] == "train") & leak)]
            if len(frame) < n0:
                notes.append(f"dropped {n0 - len(frame)} repeated texts (also across train/test)")
        return TaskData(self.name, frame, self.num_classes, list(self.label_names), notes)


def resolve_data_dir(path: Path, spec: TaskSpec) -> Path:
    """Accept the task's folder itself, or a parent folder holding ``<name>/``."""
    if not path.exists():
        raise W2SError(f"--data-dir {path}: no such directory")
    if not path.is_dir():
        raise W2SError(f"--data-dir {path}: not a directory (expected the folder with {spec.local_files})")
    sub = path / spec.name
    return sub if sub.is_dir() else path


def find_file(root: Path, candidates: list[str], task: str, what: str) -> Path:
    """The first of ``candidates`` (relative paths) that exists under root, or a clear error."""
    for c in candidates:
        p = root / c
        if p.is_file():
            return p
    raise W2SError(
        f"task {task!r}: no {what} under {root}; looked for: {', '.join(candidates)}. "
        "Point --data-dir at the folder of the dataset's original release files."
    )


def load_hub_records(
    hub_id: str | None, config: str | None, splits: dict[str, list[str]], task: str
) -> dict[str, list[dict[str, Any]]]:
    """Read records with ``datasets.load_dataset`` (a hub id, or a local folder in the hub's layout)."""
    if not hub_id:
        raise W2SError(f"task {task!r} has no hub source; pass --data-dir with its files")
    import datasets

    try:
        ds = datasets.load_dataset(hub_id, config) if config else datasets.load_dataset(hub_id)
    except Exception as e:  # network, missing dataset, offline mode
        raise W2SError(
            f"task {task!r}: could not load {hub_id!r} from the Hugging Face hub ({type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else ''}). Offline? Pass --data-dir with the original files."
        ) from None
    out: dict[str, list[dict[str, Any]]] = {}
    for pool, names in splits.items():
        recs: list[dict[str, Any]] = []
        for n in names:
            if n not in ds:
                raise W2SError(f"task {task!r}: hub dataset {hub_id!r} has no split {n!r} (has {list(ds)})")
            recs.extend(ds[n].to_list())
        out[pool] = recs
    return out
