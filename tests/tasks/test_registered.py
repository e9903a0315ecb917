"""The registered dataset tasks (sst2, sciq): the real release files, the hub layout, and errors.

Tests on the real files read them from $W2S_DATA_DIR (default: ../shared/data next to the repo)
and skip when it is absent, unless W2S_REQUIRE_DATA=1, where they fail instead.
"""

from __future__ import annotations

import csv
import json
import os
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from w2sgen.config import SplitConfig
from w2sgen.errors import W2SError
from w2sgen.tasks import TASKS, load_task
from w2sgen.tasks.base import TaskData
from w2sgen.tasks.splits import make_splits

REPO = Path(__file__).resolve().parents[2]


def data_dir(name: str | None = None) -> Path:
    """The real data folder (or its ``name`` subfolder); skip, or fail under W2S_REQUIRE_DATA=1."""
    env = os.environ.get("W2S_DATA_DIR")
    root = Path(env) if env else REPO.parent / "shared" / "data"
    path = root / name if name else root
    if not path.is_dir():
        msg = f"real data not found at {path} (set W2S_DATA_DIR)"
        if os.environ.get("W2S_REQUIRE_DATA") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    return path


def test_data_dir_skips_or_fails_when_absent(tmp_path, monkeypatch):
    monkeypatch.setenv("W2S_DATA_DIR", str(tmp_path / "absent"))
    monkeypatch.delenv("W2S_REQUIRE_DATA", raising=False)
    with pytest.raises(pytest.skip.Exception, match="W2S_DATA_DIR"):
        data_dir("sst2")
    monkeypatch.setenv("W2S_REQUIRE_DATA", "1")
    with pytest.raises(pytest.fail.Exception, match="absent"):
        data_dir("sst2")
    (tmp_path / "absent" / "sst2").mkdir(parents=True)
    assert data_dir("sst2") == tmp_path / "absent" / "sst2"


def pool(task: TaskData, name: str) -> pd.DataFrame:
    return task.frame[task.frame["pool"] == name]


def check_sciq_examples(task: TaskData, records: dict[str, list[dict]]) -> None:
    """Every example is 'Q: question A: answer', the answer correct iff the label is 1."""
    for p, recs in records.items():
        frame = pool(task, p)
        assert len(frame) == len(recs)
        for rec, text, label, ex_id in zip(recs, frame["text"], frame["label"], frame["id"], strict=True):
            prefix = f"Q: {rec['question']} A: "
            assert text.startswith(prefix), (ex_id, text)
            answer = text[len(prefix):]
            if label == 1:
                assert answer == rec["correct_answer"], ex_id
            else:
                assert label == 0
                assert answer in {rec["distractor1"], rec["distractor2"], rec["distractor3"]}, ex_id


def sciq_record(q: str) -> dict:
    return {"question": f"{q}?", "distractor1": f"{q}-d1", "distractor2": f"{q}-d2",
            "distractor3": f"{q}-d3", "correct_answer": f"{q}-right", "support": f"about {q}"}


# ====================================================================== real files: SST-2
@pytest.fixture(scope="module")
def sst2_real() -> TaskData:
    return TASKS.get("sst2").load(data_dir=data_dir("sst2"))


@pytest.mark.integration
def test_sst2_real_sizes_and_labels(sst2_real):
    test, train = pool(sst2_real, "test"), pool(sst2_real, "train")
    assert len(test) == 872  # GLUE dev, kept whole
    assert Counter(test["label"].tolist()) == {0: 428, 1: 444}
    assert 60_000 < len(train) <= 67_349  # GLUE train less repeated sentences
    assert set(sst2_real.frame["label"]) == {0, 1}
    assert sst2_real.num_classes == 2 and sst2_real.label_names == ["negative", "positive"]


@pytest.mark.integration
def test_sst2_real_test_pool_is_test_tsv(sst2_real):
    path = data_dir("sst2") / "data" / "SST-2" / "test.tsv"
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    test = pool(sst2_real, "test")
    assert test["text"].tolist() == [" ".join(r["sentence"].split()) for r in rows]
    assert test["label"].tolist() == [int(r["label"]) for r in rows]


