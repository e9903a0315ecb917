"""Generation tasks: registered tasks, data files with prompt/answer columns, splits without classes."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from conftest import require_data

from w2sgen.config import SplitConfig
from w2sgen.errors import W2SError
from w2sgen.generation import is_generation_task
from w2sgen.generation.tasks import arithmetic_records, gsm8k_answer, gsm8k_local
from w2sgen.tasks import TASKS, load_task
from w2sgen.tasks.splits import make_splits


def test_cities_gen_offline_questions_and_countries():
    task = load_task("cities_gen")
    assert task.kind == "generation" and task.checker_name == "exact" and len(task) > 5000
    row = task.frame.set_index("id").loc["city:Tokyo"]
    assert row["text"] == "In which country is the city of Tokyo?" and row["answer"] == "Japan"
    assert (task.frame["label"] == 1).all() and task.frame["group"].is_unique
    assert is_generation_task("cities_gen") and not is_generation_task("cities")


def _evaluate(question: str) -> int:
    words = question.replace("?", ".").split(". ")
    x = int(words[0].split()[-1])
    for w in words[1:]:
        if w.startswith("Add"):
            x += int(w.split()[-1])
        elif w.startswith("Subtract"):
            x -= int(w.split()[-1])
        elif w.startswith("Multiply"):
            x *= int(w.split()[-1])
    return x


def test_arithmetic_answers_are_right_and_settings_change_the_task():
    recs = arithmetic_records(n=50, steps=3, digits=1)["train"]
    assert len({r["question"] for r in recs}) == 50
    assert all(_evaluate(r["question"]) == int(r["answer"]) for r in recs)
    assert all(r["question"].count(".") == 4 for r in recs)  # start + 3 steps
    spec = TASKS.get("arithmetic")
    small = spec.load(task_args={"n": 30, "steps": 1})
    assert len(small) == 30 and small.checker_name == "numeric"
    assert spec.load(task_args={"n": 30, "steps": 1}).fingerprint() == small.fingerprint()
    assert spec.load(task_args={"n": 30, "steps": 2}).fingerprint() != small.fingerprint()
    with pytest.raises(W2SError, match="no setting 'level'.*steps"):
        spec.load(task_args={"level": 3})
    with pytest.raises(W2SError, match="gen.task_args.steps"):
        spec.load(task_args={"steps": 0})


def test_gsm8k_solution_on_one_line_and_local_files(tmp_path):
    sol = "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nIn all 48+24 = <<48+24=72>>72 clips.\n#### 72"
    assert gsm8k_answer(sol) == "Natalia sold 48/2 = 24 clips in May. In all 48+24 = 72 clips. #### 72"
    for pool in ("train", "test"):
        (tmp_path / f"{pool}.jsonl").write_text(json.dumps({"question": f"Q {pool}?", "answer": sol}) + "\n")
    assert set(gsm8k_local(tmp_path)) == {"train", "test"}
    task = TASKS.get("gsm8k").load(tmp_path)
    assert task.checker_name == "numeric" and task.checker("so #### 72", task.frame["answer"].iloc[0])
    assert set(task.frame["pool"]) == {"train", "test"}


def test_sciq_gen_from_the_local_release():
    task = TASKS.get("sciq_gen").load(require_data("sciq"))
    assert (task.frame["pool"] == "test").sum() > 900
    assert task.frame["answer"].str.len().min() > 0 and not task.frame["text"].str.startswith("Q:").any()


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_data_file_with_prompt_and_answer_is_a_generation_task(tmp_path, suffix):
    rows = [{"prompt": f"What is {i} + 1?", "answer": str(i + 1), "group": f"g{i // 2}"} for i in range(6)]
    p = tmp_path / f"qa{suffix}"
    frame = pd.DataFrame(rows)
    if suffix == ".jsonl":
        p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif suffix == ".csv":
        frame.to_csv(p, index=False)
    else:
        frame.to_parquet(p)
    assert is_generation_task(str(p))
    task = load_task(str(p))
    assert task.kind == "generation" and task.frame["answer"].tolist() == [str(i + 1) for i in range(6)]
    assert task.frame["group"].nunique() == 3


def test_data_file_errors_name_the_line_and_field(tmp_path):
    p = tmp_path / "qa.jsonl"
    p.write_text(json.dumps({"prompt": "a?", "answer": "b"}) + "\n" + json.dumps({"prompt": "c?", "answer": ""}) + "\n")
    with pytest.raises(W2SError, match=r"qa.jsonl:2: field 'answer'"):
        load_task(str(p))


@pytest.mark.parametrize("suffix, answer, match", [
    (".jsonl", "paris\nfrance", r"qa.jsonl:2: field 'answer': 'paris\\nfrance' spans several lines.*one line"),
    (".csv", "paris\r\nfrance", r"qa.csv:[34]: field 'answer'.*spans several lines.*decoding stops at a newline"),
    (".jsonl", ["france", "republique francaise"], r"qa.jsonl:2: field 'answer': a list .*single string"),
    (".jsonl", {"country": "france"}, r"qa.jsonl:2: field 'answer': a dict .*single string"),
    (".parquet", ["france", "fr"], r"qa.parquet:1: field 'answer': a list \(\['france', 'fr'\]\).*single string"),
])
def test_an_answer_no_output_can_match_is_refused(tmp_path, suffix, answer, match):
    """Answers are written on one line and compared as text: several lines or a list could never be right."""
    rows = [{"prompt": "a?", "answer": "b"}, {"prompt": "c?", "answer": answer}]
    p = tmp_path / f"qa{suffix}"
    if suffix == ".jsonl":
        p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif suffix == ".csv":
        pd.DataFrame(rows).to_csv(p, index=False)
    else:  # a list column: every row a list, the first refused
        pd.DataFrame(rows[1:]).to_parquet(p)
    assert is_generation_task(str(p))
    with pytest.raises(W2SError, match=match):
        load_task(str(p))


def test_fingerprint_holds_the_answers(tmp_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_text(json.dumps({"prompt": "p?", "answer": "x", "id": "1"}) + "\n")
    b.write_text(json.dumps({"prompt": "p?", "answer": "y", "id": "1"}) + "\n")
    assert load_task(str(a)).fingerprint() != load_task(str(b)).fingerprint()


def test_splits_need_no_classes_and_balance_is_refused():
    task = TASKS.get("arithmetic").load(task_args={"n": 400})
    splits = make_splits(task, SplitConfig(max_examples=400, min_test=100, min_val=50), seed=0)
    assert sum(splits.sizes().values()) >= 390
    with pytest.raises(W2SError, match="generation task.*--balance"):
        make_splits(task, SplitConfig(balance=True), seed=0)


def test_a_task_may_name_its_own_checker_function():
    from w2sgen.generation.tasks import GenTaskSpec, format_arithmetic

    def within_one(output: str, gold: str) -> bool:
        from w2sgen.generation.checkers import last_number

        x = last_number(output)
        return x is not None and abs(x - float(gold)) <= 1

    spec = GenTaskSpec(name="approx", description="", format=format_arithmetic, checker=within_one,
                       generate=lambda: {"train": [{"question": "Start with 3. What is the result?", "answer": "3"}]})
    task = spec.load()
    assert task.checker_name == "within_one" and task.checker("about 4", "3") and not task.checker("5", "3")
    assert task.with_checker("exact").checker_name == "exact" and not task.with_checker("exact").checker("4", "3")
