"""``w2s show-task`` for generation tasks: what the task is, its checker, and prompts with their answers."""

from __future__ import annotations

import textwrap
from typing import Any

from .lm import render


def describe(spec: Any, task: Any) -> str:
    """Header: description, source, checker, answer length, settings, pools."""
    f = task.frame
    lines = [f"{spec.name}: {spec.description}",
             f"source: {spec.source or spec.hub_id or '-'}   license: {spec.license}   version: {spec.version}",
             f"kind: generation   checker: {task.checker_name}   max_new_tokens (default): {task.max_new_tokens}"]
    settings = getattr(spec, "settings", None)
    if settings:
        lines.append("settings (gen.task_args): " + ", ".join(f"{k}={v}" for k, v in settings.items()))
    for pool in ("train", "test"):
        part = f[f["pool"] == pool]
        if len(part):
            lines.append(f"{pool} pool: {len(part):,} examples in {part['group'].nunique():,} groups, "
                         f"{part['answer'].nunique():,} distinct answers")
    lines += [f"note: {n}" for n in task.notes]
    return "\n".join(lines)


def examples(task: Any, n: int = 5, width: int = 100, template: str = "{prompt}\nAnswer:") -> str:
    """The first ``n`` examples: id, group, the prompt as the models see it, and the gold answer."""
    out = [f"(prompts as the models see them, gen.template = {template!r}; the answer follows after a space)"]
    for row in task.frame.head(n).itertuples(index=False):
        out.append(f"--- {row.id}  [{row.pool}]  group {' '.join(str(row.group).split())[:60]}")
        for para in render(template, str(row.text)).split("\n"):
            out.extend(textwrap.wrap(para, width, initial_indent="  ", subsequent_indent="  ") or ["  "])
        out.extend(textwrap.wrap(str(row.answer), width, initial_indent="  => ", subsequent_indent="     "))
    return "\n".join(out)
