"""Local loaders on tiny files in each dataset's original release layout (the layouts that
../shared/data does not hold): the same records as the hub schema, split into the right pools."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from w2sgen.errors import W2SError
from w2sgen.tasks import TASKS


def jsonl(path: Path, recs: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in recs), encoding="utf-8")


def texts(task, pool: str) -> list[str]:
    return task.frame.loc[task.frame["pool"] == pool, "text"].tolist()


def test_paws_final_tsv(tmp_path):
    d = tmp_path / "final"
    d.mkdir()
    for n, s in (("train", "a"), ("dev", "b"), ("test", "c")):
        (d / f"{n}.tsv").write_text(f"id\tsentence1\tsentence2\tlabel\n1\t{s} one\t{s} two\t1\n", encoding="utf-8")
    task = TASKS.get("paws").load(data_dir=tmp_path)
    assert texts(task, "test") == ["Sentence 1: c one\nSentence 2: c two\nParaphrase?"]
    assert len(texts(task, "train")) == 2


def test_wic_original_and_superglue_layouts(tmp_path):
    for split, word in (("train", "bank"), ("dev", "run")):
        d = tmp_path / "orig" / split
        d.mkdir(parents=True)
        (d / f"{split}.data.txt").write_text(f"{word}\tN\t1-2\tThe {word} one.\tA {word} two.\n", encoding="utf-8")
        (d / f"{split}.gold.txt").write_text("T\n", encoding="utf-8")
    orig = TASKS.get("wic").load(data_dir=tmp_path / "orig")
    assert texts(orig, "test") == ["Sentence 1: The run one.\nSentence 2: A run two.\nSame meaning of 'run'?"]
    assert orig.frame["label"].tolist() == [1, 1]
    rec = lambda w: {"word": w, "sentence1": f"The {w} one.", "sentence2": f"A {w} two.", "label": True}  # noqa: E731
    jsonl(tmp_path / "sg" / "WiC" / "train.jsonl", [rec("bank")])
    jsonl(tmp_path / "sg" / "WiC" / "val.jsonl", [rec("run")])
    assert TASKS.get("wic").load(data_dir=tmp_path / "sg").fingerprint() == orig.fingerprint()


def test_quartz_original_schema(tmp_path):
    rec = {"id": "q", "question": {"stem": "More heat?", "choices": [{"text": "faster", "label": "A"},
                                                                    {"text": "slower", "label": "B"}]},
           "answerKey": "B", "para": "Heat slows it.", "para_id": "p1"}
    for n in ("train", "dev", "test"):
        jsonl(tmp_path / "quartz-dataset-v1-aug2019" / f"{n}.jsonl", [dict(rec, para_id=f"p-{n}")])
    task = TASKS.get("quartz").load(data_dir=tmp_path)
    for row in task.frame.itertuples():
        assert row.text == f"Heat slows it.\nQ: More heat? A: {row.answer}"
        assert (row.answer == "slower") == (row.label == 1)


def test_dream_original_json(tmp_path):
    item = [["M: Tea?", "W: Yes, please."], [{"question": "What does she want?", "choice": ["Tea.", "Coffee.", "Water."],
                                             "answer": "Tea."}], "d-1"]
    d = tmp_path / "data"
    d.mkdir()
    for n in ("train", "dev", "test"):
        dialogue = item[0] if n == "test" else [f"M: Tea, {n}?", "W: Yes, please."]
        (d / f"{n}.json").write_text(json.dumps([[dialogue, item[1], f"{item[2]}-{n}"]]), encoding="utf-8")
    task = TASKS.get("dream").load(data_dir=tmp_path)
    assert len(texts(task, "train")) == 2 and len(texts(task, "test")) == 1
    assert texts(task, "test")[0].startswith("M: Tea?\nW: Yes, please.\nQ: What does she want? A: ")
    (d / "test.json").write_text(json.dumps([{"not": "a list"}]), encoding="utf-8")
    with pytest.raises(W2SError, match=r"test\.json: item 1: expected \[dialogue, questions, dialogue_id\]"):
        TASKS.get("dream").load(data_dir=tmp_path)


def test_amazon_polarity_csv(tmp_path):
    d = tmp_path / "amazon_review_polarity_csv"
    d.mkdir()
    (d / "train.csv").write_text('"2","Great","Loved it, really."\n"1","Bad","Broke."\n', encoding="utf-8")
    (d / "test.csv").write_text('"1","Meh","Dull."\n', encoding="utf-8")
    task = TASKS.get("amazon_polarity").load(data_dir=tmp_path)
    assert texts(task, "train") == ["Title: Great\nReview: Loved it, really.", "Title: Bad\nReview: Broke."]
    assert task.frame["label"].tolist() == [1, 0, 0]
    (d / "test.csv").write_text('"3","Odd","?"\n', encoding="utf-8")
    with pytest.raises(W2SError, match=r"test\.csv:1: field 'class': '3' is not 1 or 2"):
        TASKS.get("amazon_polarity").load(data_dir=tmp_path)


def test_quail_and_hellaswag_and_openbookqa_originals(tmp_path):
    q = {"context": "Ann met Bob.", "question": "Who met Bob?", "answers": ["Ann", "Cy", "Di", "Ed"],
         "correct_answer_id": 0, "context_id": "c1"}
    jsonl(tmp_path / "quail" / "train.jsonl", [dict(q, context_id="c0", question="Who?")])
    jsonl(tmp_path / "quail" / "dev.jsonl", [q])
    task = TASKS.get("quail").load(data_dir=tmp_path)  # the parent folder holds quail/
    assert texts(task, "test")[0].startswith("Ann met Bob.\nQ: Who met Bob? A: ")

    h = {"ind": 1, "ctx": "A man lifts a bar.", "endings": ["He drops it.", "He sings.", "It flies.", "He eats."],
         "label": 0, "activity_label": "Lifting"}
    jsonl(tmp_path / "hs" / "hellaswag_train.jsonl", [dict(h, ctx="A dog runs.")])
    jsonl(tmp_path / "hs" / "hellaswag_val.jsonl", [h])
    task = TASKS.get("hellaswag").load(data_dir=tmp_path / "hs")
    row = task.frame[task.frame["pool"] == "test"].iloc[0]
    assert row["text"] == f"A man lifts a bar.\nEnding: {row['answer']}"
    assert (row["answer"] == "He drops it.") == (row["label"] == 1)

    o = {"id": "7-1", "question": {"stem": "Fog forms near", "choices": [{"text": "a marsh", "label": "A"},
                                                                       {"text": "a desert", "label": "B"}]},
         "answerKey": "A"}
    for n in ("train", "dev", "test"):
        jsonl(tmp_path / "obqa" / "Data" / "Main" / f"{n}.jsonl", [dict(o, id=n, question=dict(o["question"], stem=f"{n}: fog"))])
    task = TASKS.get("openbookqa").load(data_dir=tmp_path / "obqa")
    assert len(texts(task, "train")) == 2 and texts(task, "test")[0].startswith("Q: test: fog A: a ")


def test_piqa_siqa_with_train_files_use_dev_as_test(tmp_path):
    for n, goal in (("train", "Open a jar"), ("dev", "Boil an egg")):
        jsonl(tmp_path / "piqa" / f"{n}.jsonl", [{"goal": goal, "sol1": "use water", "sol2": "use fire"}])
        (tmp_path / "piqa" / f"{n}-labels.lst").write_text("1\n")
    task = TASKS.get("piqa").load(data_dir=tmp_path / "piqa")
    assert texts(task, "test")[0].startswith("Goal: Boil an egg\nSolution: ")
    assert not any("carved" in n or "form the test pool" in n for n in task.notes)
    for n, ctx in (("train", "Sam ate."), ("dev", "Kim ran.")):
        jsonl(tmp_path / "siqa" / f"{n}.jsonl", [{"context": ctx, "question": "Why?", "answerA": "a", "answerB": "b",
                                                  "answerC": "c"}])
        (tmp_path / "siqa" / f"{n}-labels.lst").write_text("2\n")
    task = TASKS.get("social_i_qa").load(data_dir=tmp_path / "siqa")
    row = task.frame[task.frame["pool"] == "test"].iloc[0]
    assert row["text"].startswith("Kim ran.\nQ: Why? A: ") and (row["answer"] == "b") == (row["label"] == 1)


def test_boolq_original_and_twitter_with_train(tmp_path):
    rec = lambda q, a: {"question": q, "title": "Cats", "answer": a, "passage": "Cats purr."}  # noqa: E731
    jsonl(tmp_path / "boolq" / "train.jsonl", [rec("do cats purr", True)])
    jsonl(tmp_path / "boolq" / "dev.jsonl", [rec("do cats bark", False)])
    task = TASKS.get("boolq").load(data_dir=tmp_path / "boolq")
    assert texts(task, "train") == ["Cats -- Cats purr.\nQuestion: do cats purr?"]
    assert task.frame["label"].tolist() == [1, 0]

    d = tmp_path / "tw" / "datasets" / "sentiment"
    d.mkdir(parents=True)
    for split, lines in (("train", ["good day", "meh", "bad day"]), ("val", ["great"]), ("test", ["awful"])):
        (d / f"{split}_text.txt").write_text("\n".join(lines) + "\n")
        (d / f"{split}_labels.txt").write_text("\n".join({"good day": "2", "meh": "1", "bad day": "0", "great": "2",
                                                          "awful": "0"}[x] for x in lines) + "\n")
    task = TASKS.get("twitter_sentiment").load(data_dir=tmp_path / "tw")
    assert texts(task, "train") == ["good day", "bad day", "great"] and texts(task, "test") == ["awful"]
    (d / "val_labels.txt").write_text("2\n2\n")
    with pytest.raises(W2SError, match="val_labels.txt: 2 labels for 1 lines"):
        TASKS.get("twitter_sentiment").load(data_dir=tmp_path / "tw")


def test_hh_subsets_with_train_files(tmp_path):
    pair = lambda s: {"chosen": f"\n\nHuman: {s}?\n\nAssistant: Sure.", "rejected": f"\n\nHuman: {s}?\n\nAssistant: No."}  # noqa: E731
    for sub in ("harmless-base", "helpful-base"):
        for split in ("train", "test"):
            (tmp_path / sub).mkdir(exist_ok=True)
            with gzip.open(tmp_path / sub / f"{split}.jsonl.gz", "wt", encoding="utf-8") as f:
                f.write(json.dumps(pair(f"{sub} {split}")) + "\n")
    task = TASKS.get("anthropic_hh_pairwise").load(data_dir=tmp_path)
    assert len(texts(task, "train")) == 2 and len(texts(task, "test")) == 2
    row = task.frame.iloc[0]
    assert row["text"].startswith("Human: harmless-base train?\n\nResponse A: ")
    assert ("Response A: Sure." in row["text"]) == (row["label"] == 1)
