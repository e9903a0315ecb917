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

Planned methods, each one file in ``generation/methods/`` defining ``METHOD = GenMethod(...)``
(found at import; ``tests/generation/test_hooks.py`` plugs a select, a labels and a loss method in
this way). What each hook gives them today, and what each would still need:

* a filter by the weak answer's log-probability: kind ``select``, ``select_fn(cfg, answers)``
  keeps ``answers.logprob >= quantile(answers.logprob, cfg.drop_frac)``. Everything it needs is
  there: the weak answers' sequence log-probabilities are in ``Answers`` (and every weak stage's
  ``generations/weak.parquet``).
* a vote over several weak answers: kind ``labels``, ``supervise_fn(cfg, ctx)`` writes k answers per
  transfer prompt in a cached stage of its own (``ctx.method_stage(name, build)``, keyed by the floor,
  the transfer ids and every setting of the method; the test builds such a stage) and returns the most
  frequent normalised answer per prompt as ``Answers``. Still needed: sampling in ``lm.generate``
  (decoding is greedy only), and the weak model's weights. Under LoRA (the CPU default) the floor's
  entry keeps its adapters (``adapter.safetensors``, to load onto the weak base model); under full
  finetuning it keeps no weights, so the method would retrain the weak model in its stage (the same
  SFT) or the floor would have to store them.
* a sequence-level confidence loss: kind ``loss``, ``make_loss(cfg)`` returns ``loss(logits (B, A, V),
  labels (B, A), step, total)`` on teacher-forced logits over the weak answer's positions; a loss with
  ``wants_batch = True`` is also given the model in training and its batch (input ids, mask, positions,
  the answer length), so it can decode the student's own answer from the prompt and mix its
  cross-entropy with the weak answer's (logconf at the sequence level). Still needed: a greedy-decoding
  helper for use inside training (``lm.generate`` expects a model in eval mode, and under gradient
  checkpointing the KV cache is off); ``tests/generation/test_hooks.py`` checks the hook's arguments,
  not such a loss.
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
