"""zero_shot for generation tasks: the strong model prompted with ``gen.template``, no training; its
answers on val and test are the student's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import GenMethod


@dataclass
class ZeroShotConfig:
    """The strong model prompted with the task's template, no training (no settings)."""


def _zero_shot(cfg: Any, ctx: Any, key: Any) -> Any:
    return ctx.prompt_strong(key)


METHOD = GenMethod(
    name="zero_shot", kind="alone", config_cls=ZeroShotConfig, run_fn=_zero_shot, trains=False,
    description="the strong model prompted with gen.template, no training (its answers are the student's)",
)
