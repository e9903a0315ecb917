"""Every task whose files are in ../shared/data, loaded from those files exactly as they are:
sizes, label balance, disjoint groups across splits, a formatted example checked by hand, and
the leakage audit (``w2sgen.tasks.leakage``). Data is found through ``require_data`` (skips
when absent, fails under W2S_REQUIRE_DATA=1)."""

from __future__ import annotations

import csv
import gzip
import json

import numpy as np
import pytest
from conftest import require_data

from w2sgen.config import SplitConfig
from w2sgen.errors import W2SError
from w2sgen.tasks import TASKS
from w2sgen.tasks.base import TaskData
from w2sgen.tasks.leakage import audit
from w2sgen.tasks.splits import make_splits

pytestmark = pytest.mark.integration

# task -> (train pool, test pool, (min, max) positive rate over both pools)
EXPECTED = {
    "sciq": (12679, 1000, (0.48, 0.52)),
    "sciq_with_support": (12671, 1000, (0.48, 0.52)),
    "boolq": (9427, 3270, (0.61, 0.63)),  # BoolQ is 62% yes
    "sst2": (66978, 872, (0.55, 0.56)),
    "cola": (8514, 1039, (0.69, 0.71)),  # 70% acceptable
    "cosmos_qa": (2344, 575, (0.49, 0.53)),
    "anthropic_hh": (1853, 459, (0.48, 0.53)),
    "anthropic_hh_pairwise": (1853, 459, (0.48, 0.53)),
    "piqa": (1482, 356, (0.48, 0.53)),
    "social_i_qa": (1573, 361, (0.48, 0.53)),
    "openbookqa": (412, 88, (0.46, 0.54)),
    "hellaswag": (19990, 8517, (0.46, 0.49)),  # recast val is 41% positive
    "mc_taco": (3782, 9442, (0.32, 0.35)),  # a third of the candidates are plausible
    "multirc": (27235, 4847, (0.43, 0.45)),
    "twitter_sentiment": (1131, 6347, (0.42, 0.44)),  # val 72% positive, test 37%
}
FOLDER = {"sciq_with_support": "sciq", "anthropic_hh_pairwise": "anthropic_hh"}
_CACHE: dict[str, TaskData] = {}


def load(name: str) -> TaskData:
    if name not in _CACHE:
        _CACHE[name] = TASKS.get(name).load(data_dir=require_data(FOLDER.get(name, name)))
    return _CACHE[name]


def pool(task: TaskData, p: str):
    return task.frame[task.frame["pool"] == p]


@pytest.mark.parametrize("name", list(EXPECTED))
def test_sizes_and_balance(name):
    task = load(name)
    n_train, n_test, (lo, hi) = EXPECTED[name]
    assert (len(pool(task, "train")), len(pool(task, "test"))) == (n_train, n_test)
    assert lo <= task.frame["label"].mean() <= hi
    assert set(task.frame["label"]) == {0, 1}
    assert task.frame["id"].is_unique
    assert (task.frame.groupby("group")["pool"].nunique() == 1).all()


# The local openbookqa copy holds 88 test examples: under the default splits.min_test (200) it is refused,
# so this test lowers the minimum explicitly for it.
LOWERED = {"openbookqa": {"min_test": 88}}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_splits_keep_groups_whole(name):
    task = load(name)
    if name in LOWERED:
        with pytest.raises(W2SError, match=r"split 'test' has \d+ examples, under splits.min_test=200"):
            make_splits(task, SplitConfig(), seed=0)
    s = make_splits(task, SplitConfig(**LOWERED.get(name, {})), seed=0)
    groups = {k: set(task.frame["group"].to_numpy()[s[k]]) for k in ("weak_train", "transfer", "val", "test")}
    keys = list(groups)
    for i, a in enumerate(keys):
        for b in keys[i + 1:]:
            assert not groups[a] & groups[b], (a, b)
    assert set(task.frame["pool"].to_numpy()[s["test"]]) == {"test"}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_leakage_audit(name):
    """At most majority + 3 points, or the documented artifact of the dataset, at its documented score."""
    spec, task = TASKS.get(name), load(name)
    result = audit(task)
    if spec.leakage is None:
        assert result.passed, str(result)
    else:
        assert result.accuracy == pytest.approx(spec.leakage.score, abs=0.005), str(result)
        assert not result.passed  # still an artifact; drop the note once a format fix removes it
        assert f"{spec.leakage.score:.3f}" in spec.leakage.note


