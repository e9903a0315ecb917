"""Anthropic HH-RLHF (chosen vs rejected dialogues) in two formats.

A pair shares every turn except the last assistant turn. The shared dialogue is the context
(truncated from its start when too long); the final responses are never cut.

* ``anthropic_hh`` — the paper's single response: the dialogue with the chosen (label 1) or the
  rejected (label 0) final response, by a coin seeded by the pair. Known to sit near chance.
* ``anthropic_hh_pairwise`` — the reward-modelling setting: the dialogue and both responses, in an
  order chosen by a coin seeded by the pair; label 1 = response A is the chosen one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import W2SError
from .common import Records, coin, read_jsonl, require

MARK = "\n\nAssistant:"
SUBSETS = ("harmless-base", "helpful-base", "helpful-online", "helpful-rejection-sampled")


def split_pair(rec: dict[str, Any]) -> tuple[str, str, str]:
    """(shared dialogue, chosen final response, rejected final response)."""
    require(rec, ("chosen", "rejected"))
    chosen, rejected = str(rec["chosen"]), str(rec["rejected"])
    cut = min(chosen.rfind(MARK), rejected.rfind(MARK))
    if cut < 0:
        raise W2SError(f"{rec.get('_where', 'record')}: field 'chosen': no '\\n\\nAssistant:' turn")
    # the longest common prefix that ends at an assistant turn both dialogues share
    while cut >= 0 and chosen[:cut] != rejected[:cut]:
        cut = chosen.rfind(MARK, 0, cut)
    if cut < 0:
        cut = 0
    prompt = chosen[:cut].strip()
    return prompt, chosen[cut:].strip(), rejected[cut:].strip()


def format_single(rec: dict[str, Any], pool: str, i: int) -> list[dict[str, Any]]:
    prompt, good, bad = split_pair(rec)
    label = int(coin(f"hh|{prompt}|{good}|{bad}"))
    response = good if label else bad
    return [{"text": f"{prompt}\n\n{response}", "label": label, "group": f"prompt:{prompt[:500]}",
             "context": prompt}]


def format_pairwise(rec: dict[str, Any], pool: str, i: int) -> list[dict[str, Any]]:
    prompt, good, bad = split_pair(rec)
    label = int(coin(f"hh-pair|{prompt}|{good}|{bad}"))
    a, b = (good, bad) if label else (bad, good)
    # responses start with "Assistant:"; name them A and B instead
    a, b = (r.removeprefix("Assistant:").strip() for r in (a, b))
    return [{"text": f"{prompt}\n\nResponse A: {a}\n\nResponse B: {b}\n\nIs A better than B?", "label": label,
             "group": f"prompt:{prompt[:500]}", "context": prompt}]


def load_hh(root: Path) -> Records:
    """The hh-rlhf repository's ``{subset}/{train,test}.jsonl.gz`` for every subset present. In
    ../shared/data only ``harmless-base/test.jsonl.gz`` exists: it becomes the whole pool and the
    task carves its test pool (the other files are Git LFS pointers there)."""
    found = {s: [root / sub / f"{s}.jsonl.gz" for sub in SUBSETS if (root / sub / f"{s}.jsonl.gz").is_file()]
             for s in ("train", "test")}
    if not found["train"] and not found["test"]:
        raise W2SError(f"task 'anthropic_hh': no hh-rlhf files under {root}; looked for "
                       f"{{{','.join(SUBSETS)}}}/{{train,test}}.jsonl.gz")
    recs = {s: [r for p in paths for r in read_jsonl(p)] for s, paths in found.items()}
    return {"train": recs["train"], "test": recs["test"]} if recs["train"] else {"hh_test": recs["test"]}
