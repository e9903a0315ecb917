"""Tasks whose records are binary (or made binary) already: single sentences and sentence pairs.

Each formatter reads a record in the hub's schema; each local loader turns the original release
files into that schema.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import W2SError
from .common import Records, coin, norm, optional, pick, read_jsonl, read_lines, read_table, require


def _label(rec: dict[str, Any], allowed: tuple[Any, ...], field: str = "label") -> Any:
    require(rec, (field,))
    if rec[field] not in allowed:
        raise W2SError(f"{rec.get('_where', 'record')}: field {field!r}: {rec[field]!r} is not one of {list(allowed)}")
    return rec[field]


# ---------------------------------------------------------------- CoLA
def format_cola(rec: dict[str, Any], pool: str, i: int) -> list[dict[str, Any]]:
    """CoLA: the sentence alone (label 1 = acceptable); never the raw files' '*' mark column."""
    require(rec, ("sentence",))
    label = int(_label(rec, (0, 1, "0", "1")))
    text = norm(rec["sentence"])
    return [{"text": text, "label": label, "group": f"text:{text.lower()}"}]


def load_cola(root: Path) -> Records:
    """CoLA public release ``cola_public/raw/{in_domain_train,in_domain_dev,out_of_domain_dev}.tsv``
    (no header: source, label, original mark, sentence; the mark repeats the label and is dropped).
    Train is the training pool; both dev files (= GLUE validation) are the test pool."""
    tr = pick(root, ["cola_public/raw/in_domain_train.tsv", "raw/in_domain_train.tsv", "in_domain_train.tsv"],
              "cola", "in_domain_train.tsv")
    names = ["source", "label", "mark", "sentence"]
    strip = lambda rows: [{k: v for k, v in r.items() if k != "mark"} for r in rows]  # noqa: E731
    rd = lambda n: strip(read_table(tr.parent / n, header=False, names=names))  # noqa: E731
    return {"train": rd("in_domain_train.tsv"), "test": rd("in_domain_dev.tsv") + rd("out_of_domain_dev.tsv")}


# ---------------------------------------------------------------- TweetEval sentiment
def format_twitter(rec: dict[str, Any], pool: str, i: int) -> list[dict[str, Any]]:
    """TweetEval sentiment, binary: positive (2) = 1, negative (0) = 0; neutral (1) tweets are dropped."""
    require(rec, ("text",))
    label = int(_label(rec, (0, 1, 2, "0", "1", "2")))
    if label == 1:
        return []
    text = norm(rec["text"])
    return [{"text": text, "label": int(label == 2), "group": f"text:{text.lower()}"}]


def load_twitter(root: Path) -> Records:
    """TweetEval ``datasets/sentiment/{train,val,test}_{text,labels}.txt`` (line-aligned); train and
    val feed the training pool (../shared/data has val only), test is the test pool."""
    test = pick(root, ["datasets/sentiment/test_text.txt", "sentiment/test_text.txt", "test_text.txt"],
                "twitter_sentiment", "test_text.txt")

    def rd(split: str) -> list[dict[str, Any]]:
        tp, lp = test.parent / f"{split}_text.txt", test.parent / f"{split}_labels.txt"
        if not tp.is_file():
            return []
        texts, labels = read_lines(tp), read_lines(lp)
        if len(texts) != len(labels):
            raise W2SError(f"{lp}: {len(labels)} labels for {len(texts)} lines of {tp.name}; the files must align")
        return [{"text": t, "label": y.strip(), "_where": f"{lp}:{n}"}
                for n, (t, y) in enumerate(zip(texts, labels, strict=True), start=1)]

    return {"train": rd("train") + rd("val"), "test": rd("test")}


# ---------------------------------------------------------------- Amazon polarity
def format_amazon(rec: dict[str, Any], pool: str, i: int) -> list[dict[str, Any]]:
    """Amazon review polarity: 'Title: … Review: …' (label 1 = positive)."""
    require(rec, ("title", "content"))
    label = int(_label(rec, (0, 1)))
    return [{"text": f"Title: {norm(rec['title'])}\nReview: {norm(rec['content'])}", "label": label}]