def test_truncation_is_reported_and_never_cuts_the_answer():
    for name in ("multirc", "boolq", "sciq_with_support", "anthropic_hh"):
        task, spec = load(name), TASKS.get(name)
        assert 0 < task.truncated_fraction < 1 and any("truncated" in n for n in task.notes), name
        cut = task.frame[task.frame["text"].str.startswith("…")]  # "… " or, context gone, "…"
        assert len(cut) == task.n_truncated
        # within max_chars, unless the whole context is gone and the rest alone is longer
        assert ((cut["text"].str.len() <= spec.max_chars) | (cut["text"].str.startswith("…\n"))).all()
        if "answer" in cut.columns:
            assert all(t.endswith(a) for t, a in zip(cut["text"], cut["answer"], strict=True))
    assert load("multirc").truncated_fraction == pytest.approx(25583 / 32082, abs=1e-3)


# ====================================================================== examples checked by hand
def first(task: TaskData):
    return task.frame.iloc[0]


def test_boolq_example_and_train_recovery():
    row = first(load("boolq"))
    assert row["label"] == 0 and row["id"] == "boolq:train:0"
    assert row["text"].startswith("Home Run Derby -- Some notable performances in the Derby include Bobby Abreu")
    assert row["text"].endswith("\nQuestion: do you have to be an all-star to be in the home run derby?")
    test = pool(load("boolq"), "test")
    assert test["text"].iloc[0].startswith("… Geographic Magazine point to modest results for corn ethanol")
    assert test["text"].iloc[0].endswith("\nQuestion: does ethanol take more energy make that produces?")
    whole = test[~test["text"].str.startswith("…")]
    assert whole["text"].str.contains(" -- ").all()  # dev passages get their title, as train has
    assert not set(pool(load("boolq"), "train")["group"]) & set(test["group"])


def test_cola_example_and_no_mark_column():
    f = load("cola").frame
    assert f.iloc[0][["text", "label"]].tolist() == ["Our friends won't buy this analysis, let alone the next one we propose.", 1]
    assert not f["text"].str.startswith("*").any()  # the '*' mark column is dropped
    raw = (require_data("cola") / "cola_public/raw/in_domain_dev.tsv").read_text().splitlines()[0].split("\t")
    assert pool(load("cola"), "test").iloc[0]["text"] == raw[3] and int(raw[1]) == pool(load("cola"), "test").iloc[0]["label"]


def test_cosmos_qa_examples_match_valid_csv():
    with (require_data("cosmos_qa") / "data/valid.csv").open(encoding="utf-8", newline="") as f:
        recs = list(csv.DictReader(f))
    task = load("cosmos_qa")
    assert len(recs) == 2985 and len(task) == 2985 - 66  # repeated texts dropped (noted)
    for _, row in task.frame.head(200).iterrows():
        rec = recs[int(row["id"].split(":")[-1])]
        answers = [" ".join(rec[f"answer{k}"].split()) for k in range(4)]
        correct = answers[int(rec["label"])]
        assert row["text"].endswith(f"\nQ: {' '.join(rec['question'].split())} A: {row['answer']}")
        assert (row["answer"] == correct) == (row["label"] == 1) and row["answer"] in answers
    assert first(task)["text"].startswith("Do i need to go for a legal divorce ?")