@pytest.mark.integration
def test_sst2_real_no_text_shared_between_pools(sst2_real):
    f = sst2_real.frame
    assert not set(pool(sst2_real, "train")["text"]) & set(pool(sst2_real, "test")["text"])
    assert f["text"].is_unique
    assert (f.groupby("group")["pool"].nunique() == 1).all()
    assert (f["text"] == f["text"].str.split().str.join(" ")).all()  # whitespace normalised
    assert any("dropped" in n for n in sst2_real.notes)


@pytest.mark.integration
def test_sst2_real_from_the_parent_dir(sst2_real):
    from_parent = TASKS.get("sst2").load(data_dir=data_dir())
    assert from_parent.fingerprint() == sst2_real.fingerprint()


@pytest.mark.integration
def test_sst2_real_is_deterministic(sst2_real):
    via_cli = load_task("sst2", data_dir=str(data_dir("sst2")))
    assert via_cli.fingerprint() == sst2_real.fingerprint()


@pytest.mark.integration
def test_sst2_real_default_splits_use_the_test_pool(sst2_real):
    s = make_splits(sst2_real, SplitConfig(), seed=0)
    pools = sst2_real.frame["pool"].to_numpy()
    assert len(s["test"]) == 872 and set(pools[s["test"]]) == {"test"}
    assert s.sizes()["val"] == 1000


# ====================================================================== real files: SciQ
@pytest.fixture(scope="module")
def sciq_real() -> TaskData:
    return TASKS.get("sciq").load(data_dir=data_dir("sciq"))


@pytest.fixture(scope="module")
def sciq_json() -> dict[str, list[dict]]:
    root = data_dir("sciq") / "SciQ"
    read = lambda name: json.loads((root / name).read_text(encoding="utf-8"))  # noqa: E731
    return {"train": read("train.json") + read("valid.json"), "test": read("test.json")}


@pytest.mark.integration
def test_sciq_real_sizes_and_balance(sciq_real):
    assert len(pool(sciq_real, "test")) == 1000
    assert len(pool(sciq_real, "train")) == 11679 + 1000
    assert set(sciq_real.frame["label"]) == {0, 1}
    for p in ("train", "test"):
        assert 0.4 <= pool(sciq_real, p)["label"].mean() <= 0.6, p
    assert sciq_real.frame["id"].is_unique


@pytest.mark.integration
def test_sciq_real_first_example_by_hand(sciq_real, sciq_json):
    rec = sciq_json["train"][0]
    row = sciq_real.frame.iloc[0]
    assert row["id"] == "sciq:train:0" and row["pool"] == "train"
    assert rec["question"].startswith("What type of organism")
    distractors = {rec["distractor1"], rec["distractor2"], rec["distractor3"]}
    if row["label"] == 1:
        assert row["text"] == f"Q: {rec['question']} A: {rec['correct_answer']}"
    else:
        assert row["text"] in {f"Q: {rec['question']} A: {d}" for d in distractors}
    assert rec["support"][:30] not in row["text"]  # the support paragraph is left out


@pytest.mark.integration
def test_sciq_real_every_example_matches_its_record(sciq_real, sciq_json):
    check_sciq_examples(sciq_real, sciq_json)


@pytest.mark.integration
def test_sciq_real_parent_dir_and_determinism(sciq_real):
    from_parent = TASKS.get("sciq").load(data_dir=data_dir())
    assert from_parent.fingerprint() == sciq_real.fingerprint()
    assert load_task("sciq", data_dir=str(data_dir("sciq"))).fingerprint() == sciq_real.fingerprint()


# ====================================================================== the hub's layout (a local folder)
@pytest.fixture
def hf_cache(tmp_path, monkeypatch):
    """Keep datasets' cache inside tmp_path (nothing written to the home folder)."""
    datasets = pytest.importorskip("datasets")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    return tmp_path / "hf-cache"


SST2_TRAIN = [("a  good film ", 1), ("bad", 0), ("fine", 1), ("a good film", 1), ("dull", 0)]
SST2_VALIDATION = [("fine", 1), ("BAD", 0), ("tedious , slow", 0)]