def load_amazon(root: Path) -> Records:
    """The original ``amazon_review_polarity_csv/{train,test}.csv`` (no header: class 1/2, title, text)."""
    test = pick(root, ["amazon_review_polarity_csv/test.csv", "test.csv"], "amazon_polarity", "test.csv")

    def rd(name: str) -> list[dict[str, Any]]:
        rows = read_table(test.parent / name, ",", header=False, names=["cls", "title", "content"])
        for r in rows:
            if r["cls"] not in ("1", "2"):
                raise W2SError(f"{r['_where']}: field 'class': {r['cls']!r} is not 1 or 2")
        return [dict(r, label=int(r["cls"] == "2")) for r in rows]

    return {"train": rd("train.csv"), "test": rd("test.csv")}


# ---------------------------------------------------------------- PAWS
def format_paws(rec: dict[str, Any], pool: str, i: int) -> list[dict[str, Any]]:
    """PAWS (labeled_final): is sentence 2 a paraphrase of sentence 1?"""
    require(rec, ("sentence1", "sentence2"))
    label = int(_label(rec, (0, 1, "0", "1")))
    s1, s2 = norm(rec["sentence1"]), norm(rec["sentence2"])
    return [{"text": f"Sentence 1: {s1}\nSentence 2: {s2}\nParaphrase?", "label": label,
             "group": f"s1:{s1.lower()}"}]


def load_paws(root: Path) -> Records:
    """PAWS-Wiki labeled final ``final/{train,dev,test}.tsv`` (id, sentence1, sentence2, label)."""
    test = pick(root, ["final/test.tsv", "test.tsv"], "paws", "final/test.tsv")
    rd = lambda n: read_table(test.parent / n)  # noqa: E731
    return {"train": rd("train.tsv") + rd("dev.tsv"), "test": rd("test.tsv")}


# ---------------------------------------------------------------- WiC
def format_wic(rec: dict[str, Any], pool: str, i: int) -> list[dict[str, Any]]:
    """WiC: is ``word`` used in the same sense in both sentences?"""
    require(rec, ("word", "sentence1", "sentence2"))
    label = int(_label(rec, (0, 1, True, False)))
    s1, s2 = norm(rec["sentence1"]), norm(rec["sentence2"])
    return [{"text": f"Sentence 1: {s1}\nSentence 2: {s2}\nSame meaning of '{rec['word']}'?", "label": label,
             "group": f"word:{rec['word']}|{min(s1, s2)}"}]


def load_wic(root: Path) -> Records:
    """SuperGLUE ``WiC/{train,val}.jsonl`` (val is the test pool), or the original WiC release
    ``{train,dev}/{x}.data.txt`` + ``{x}.gold.txt`` (word, POS, indices, sentence 1, sentence 2; T/F)."""
    sg = optional(root, ["WiC/val.jsonl", "val.jsonl"])
    if sg is not None:
        return {"train": read_jsonl(sg.with_name("train.jsonl")), "test": read_jsonl(sg)}
    dev = pick(root, ["WiC/val.jsonl", "dev/dev.data.txt", "WiC_dataset/dev/dev.data.txt"], "wic", "WiC dev data")

    def rd(split: str) -> list[dict[str, Any]]:
        data = read_table(dev.parent.parent / split / f"{split}.data.txt", header=False,
                          names=["word", "pos", "index", "sentence1", "sentence2"])
        gold = read_lines(dev.parent.parent / split / f"{split}.gold.txt")
        if len(gold) != len(data):
            raise W2SError(f"{split}.gold.txt: {len(gold)} labels for {len(data)} rows of {split}.data.txt")
        return [dict(r, label=int(g.strip() == "T")) for r, g in zip(data, gold, strict=True)]

    return {"train": rd("train"), "test": rd("dev")}