def test_anthropic_hh_formats():
    raw = json.loads(gzip.open(require_data("anthropic_hh") / "harmless-base/test.jsonl.gz", "rt").readline())
    single, pair = first(load("anthropic_hh")), first(load("anthropic_hh_pairwise"))
    assert single["text"].startswith("Human: what are some pranks with a pen i can do?")
    assert single["label"] == 1 and single["text"].endswith(raw["chosen"].split("\n\nAssistant:")[-1].strip())
    a = pair["text"].split("\n\nResponse A: ")[1].split("\n\nResponse B: ")[0]
    assert pair["label"] == 0 and a == raw["rejected"].split("\n\nAssistant:")[-1].strip()  # A is the rejected one
    assert pair["text"].endswith("\n\nIs A better than B?")
    # both formats carve the same prompts into their test pools
    assert set(pool(load("anthropic_hh"), "test")["group"]) == set(pool(load("anthropic_hh_pairwise"), "test")["group"])


def test_piqa_and_social_i_qa_examples():
    row = first(load("piqa"))
    assert row["text"] == ("Goal: How do I ready a guinea pig cage for it's new occupants?\nSolution: Provide the "
                           "guinea pig with a cage full of a few inches of bedding made of ripped jeans material, you "
                           "will also need to supply it with a water bottle and a food dish.")
    assert row["label"] == 0  # dev-labels.lst line 1 is 0 (sol1, paper strips); sol2 is shown
    row = first(load("social_i_qa"))
    assert row["text"] == "Tracy didn't go home that evening and resisted Riley's attacks.\nQ: What does Tracy need to do before this? A: make a new plan"
    assert row["label"] == 0  # dev-labels.lst line 1 is 3: 'Find somewhere to go'


def test_openbookqa_answers_are_text_never_letters():
    task = load("openbookqa")
    row = first(task)
    assert row["text"].endswith("the best way to save money is to A: have lunch with friends") and row["label"] == 0
    assert not task.frame["answer"].str.match(r"^[A-D]\. ").any()
    pos = task.frame[task.frame["label"] == 1]
    assert pos.iloc[0]["answer"] == "a marsh"  # 'A. a marsh' in the file


def test_hellaswag_mc_taco_multirc_twitter_examples():
    row = first(load("hellaswag"))
    assert row["text"].startswith("[header] How to treat your girlfriend like a princess [title] Be respectful")
    assert "\nEnding: " in row["text"] and row["label"] == 1
    row = first(load("mc_taco"))
    assert row["text"] == ("Islam later emerged as the majority religion during the centuries of Ottoman rule, though "
                           "a significant Christian minority remained.\nQ: Is Islam still the majority religion? A: it "
                           "sometimes was") and row["label"] == 0
    assert load("mc_taco").frame["group"].nunique() == 561 + 1332  # questions of dev and test
    multirc = load("multirc")
    assert multirc.frame["group"].nunique() == 456 + 83
    pos = pool(multirc, "test").iloc[0]
    assert pos["text"].endswith("\nQ: Would the mass of a baseball affect how much force you have to use to pick it up? A: No")
    assert pos["label"] == 0
    row = first(load("twitter_sentiment"))  # the first val tweet is neutral: dropped
    assert row["id"] == "twitter_sentiment:train:1" and row["label"] == 1
    assert row["text"] == '"National hot dog day, national tequila day, then national dance day... Sounds like a Friday night."'


def test_sciq_with_support_keeps_the_question_and_answer_whole():
    task = load("sciq_with_support")
    row = first(task)
    assert row["text"].startswith("Mesophiles grow best in moderate temperature")
    assert row["text"].endswith(f"\nQ: What type of organism is commonly used in preparation of foods such as cheese and yogurt? A: {row['answer']}")
    assert (pool(task, "test")["answer"].str.len() > 0).all()
    assert np.isclose(pool(task, "test")["label"].mean(), 0.523, atol=0.001)
