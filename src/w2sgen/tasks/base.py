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
OPTIONAL_COLUMNS = ["answer"]
"""Kept when a formatter gives them: ``answer`` is the candidate answer alone (question-answer and
multiple-choice tasks), which the leakage audit reads; it never enters the fingerprint."""
ELLIPSIS = "… "
"""What replaces the cut-off start of a truncated context."""


@dataclass(frozen=True)
class Leakage:
    """A documented surface artifact of the dataset itself (the leakage audit's accuracy and why)."""

    score: float
    """Held-out accuracy of :func:`w2sgen.tasks.leakage.audit` on the local files (fraction)."""
    note: str


@dataclass
class TaskData:
    """A loaded task: one row per example (columns :data:`COLUMNS`)."""

    name: str
    frame: pd.DataFrame
    num_classes: int = 2
    label_names: list[str] = field(default_factory=lambda: ["false", "true"])
    notes: list[str] = field(default_factory=list)
    n_truncated: int = 0
    """Examples whose context was cut to fit the task's ``max_chars`` (see :func:`truncate_context`)."""
    kind = "classification"
    """classification, or generation (``w2sgen.generation.tasks.GenTaskData``: answers written as text)."""

    @property
    def truncated_fraction(self) -> float:
        return self.n_truncated / len(self.frame) if len(self.frame) else 0.0

    def __post_init__(self) -> None:
        missing = [c for c in COLUMNS if c not in self.frame.columns]
        if missing:
            raise ValueError(f"task frame lacks columns {missing}")
        extra = [c for c in OPTIONAL_COLUMNS if c in self.frame.columns]
        self.frame = self.frame[COLUMNS + extra].reset_index(drop=True)
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
    hub_revision: str | None = None
    """A branch or commit of ``hub_id``; ``refs/convert/parquet`` for datasets whose default branch holds
    only a loading script (which ``datasets`` >= 4 no longer runs)."""
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
    sizes: dict[str, int] = field(default_factory=dict)
    """Source records per hub split, before binarisation (metadata for ``w2s list tasks``; no data loaded)."""
    max_chars: int | None = None
    """Longest text in characters. An example that names its ``context`` (a substring of its text)
    has the start of that context cut (replaced by :data:`ELLIPSIS`) until the text fits; the
    candidate answer and the question are never cut. Examples without a context are left whole."""
    carve_test: float | None = None
    """When the source has no labelled test split (local files with a dev split only), move this
    fraction of groups, chosen by a hash of the group id (the same on every machine and for every
    seed), into the test pool."""
    kind: str = "classification"
    """classification | qa | mc | generation: qa and mc examples give their ``answer``, which the leakage
    audit reads; generation tasks (``w2sgen.generation.tasks.GenTaskSpec``) are answered in text."""
    data_folder: str | None = None
    """The folder name under a parent ``--data-dir`` (default: the task's name), e.g. two formats of one dataset."""
    leakage: Leakage | None = None
    """A surface artifact of the dataset itself that the leakage audit finds, documented with its score."""

    @property
    def num_classes(self) -> int:
        return len(self.label_names)

    # ------------------------------------------------------------------ loading
    def load(self, data_dir: str | Path | None = None, hub_id: str | None = None) -> TaskData:
        """Load from ``data_dir`` (original files), else generate, else the hub (or ``hub_id``:
        another hub id or a local folder in the hub's layout)."""
        if data_dir is not None:
            if self.load_local is None:
                raise W2SError(f"task {self.name!r} has no local-file loader; drop --data-dir")
            records = self.load_local(resolve_data_dir(Path(data_dir), self))
        elif self.generate is not None:
            records = self.generate()
        else:
            records = load_hub_records(hub_id or self.hub_id, self.hub_config, self.hub_splits, self.name,
                                       revision=None if hub_id else self.hub_revision)
        return self.build(records)

    def build(self, records: dict[str, list[dict[str, Any]]]) -> TaskData:
        """Format every record of every source split ({split: records}) into the task's frame."""
        rows = []
        truncated_ids: list[str] = []
        has_answer = False
        for source, recs in records.items():
            # a source split other than train/test (e.g. "dev", used whole) feeds the training pool
            # and keeps its name in example ids; carve_test may then move groups into test
            pool = source if source in ("train", "test") else "train"
            for i, rec in enumerate(recs):
                try:
                    examples = self.format(rec, source, i)
                except (KeyError, TypeError, ValueError) as e:
                    where = rec.get("_where", f"task {self.name!r}: {source} record {i + 1}")
                    what = f"field {e.args[0]!r} is missing" if isinstance(e, KeyError) else f"malformed record ({e})"
                    raise W2SError(f"{where}: {what}; the data is not in the schema of {self.source or self.name}") from None
                for j, ex in enumerate(examples):
                    text = ex["text"]
                    if self.max_chars is not None and len(text) > self.max_chars and ex.get("context"):
                        text = truncate_context(text, ex["context"], self.max_chars)
                        truncated_ids.append(ex.get("id", f"{self.name}:{source}:{i}" + (f":{j}" if j else "")))
                    row = {
                        "id": ex.get("id", f"{self.name}:{source}:{i}" + (f":{j}" if j else "")),
                        "text": text,
                        "label": int(ex["label"]),
                        "group": str(ex.get("group", f"{source}:{i}")),
                        "pool": pool,
                    }
                    if "answer" in ex:
                        row["answer"] = str(ex["answer"])
                        has_answer = True
                    rows.append(row)
        frame = pd.DataFrame(rows, columns=COLUMNS + (["answer"] if has_answer else []))
        notes = []
        if self.carve_test and len(frame) and not (frame["pool"] == "test").any():
            salt = self.data_folder or self.name  # formats of one dataset carve the same groups
            frame = frame.assign(pool=np.where(frame["group"].map(lambda g: _unit_hash(f"{salt}|{g}"))
                                               < self.carve_test, "test", "train"))
            notes.append(f"no labelled test split: {(frame['pool'] == 'test').sum()} examples "
                         f"({self.carve_test:.0%} of groups, by a hash of the group id) form the test pool")
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
        n_truncated = int(frame["id"].isin(set(truncated_ids)).sum()) if truncated_ids else 0
        if n_truncated:
            notes.append(f"truncated the context of {n_truncated} of {len(frame)} examples "
                         f"({n_truncated / len(frame):.1%}) to fit {self.max_chars} characters")
        return TaskData(self.name, frame, self.num_classes, list(self.label_names), notes, n_truncated)