# ---------------------------------------------------------------- ANLI round 2
def format_anli(rec: dict[str, Any], pool: str, i: int) -> list[dict[str, Any]]:
    """ANLI: premise and hypothesis; entailment = 1, contradiction = 0, neutral dropped."""
    require(rec, ("premise", "hypothesis"))
    label = _label(rec, (0, 1, 2, "e", "n", "c"))
    if label in (1, "n"):
        return []
    p = norm(rec["premise"])
    return [{"text": f"{p}\nHypothesis: {norm(rec['hypothesis'])}\nTrue?", "label": int(label in (0, "e")),
             "group": f"premise:{p}", "context": p}]


def load_anli(root: Path) -> Records:
    """The original ANLI release ``anli_v1.0/R2/{train,dev,test}.jsonl`` (context, hypothesis, label e/n/c)."""
    test = pick(root, ["anli_v1.0/R2/test.jsonl", "R2/test.jsonl", "test.jsonl"], "anli_r2", "R2/test.jsonl")
    rd = lambda n: [dict(r, premise=r.get("context")) for r in read_jsonl(test.parent / n)]  # noqa: E731
    return {"train": rd("train.jsonl") + rd("dev.jsonl"), "test": rd("test.jsonl")}


# ---------------------------------------------------------------- ETHICS
def format_deontology(rec: dict[str, Any], pool: str, i: int) -> list[dict[str, Any]]:
    """ETHICS deontology: a request or role and an excuse; 1 = the excuse is reasonable. Grouped by scenario."""
    require(rec, ("scenario", "excuse"))
    s = norm(rec["scenario"])
    return [{"text": f"Scenario: {s}\nExcuse: {norm(rec['excuse'])}\nReasonable?",
             "label": int(_label(rec, (0, 1, "0", "1"))), "group": f"scenario:{s}", "answer": norm(rec["excuse"])}]


def format_justice(rec: dict[str, Any], pool: str, i: int) -> list[dict[str, Any]]:
    """ETHICS justice: a claim of desert or impartiality; 1 = reasonable."""
    require(rec, ("scenario",))
    s = norm(rec["scenario"])
    return [{"text": f"{s}\nReasonable?", "label": int(_label(rec, (0, 1, "0", "1"))), "group": f"text:{s}"}]


def format_virtue(rec: dict[str, Any], pool: str, i: int) -> list[dict[str, Any]]:
    """ETHICS virtue: 'sentence [SEP] trait'; 1 = the trait fits. Grouped by sentence (each has five traits)."""
    require(rec, ("scenario",))
    sentence, _, trait = str(rec["scenario"]).partition(" [SEP] ")
    sentence, trait = norm(sentence), norm(trait)
    return [{"text": f"{sentence}\nTrait: {trait}", "label": int(_label(rec, (0, 1, "0", "1"))),
             "group": f"sentence:{sentence}", "answer": trait}]


def format_utilitarianism(rec: dict[str, Any], pool: str, i: int) -> list[dict[str, Any]]:
    """ETHICS utilitarianism: two scenarios, the pleasanter first in the source; shown in an order
    chosen by a coin seeded by the pair; label 1 = scenario A is the pleasanter."""
    require(rec, ("baseline", "less_pleasant"))
    better, worse = norm(rec["baseline"]), norm(rec["less_pleasant"])
    first = coin(f"utilitarianism|{better}|{worse}")
    a, b = (better, worse) if first else (worse, better)
    return [{"text": f"Scenario A: {a}\nScenario B: {b}\nIs A more pleasant than B?", "label": int(first),
             "group": f"pair:{better}"}]


def load_ethics(config: str):
    """The original ETHICS release ``ethics/{config}/{config}_{train,test}.csv`` (test_hard unused)."""

    def load(root: Path) -> Records:
        test = pick(root, [f"{config}/{config}_test.csv", f"{config}_test.csv", f"ethics/{config}/{config}_test.csv"],
                    f"ethics_{config}", f"{config}_test.csv")
        if config == "utilitarianism":
            rd = lambda n: read_table(test.parent / n, ",", header=False, names=["baseline", "less_pleasant"])  # noqa: E731
        else:
            rd = lambda n: read_table(test.parent / n, ",")  # noqa: E731
        return {"train": rd(f"{config}_train.csv"), "test": rd(f"{config}_test.csv")}

    return load
