"""``few_shot``: the strong decoder prompted with labelled demonstrations (Burns et al. 2023, §5.2.1).

The prompt is ``shots`` demonstrations, each ``template(text_i) + word(label_i)`` and a blank
line, then ``template(x)``; p(k | x) = softmax_k log P(w_k | prompt(x)) as in ``zero_shot``.
Demonstrations (one fixed set per seed, balanced over the classes where the pool allows):

* ``source="gt"``: ground-truth labelled examples of ``weak_train`` (the paper's few-shot baseline);
* ``source="weak"``: ``transfer`` examples labelled with the argmax of the weak labels (the
  paper's few-shot prompting with weak labels).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import W2SError
from ..models.lm import DEFAULT_TEMPLATE
from .base import Method
from .zero_shot import _check_prompting, prompt_key, run_prompting


@dataclass
class FewShotConfig:
    shots: int = 5
    """Demonstrations in the prompt (balanced over the classes where possible)."""
    source: str = "gt"
    """gt: ground-truth labelled examples of weak_train; weak: transfer examples with the weak labels' argmax."""
    model: str | None = None
    """The decoder to prompt (short name, hub id or directory); None: the run's strong model."""
    template: str = DEFAULT_TEMPLATE
    """Prompt of one example; ``{text}`` is its text, ``{choices}`` (optional) the label words joined by " or "."""
    label_words: list[str] | None = None
    """One word per class in label order; None: the task's label names when they are words, else [" false", " true"]."""
    batch_size: int = 16
    """Sequences (prompt + one label word) per forward pass."""
    max_length: int = 1024
    """Token limit of prompt + word; longer prompts lose tokens (the first demonstrations) from the left."""

    def __post_init__(self) -> None:
        if self.shots < 1:
            raise W2SError(f"method 'few_shot': shots must be >= 1, got {self.shots} (shots=0 is zero_shot)")
        if self.source not in ("gt", "weak"):
            raise W2SError(f"method 'few_shot': source must be 'gt' or 'weak', got {self.source!r}")
        _check_prompting(self, "few_shot")


def choose_shots(labels: np.ndarray, shots: int, num_classes: int, rng: np.random.Generator) -> np.ndarray:
    """Positions (shots,) into ``labels`` (n,) of the demonstrations, in prompt order.

    Each class gets ``shots // K`` examples and ``shots % K`` classes (drawn at random) one more;
    a class with too few examples gives all it has and the rest is drawn from the remaining
    examples. The chosen positions are then shuffled.
    """
    labels = np.asarray(labels)
    n = len(labels)
    if n < shots:
        raise W2SError(f"few_shot: {shots} shots but only {n} examples to draw them from; lower few_shot.shots")
    quota = np.full(num_classes, shots // num_classes)
    quota[rng.permutation(num_classes)[:shots % num_classes]] += 1
    chosen: list[int] = []
    for k in range(num_classes):
        pool = np.flatnonzero(labels == k)
        chosen.extend(rng.permutation(pool)[:quota[k]].tolist())
    if len(chosen) < shots:
        rest = np.setdiff1d(np.arange(n), chosen)
        chosen.extend(rng.permutation(rest)[:shots - len(chosen)].tolist())
    return rng.permutation(np.asarray(chosen, dtype=np.int64))


def _run(cfg: FewShotConfig, ctx: Any, plan: Any):
    from ..models.lm import few_shot_prompt

    if cfg.source == "gt":
        rows = ctx.rows("weak_train")
        labels = ctx.weak_train_labels()
    else:
        rows = ctx.rows("transfer")
        labels = ctx.weak_probs("transfer").argmax(axis=1)
    rng = np.random.default_rng([ctx.seed, 5021])
    pos = choose_shots(labels, cfg.shots, ctx.num_classes, rng)
    texts = ctx.texts(rows[pos])
    shots = [(t, int(y)) for t, y in zip(texts, labels[pos], strict=True)]
    ids = ctx.task.frame["id"].to_numpy()[rows[pos]]
    info = {"shots": cfg.shots, "source": cfg.source,
            "shot_examples": [{"id": str(i), "label": y} for i, (_, y) in zip(ids, shots, strict=True)]}
    return run_prompting(cfg, ctx, plan, "few_shot",
                         prompt_of=lambda text, words: few_shot_prompt(cfg.template, shots, text, words),
                         extra_info=info)


METHOD = Method(
    name="few_shot",
    description="Prompt the strong decoder with k labelled demonstrations (ground truth or weak labels); no training.",
    config_cls=FewShotConfig,
    kind="alone",
    run_fn=_run,
    key_fn=prompt_key,
    trains=False,
)
