"""Text views of tasks for the CLI: ``w2s list tasks`` (metadata only) and ``w2s show-task``."""

from __future__ import annotations

import textwrap
from collections.abc import Iterable

from .base import TaskData, TaskSpec


def _size(n: int | None) -> str:
    return f"{n:,}" if n else "-"


def task_rows(items: Iterable[tuple[str, TaskSpec]]) -> list[tuple[str, ...]]:
    """(name, source, train, test, license) per task, from registry metadata only (no data loaded)."""
    return [(name, spec.source or spec.hub_id or "", _size(spec.sizes.get("train")), _size(spec.sizes.get("test")),
             spec.license) for name, spec in items]


def describe(spec: TaskSpec, task: TaskData) -> str:
    """A header: what the task is, where it came from, and what the loaded data looks like."""
    f = task.frame
    lines = [f"{spec.name}: {spec.description}",
             f"source: {spec.source or spec.hub_id or '-'}   license: {spec.license}   version: {spec.version}",
             f"labels: {', '.join(f'{i} = {n}' for i, n in enumerate(task.label_names))}"]
    for pool in ("train", "test"):
        part = f[f["pool"] == pool]
        if len(part):
            counts = part["label"].value_counts().sort_index()
            dist = ", ".join(f"{task.label_names[k] if k < len(task.label_names) else k} {v:,}" for k, v in counts.items())
            lines.append(f"{pool} pool: {len(part):,} examples in {part['group'].nunique():,} groups ({dist})")
    if spec.max_chars:
        lines.append(f"contexts truncated to fit {spec.max_chars} characters: {task.n_truncated:,} examples "
                     f"({task.truncated_fraction:.1%})")
    lines += [f"note: {n}" for n in task.notes if not n.startswith("truncated")]
    if spec.leakage:
        lines.append(f"known artifact: {spec.leakage.note}")
    return "\n".join(lines)


def examples(task: TaskData, n: int = 5, width: int = 100) -> str:
    """The first ``n`` examples of each label (alternating), with id, group and label name."""
    f = task.frame
    picked = []
    by_label = [f[f["label"] == k].head(n) for k in sorted(f["label"].unique())]
    for i in range(n):
        part = by_label[i % len(by_label)] if by_label else f.head(0)
        k = i // len(by_label) if by_label else 0
        if k < len(part):
            picked.append(part.iloc[k])
    out = []
    for row in picked:
        name = task.label_names[row["label"]] if row["label"] < len(task.label_names) else str(row["label"])
        group = " ".join(str(row["group"]).split())
        group = group if len(group) <= 60 else group[:57] + "..."
        out.append(f"--- {row['id']}  [{row['pool']}]  group {group}  label {row['label']} ({name})")
        for para in str(row["text"]).split("\n"):
            out.extend(textwrap.wrap(para, width, initial_indent="  ", subsequent_indent="  ") or ["  "])
    return "\n".join(out)