def write_sst2_hub(root: Path, nested: bool) -> Path:
    for split, rows in (("train", SST2_TRAIN), ("validation", SST2_VALIDATION)):
        frame = pd.DataFrame({"idx": range(len(rows)), "sentence": [s for s, _ in rows],
                              "label": [y for _, y in rows]})
        path = root / "data" / f"{split}-00000-of-00001.parquet" if nested else root / f"{split}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(path)
    return root


@pytest.mark.parametrize("nested", [False, True], ids=["flat", "data-shards"])
def test_sst2_from_hub_layout(tmp_path, hf_cache, nested):
    root = write_sst2_hub(tmp_path / "sst2-hub", nested)
    task = TASKS.get("sst2").load(hub_id=str(root))
    test, train = pool(task, "test"), pool(task, "train")
    # validation is the test pool, whole
    assert test["text"].tolist() == ["fine", "BAD", "tedious , slow"]
    assert test["label"].tolist() == [1, 0, 0]
    # train: whitespace normalised, repeats dropped, and nothing that is in the test pool
    # (not 'fine'; not 'bad' either, which shares its group with 'BAD')
    assert train["text"].tolist() == ["a good film", "dull"]
    assert train["label"].tolist() == [1, 0]
    assert (task.frame.groupby("group")["pool"].nunique() == 1).all()
    assert task.notes


def test_sst2_hub_and_glue_files_agree(tmp_path, hf_cache):
    hub = TASKS.get("sst2").load(hub_id=str(write_sst2_hub(tmp_path / "hub", nested=False)))
    glue = tmp_path / "glue" / "SST-2"
    glue.mkdir(parents=True)
    for name, rows in (("train", SST2_TRAIN), ("dev", SST2_VALIDATION)):
        body = "".join(f"{s}\t{y}\n" for s, y in rows)
        (glue / f"{name}.tsv").write_text("sentence\tlabel\n" + body, encoding="utf-8")
    # GLUE's own test.tsv has no labels: dev.tsv is then the test pool
    (glue / "test.tsv").write_text("index\tsentence\n0\tunlabelled one\n", encoding="utf-8")
    local = TASKS.get("sst2").load(data_dir=tmp_path / "glue")
    assert local.fingerprint() == hub.fingerprint()


def test_sciq_from_hub_layout(tmp_path, hf_cache):
    root = tmp_path / "sciq-hub"
    root.mkdir()
    records = {"train": [sciq_record(f"tr{i}") for i in range(6)],
               "validation": [sciq_record(f"va{i}") for i in range(3)],
               "test": [sciq_record(f"te{i}") for i in range(4)]}
    for split, recs in records.items():
        (root / f"{split}.json").write_text("".join(json.dumps(r) + "\n" for r in recs), encoding="utf-8")
    task = TASKS.get("sciq").load(hub_id=str(root))
    assert pool(task, "train")["id"].tolist() == [f"sciq:train:{i}" for i in range(9)]
    assert pool(task, "test")["id"].tolist() == [f"sciq:test:{i}" for i in range(4)]
    check_sciq_examples(task, {"train": records["train"] + records["validation"], "test": records["test"]})

    # the AI2 release files with the same records give the same task
    ai2 = tmp_path / "ai2" / "SciQ"
    ai2.mkdir(parents=True)
    for split, name in (("train", "train"), ("validation", "valid"), ("test", "test")):
        (ai2 / f"{name}.json").write_text(json.dumps(records[split]), encoding="utf-8")
    local = TASKS.get("sciq").load(data_dir=ai2.parent)
    assert local.fingerprint() == task.fingerprint()


def test_hub_layout_missing_a_split(tmp_path, hf_cache):
    root = tmp_path / "only-train"
    root.mkdir()
    pd.DataFrame({"idx": [0], "sentence": ["ok"], "label": [1]}).to_parquet(root / "train.parquet")
    with pytest.raises(W2SError, match="no split 'validation'"):
        TASKS.get("sst2").load(hub_id=str(root))


def test_hub_unreachable_is_a_clear_error(tmp_path, hf_cache):
    with pytest.raises(W2SError, match="could not load .*--data-dir"):
        TASKS.get("sciq").load(hub_id=str(tmp_path / "no-such-dataset"))