def _unit_hash(key: str) -> float:
    """A number in [0, 1) from sha256(key): stable across machines, processes and seeds."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2**64


def truncate_context(text: str, context: str, max_chars: int) -> str:
    """Cut the start of ``context`` (its first occurrence in ``text``) until ``text`` fits ``max_chars``.

    The cut-off part becomes :data:`ELLIPSIS`; everything outside the context (the question, the
    candidate answer, the template) is kept whole, even if the text then stays too long.
    """
    at = text.find(context)
    if at < 0 or len(text) <= max_chars:
        return text
    excess = len(text) - max_chars + len(ELLIPSIS)
    kept = context[excess:] if excess < len(context) else ""
    return text[:at] + (ELLIPSIS + kept.lstrip() if kept else ELLIPSIS.rstrip()) + text[at + len(context):]


def resolve_data_dir(path: Path, spec: TaskSpec) -> Path:
    """Accept the task's folder itself, or a parent folder holding ``<name>/``."""
    if not path.exists():
        raise W2SError(f"--data-dir {path}: no such directory")
    if not path.is_dir():
        raise W2SError(f"--data-dir {path}: not a directory (expected the folder with {spec.local_files})")
    sub = path / (spec.data_folder or spec.name)
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
    hub_id: str | None, config: str | None, splits: dict[str, list[str]], task: str, revision: str | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Read records with ``datasets.load_dataset`` (a hub id, or a local folder in the hub's layout)."""
    if not hub_id:
        raise W2SError(f"task {task!r} has no hub source; pass --data-dir with its files")
    import datasets

    try:
        kw = {"revision": revision} if revision else {}
        ds = datasets.load_dataset(hub_id, config, **kw) if config else datasets.load_dataset(hub_id, **kw)
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
            recs.extend(dict(r, _where=f"{hub_id} ({n} split, row {k + 1})") for k, r in enumerate(ds[n].to_list()))
        out[pool] = recs
    return out
