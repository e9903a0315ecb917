"""SciQ (Welbl et al. 2017), the paper's default task: a science question with one candidate answer.

Each question yields one example: with probability 0.5 the correct answer (label 1), else one of
the three distractors (label 0), as in OpenAI's weak-to-strong code; the coin is seeded by the
question's position, so the task is the same on every machine and for every run seed. The
support paragraph is left out (it often contains the answer verbatim).

Hub: ``allenai/sciq`` (train + validation feed the training pool, test is the test pool).
Local: the AI2 release ``SciQ/{train,valid,test}.json``.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from ..errors import W2SError
from .base import find_file

FIELDS = ("question", "correct_answer", "distractor1", "distractor2", "distractor3")


def load_local(root: Path) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {"train": [], "test": []}
    for split, pool in (("train", "train"), ("valid", "train"), ("test", "test")):
        p = find_file(root, [f"SciQ/{split}.json", f"{split}.json"], "sciq", f"{split}.json")
        try:
            recs = json.loads(p.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise W2SError(f"{p}:{e.lineno}: malformed JSON ({e.msg})") from None
        for i, r in enumerate(recs):
            missing = [f for f in FIELDS if f not in r]
            if missing:
                raise W2SError(f"{p}: record {i + 1}: missing field {missing[0]!r}")
            out[pool].append(dict(r, _split=split))
    return out


def format_sciq(rec: dict[str, Any], pool: str, i: int) -> list[dict[str, Any]]:
    rng = random.Random(f"sciq:{pool}:{i}")
    label = int(rng.random() < 0.5)
    answer = rec["correct_answer"] if label else rng.choice([rec[f"distractor{k}"] for k in (1, 2, 3)])
    return [{"text": f"Q: {rec['question']} A: {answer}", "label": label, "answer": answer}]