# ====================================================================== local files: layouts and errors
def test_sst2_resplit_layout_uses_labelled_test_tsv(tmp_path):
    d = tmp_path / "data" / "SST-2"
    d.mkdir(parents=True)
    files = {"train": [("one", 1), ("two", 0)], "dev": [("three", 1)], "test": [("four", 0), ("five", 1)]}
    for name, rows in files.items():
        (d / f"{name}.tsv").write_text("sentence\tlabel\n" + "".join(f"{s} \t{y}\n" for s, y in rows),
                                       encoding="utf-8")
    task = TASKS.get("sst2").load(data_dir=tmp_path)
    assert pool(task, "train")["text"].tolist() == ["one", "two", "three"]
    assert pool(task, "test")["text"].tolist() == ["four", "five"]
    assert pool(task, "test")["label"].tolist() == [0, 1]


def test_sst2_bad_label_names_file_and_line(tmp_path):
    d = tmp_path / "SST-2"
    d.mkdir()
    (d / "train.tsv").write_text("sentence\tlabel\nfine\t1\nodd\t2\n", encoding="utf-8")
    (d / "dev.tsv").write_text("sentence\tlabel\nok\t0\n", encoding="utf-8")
    with pytest.raises(W2SError) as e:
        TASKS.get("sst2").load(data_dir=tmp_path)
    assert f"{d / 'train.tsv'}:3: field 'label'" in str(e.value)


def test_sst2_without_a_labelled_test_file(tmp_path):
    (tmp_path / "train.tsv").write_text("sentence\tlabel\nfine\t1\n", encoding="utf-8")
    with pytest.raises(W2SError, match="dev.tsv or test.tsv"):
        TASKS.get("sst2").load(data_dir=tmp_path)


@pytest.mark.parametrize("task,expected", [
    ("sst2", ["data/SST-2/train.tsv", "SST-2/train.tsv", "train.tsv"]),
    ("sciq", ["SciQ/train.json", "train.json"]),
])
def test_data_dir_without_the_files_names_what_it_looked_for(tmp_path, task, expected):
    (tmp_path / "unrelated.txt").write_text("hello", encoding="utf-8")
    with pytest.raises(W2SError) as e:
        TASKS.get(task).load(data_dir=tmp_path)
    msg = str(e.value)
    assert str(tmp_path) in msg
    for name in expected:
        assert name in msg


def test_data_dir_that_is_missing_or_a_file(tmp_path):
    with pytest.raises(W2SError, match="no such directory"):
        TASKS.get("sst2").load(data_dir=tmp_path / "nope")
    f = tmp_path / "file.txt"
    f.write_text("x", encoding="utf-8")
    with pytest.raises(W2SError, match="not a directory"):
        TASKS.get("sciq").load(data_dir=f)


def test_sciq_record_missing_a_field(tmp_path):
    d = tmp_path / "SciQ"
    d.mkdir()
    good = [sciq_record("q0")]
    bad = [sciq_record("q1"), {k: v for k, v in sciq_record("q2").items() if k != "distractor2"}]
    (d / "train.json").write_text(json.dumps(good), encoding="utf-8")
    (d / "valid.json").write_text(json.dumps(bad), encoding="utf-8")
    (d / "test.json").write_text(json.dumps(good), encoding="utf-8")
    with pytest.raises(W2SError) as e:
        TASKS.get("sciq").load(data_dir=tmp_path)
    assert "valid.json" in str(e.value) and "record 2" in str(e.value) and "'distractor2'" in str(e.value)


def test_sciq_malformed_json_names_the_line(tmp_path):
    d = tmp_path / "SciQ"
    d.mkdir()
    (d / "train.json").write_text('[\n{"question": "q",\n oops}\n]', encoding="utf-8")
    with pytest.raises(W2SError, match=r"train\.json:3: malformed JSON"):
        TASKS.get("sciq").load(data_dir=tmp_path)


def test_generated_task_refuses_a_data_dir(tmp_path):
    with pytest.raises(W2SError, match="no local-file loader"):
        TASKS.get("cities").load(data_dir=tmp_path)
