"""Generation tasks: weak-to-strong on answers written as text, scored by a checker (issue 18).

A generation task's examples are a prompt, a gold answer and an optional group; the task names its
checker (:mod:`.checkers`). The protocol (:mod:`.protocol`) finetunes the weak LM on weak_train's
gold answers; its answers on transfer supervise the strong student; the ceiling is the strong LM
finetuned on transfer's gold answers. Every stage is a cached stage that writes answers (greedy,
batched, :mod:`.lm`); the checker turns them into per-example correctness, which drives accuracy,
PGR, the intervals and flags through :mod:`w2sgen.aggregate`, as for classification.

Modules: ``checkers`` (exact / numeric), ``tasks`` (cities_gen, sciq_gen, arithmetic, gsm8k),
``files`` (data files with prompt/answer columns), ``lm`` (SFT on answer tokens, greedy decoding),
``stages`` (cached stages), ``methods`` (xent, zero_shot and the method hooks), ``context`` (what a
method sees), ``protocol`` (keys and one seed), ``scoring``, ``run`` (``w2sgen.run`` for these
tasks), ``show`` and ``report`` (text and HTML views).

Planned methods, each one file registering a :class:`~.methods.GenMethod`:

* a filter by the weak answer's log-probability: kind ``select``, ``select_fn(cfg, answers)``
  keeps ``answers.logprob >= quantile(answers.logprob, cfg.drop_frac)`` (the log-probabilities are
  in every weak stage's ``generations.parquet`` and in ``Answers``);
* a vote over several weak answers: kind ``labels``, ``supervise_fn(cfg, ctx)`` samples k answers
  per transfer prompt from the weak model (its LoRA adapters are in ``ctx.floor.path``) in a cached
  stage keyed by the floor's key and (k, temperature), and returns the most frequent normalised
  answer per prompt as ``Answers``;
* a sequence-level confidence loss: kind ``loss``, ``make_loss(cfg)`` returns ``loss(logits,
  labels, step, total)`` mixing the weak answer's token loss with the student's own greedy answer
  (logconf at the sequence level).
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_METHODS = ("xent", "zero_shot")
"""The methods of a generation run when none are named (``w2s run``'s and ``w2sgen.run``'s default)."""


def is_generation_task(task: str) -> bool:
    """Whether ``--task`` names a generation task: a registered one, or a data file with prompt and
    answer columns (nothing is loaded but the file's header)."""
    from ..tasks.files import is_data_file

    if is_data_file(task):
        from .files import is_generation_file

        return Path(task).is_file() and is_generation_file(task)
    from ..tasks import TASKS

    return task in TASKS and TASKS.get(task).kind == "generation"


def method_names() -> list[str]:
    """The methods that apply to generation tasks."""
    from .methods import GEN_METHODS

    return GEN_METHODS.names()


__all__ = ["is_generation_task", "method_names"]
