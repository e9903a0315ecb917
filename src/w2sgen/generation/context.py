"""What a generation method sees of a run: prompts, the weak model's answers, the models and cached-stage
helpers; no gold answer of transfer, val or test (the label firewall's rule for generation tasks).

weak_train's gold answers stay readable (``weak_train_answers``): the weak model trained on them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .methods import Answers
from .stages import GenStage


class GenContext:
    """A generation student's view of its run (built by the protocol for every method)."""

    def __init__(self, cfg: Any, seed: int, ids: dict[str, list[str]], prompts: dict[str, list[str]],
                 weak_train_gold: list[str], floor: GenStage, strong: Any, weak: Any, cache: Any,
                 train: Callable[..., GenStage], prompt: Callable[..., GenStage], key_env: Callable[[], Any]):
        self.cfg = cfg
        """The run config (tracked: a method's reads must be in its key)."""
        self.seed = seed
        self.strong = strong
        """The strong model's side (``protocol.ModelSide``)."""
        self.weak = weak
        """The weak model's side."""
        self.method = ""
        """The method being run (set by the protocol; named in a refusal)."""
        self.settings: dict[str, Any] = {}
        """Its parts' settings ({method: fields}), which its student's key holds (set by the protocol)."""
        from ..methods.context import GuardedCache

        self.cache = GuardedCache(cache, self)
        """The stage cache without the ceiling's entries (trained on transfer's gold answers)."""
        self.floor = floor
        """The weak model's stage: its answers on transfer, val and test, and its adapters."""
        self._ids = ids
        self._prompts = prompts
        self._weak_train_gold = weak_train_gold
        self._train = train
        self._prompt = prompt
        self._key_env = key_env

    def ids(self, split: str) -> list[str]:
        return list(self._ids[split])

    def prompts(self, split: str) -> list[str]:
        """The raw prompts of ``split`` (before ``gen.template``)."""
        return list(self._prompts[split])

    def weak_answers(self, split: str = "transfer") -> Answers:
        """The weak model's answers on ``split`` (transfer, val or test), in the split's order."""
        a = self.floor.answers(split, self._ids[split])
        if a is None:
            raise ValueError(f"the weak stage wrote no answers on {split!r}")
        return a

    def weak_train_answers(self) -> Answers:
        """weak_train's gold answers (the weak model's training set; log-probabilities NaN)."""
        n = len(self._ids["weak_train"])
        return Answers(self.ids("weak_train"), list(self._weak_train_gold), np.full(n, np.nan), np.zeros(n, np.int64))

    def train_student(self, key: Any, answers: Answers, loss_fn: Any = None) -> GenStage:
        """The student: the strong model finetuned on the transfer prompts of ``answers.ids`` with
        ``answers.texts`` as targets (``loss_fn``: the SFT objective), answering val and test; cached
        under ``key`` (the student's stage inputs)."""
        return self._train(key, answers, loss_fn)

    def prompt_strong(self, key: Any) -> GenStage:
        """The strong model, not trained, answering val and test; cached under ``key``."""
        return self._prompt(key)

    def method_stage(self, stage: str, build: Callable[[Any], None], **entries: Any) -> Any:
        """A cached stage of the method's own (e.g. k sampled weak answers per transfer prompt): ``build(dir)``
        writes it; returns the entry's folder. Its key holds the floor's key (the weak model and its
        answers), the transfer ids, the method and every setting of its parts (``method_args``), plus
        ``entries`` (anything else it reads, e.g. another model's key); the build may read no other
        config field (the stage cache checks)."""
        from ..protocol import StageKey, ids_hash

        key = StageKey({"stage": stage, "floor": self.floor.key, "transfer": ids_hash(self._ids["transfer"]),
                        "method": self.method, "settings": self.settings, **entries},
                       {f"method_args.{m}" for m in self.settings})
        path, _ = self.cache.get_or_build(stage, key, build)
        return path

    def refuse(self, what: str) -> None:
        """Refuse a read of gold answers: record it in the open scopes (the run fails even if the error is
        caught) and raise."""
        from .. import reads
        from ..errors import GroundTruthError

        msg = (f"method {self.method!r} tried to read {what}: gold answers of transfer, val and test are hidden "
               "from generation methods (the label firewall). Use the weak model's answers (ctx.weak_answers) or "
               "weak_train's gold answers (ctx.weak_train_answers()); analyses that need gold answers go in the "
               "method's analyze_fn, which the protocol runs after the method has returned")
        reads.refuse(msg)
        raise GroundTruthError(msg)

    def key_env(self) -> Any:
        """A ``protocol.KeyEnv`` for a method's ``key_fn``."""
        return self._key_env()
