"""Tasks from data files and task YAMLs; errors that name FILE:LINE and the field."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pytest

from w2sgen.errors import W2SError
from w2sgen.tasks import load_task
from w2sgen.tasks.files import file_task, load_data_file, parse_label, yaml_task

ROWS = [
    {"text": "the sky is blue", "label": 1, "group": "sky"},
    {"text": "the sky is green, mostly", "label": 0, "group": "sky"},
    {"text": "water is wet", "label": 1, "group": "water"},
    {"text": "fire is cold", "label": 0, "group": "fire"},
]


def write(path: Path, rows: list[dict], columns: list[str] | None = None) -> Path:
    """Write rows as .jsonl, .csv, .tsv or .parquet (by suffix)."""
    columns = columns or list(rows[0])
    suffix = path.suffix
    if suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    elif suffix in (".csv", ".tsv"):
        with path.open("w", encoding="utf-8", newline="") as f:
            w = csv.DictWriter(f, fieldnames=columns, delimiter="\t" if suffix == ".tsv" else ",")
            w.writeheader()
            w.writerows(rows)
    elif suffix == ".parquet":
        pd.DataFrame(rows, columns=columns).to_parquet(path)
    else:
        raise ValueError(suffix)
    return path


FORMATS = [".jsonl", ".csv", ".tsv", ".parquet"]


# ------------------------------------------------------------------ formats and columns
@pytest.mark.parametrize("suffix", FORMATS)
def test_each_format_loads(tmp_path, suffix):
    path = write(tmp_path / f"facts{suffix}", ROWS)
    frame = load_data_file(path)
    assert list(frame.columns) == ["id", "text", "label", "group", "pool"]
    assert frame["text"].tolist() == [r["text"] for r in ROWS]  # the comma survives CSV quoting
    assert frame["label"].tolist() == [1, 0, 1, 0]
    assert frame["group"].tolist() == ["sky", "sky", "water", "fire"]
    assert set(frame["pool"]) == {"train"}
    assert frame["id"].is_unique


@pytest.mark.parametrize("suffix", FORMATS)
def test_file_task_and_load_task_take_a_data_file(tmp_path, suffix):
    path = write(tmp_path / f"facts{suffix}", ROWS)
    task = file_task(path)
    assert task.name == "facts"
    assert len(task) == 4 and task.num_classes == 2
    via_cli = load_task(str(path))
    assert via_cli.fingerprint() == task.fingerprint()


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_custom_columns(tmp_path, suffix):
    rows = [{"sentence": r["text"], "y": r["label"], "cluster": r["group"].upper(), "group": "ignored"}
            for r in ROWS]
    path = write(tmp_path / f"custom{suffix}", rows)
    frame = load_data_file(path, text_col="sentence", label_col="y", group_col="cluster")
    assert frame["text"].tolist() == [r["text"] for r in ROWS]
    assert frame["label"].tolist() == [1, 0, 1, 0]
    assert frame["group"].tolist() == ["SKY", "SKY", "WATER", "FIRE"]
    task = load_task(str(path), text_col="sentence", label_col="y", group_col="cluster")
    assert task.frame["group"].tolist() == ["SKY", "SKY", "WATER", "FIRE"]


def test_group_column_defaults_to_group(tmp_path):
    with_group = load_data_file(write(tmp_path / "g.jsonl", ROWS))
    assert with_group["group"].tolist() == ["sky", "sky", "water", "fire"]
    without = load_data_file(write(tmp_path / "n.jsonl", [{"text": r["text"], "label": r["label"]} for r in ROWS]))
    # no group column: every example is its own group
    assert without["group"].is_unique
    assert without["group"].tolist() == without["id"].tolist()


def test_id_column(tmp_path):
    rows = [dict(r, uid=f"u{i}") for i, r in enumerate(ROWS)]
    frame = load_data_file(write(tmp_path / "ids.csv", rows), id_col="uid")
    assert frame["id"].tolist() == ["u0", "u1", "u2", "u3"]
    rows[3]["uid"] = "u0"
    with pytest.raises(W2SError, match="'u0' occurs twice"):
        load_data_file(write(tmp_path / "dup.csv", rows), id_col="uid")


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_string_labels_true_false(tmp_path, suffix):
    rows = [{"text": f"t{i}", "label": v} for i, v in enumerate(["true", "false", "True", " FALSE "])]
    frame = load_data_file(write(tmp_path / f"s{suffix}", rows))
    assert frame["label"].tolist() == [1, 0, 1, 0]


# ------------------------------------------------------------------ errors name FILE:LINE and the field
def test_label_out_of_range_csv_names_the_line(tmp_path):
    rows = [dict(r) for r in ROWS]
    rows[1]["label"] = 2  # second data row: line 3 (the header is line 1)
    path = write(tmp_path / "bad.csv", rows)
    with pytest.raises(W2SError) as e:
        load_data_file(path)
    assert f"{path}:3: field 'label'" in str(e.value)
    assert "0..1" in str(e.value)


def test_label_out_of_range_tsv_names_the_line(tmp_path):
    rows = [dict(r) for r in ROWS]
    rows[0]["label"] = 2  # first data row: line 2
    path = write(tmp_path / "bad.tsv", rows)
    with pytest.raises(W2SError) as e:
        file_task(path)
    assert f"{path}:2: field 'label'" in str(e.value)


def test_label_out_of_range_jsonl_names_the_line(tmp_path):
    rows = [dict(r) for r in ROWS]
    rows[2]["label"] = 2  # third line of the file
    path = write(tmp_path / "bad.jsonl", rows)
    with pytest.raises(W2SError) as e:
        load_data_file(path)
    assert f"{path}:3: field 'label'" in str(e.value)


def test_label_out_of_range_parquet_names_the_row(tmp_path):
    rows = [dict(r) for r in ROWS]
    rows[3]["label"] = 2
    path = write(tmp_path / "bad.parquet", rows)
    with pytest.raises(W2SError) as e:
        load_data_file(path)
    assert f"{path}:4: field 'label'" in str(e.value)


def test_missing_label_column_csv(tmp_path):
    path = write(tmp_path / "nolabel.csv", [{"text": r["text"]} for r in ROWS])
    with pytest.raises(W2SError) as e:
        load_data_file(path)
    msg = str(e.value)
    assert f"{path}:1: field 'label'" in msg  # the header is at fault
    assert "--label-col" in msg


def test_missing_text_column_jsonl(tmp_path):
    path = write(tmp_path / "notext.jsonl", [{"sentence": r["text"], "label": r["label"]} for r in ROWS])
    with pytest.raises(W2SError) as e:
        load_data_file(path)
    assert f"{path}:1: field 'text'" in str(e.value)
    assert "--text-col" in str(e.value)


def test_label_missing_on_a_later_jsonl_line(tmp_path):
    rows = [dict(r) for r in ROWS]
    del rows[2]["label"]
    path = write(tmp_path / "gap.jsonl", rows)
    with pytest.raises(W2SError) as e:
        load_data_file(path)
    assert f"{path}:3: field 'label'" in str(e.value)


def test_missing_group_column_given_explicitly(tmp_path):
    path = write(tmp_path / "g.csv", [{"text": r["text"], "label": r["label"]} for r in ROWS])
    with pytest.raises(W2SError, match="'cluster'"):
        load_data_file(path, group_col="cluster")


def test_malformed_json_line(tmp_path):
    path = tmp_path / "broken.jsonl"
    path.write_text('{"text": "ok", "label": 1}\n{"text": "oops", "label": \n', encoding="utf-8")
    with pytest.raises(W2SError) as e:
        load_data_file(path)
    assert f"{path}:2: malformed JSON" in str(e.value)


def test_jsonl_line_that_is_not_an_object(tmp_path):
    path = tmp_path / "list.jsonl"
    path.write_text('{"text": "ok", "label": 1}\n\n["text", 1]\n', encoding="utf-8")
    with pytest.raises(W2SError) as e:
        load_data_file(path)
    assert f"{path}:3:" in str(e.value)  # blank lines still count


def test_non_numeric_label(tmp_path):
    rows = [dict(r) for r in ROWS]
    rows[0]["label"] = "maybe"
    for suffix in (".csv", ".jsonl"):
        path = write(tmp_path / f"nn{suffix}", rows)
        with pytest.raises(W2SError) as e:
            load_data_file(path)
        line = 2 if suffix == ".csv" else 1
        assert f"{path}:{line}: field 'label'" in str(e.value)
        assert "'maybe'" in str(e.value)


def test_fractional_label(tmp_path):
    rows = [dict(r) for r in ROWS]
    rows[1]["label"] = 0.5
    path = write(tmp_path / "frac.jsonl", rows)
    with pytest.raises(W2SError, match=r":2: field 'label'"):
        load_data_file(path)


def test_empty_text(tmp_path):
    rows = [dict(r) for r in ROWS]
    rows[3]["text"] = "   "
    path = write(tmp_path / "empty.csv", rows)
    with pytest.raises(W2SError) as e:
        load_data_file(path)
    assert f"{path}:5: field 'text'" in str(e.value)


def test_csv_row_with_too_many_fields(tmp_path):
    path = tmp_path / "wide.csv"
    path.write_text("text,label\nfine,1\nnot, quoted,0\n", encoding="utf-8")
    with pytest.raises(W2SError) as e:
        load_data_file(path)
    assert f"{path}:3:" in str(e.value) and "3 fields" in str(e.value)


def test_not_utf8(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("text,label\nok,1\ncaf\xe9,0\n".encode("latin-1"))
    with pytest.raises(W2SError, match=r"latin\.csv:3: not UTF-8"):
        load_data_file(path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("", encoding="utf-8")
    with pytest.raises(W2SError, match="no rows"):
        load_data_file(path)


def test_unreadable_parquet(tmp_path):
    path = tmp_path / "junk.parquet"
    path.write_bytes(b"not parquet at all")
    with pytest.raises(W2SError, match="parquet"):
        load_data_file(path)


# ------------------------------------------------------------------ parse_label
@pytest.mark.parametrize("value,expected", [
    (0, 0), (1, 1), (1.0, 1), ("0", 0), (" 1 ", 1), ("1.0", 1), (True, 1), (False, 0),
    ("true", 1), ("False", 0), ("yes", 1), ("no", 0), ("positive", 1), ("neg", 0),
])
def test_parse_label_binary(value, expected):
    assert parse_label(value, 2, None, "f:1") == expected


def test_parse_label_names_and_classes():
    names = ["neg", "neu", "pos"]
    assert [parse_label(v, 3, names, "f:1") for v in ("neg", "neu", "pos", 2, "1")] == [0, 1, 2, 2, 1]
    # the true/false words are a binary convenience only
    with pytest.raises(W2SError, match="f:7: field 'label'"):
        parse_label("true", 3, names, "f:7")


@pytest.mark.parametrize("value", [2, -1, "2", 0.5, float("nan"), "maybe", None, [1]])
def test_parse_label_refuses(value):
    with pytest.raises(W2SError, match="f:9: field 'label'"):
        parse_label(value, 2, None, "f:9")


# ------------------------------------------------------------------ task YAMLs
def test_yaml_task_with_train_and_test_files_and_three_classes(tmp_path):
    write(tmp_path / "tr.csv", [
        {"text": "awful", "label": "neg", "group": "a"},
        {"text": "meh", "label": "1", "group": "a"},
        {"text": "great", "label": "2", "group": "b"},
    ])
    write(tmp_path / "te.jsonl", [{"text": "fine", "label": "neu"}, {"text": "superb", "label": 2}])
    spec = tmp_path / "three.yaml"
    spec.write_text(
        "name: three\nfiles: {train: tr.csv, test: te.jsonl}\nnum_classes: 3\n"
        "label_names: [neg, neu, pos]\n", encoding="utf-8")
    task = yaml_task(spec)
    assert task.name == "three"
    assert task.num_classes == 3 and task.label_names == ["neg", "neu", "pos"]
    f = task.frame
    assert f["pool"].tolist() == ["train", "train", "train", "test", "test"]
    assert f["label"].tolist() == [0, 1, 2, 1, 2]
    assert f["group"].tolist()[:3] == ["a", "a", "b"]
    assert f["id"].is_unique
    assert load_task(str(spec)).fingerprint() == task.fingerprint()


def test_yaml_task_single_file_and_columns(tmp_path):
    write(tmp_path / "d.jsonl", [{"q": r["text"], "gold": r["label"]} for r in ROWS])
    spec = tmp_path / "one.yml"
    spec.write_text("file: d.jsonl\ntext_col: q\nlabel_col: gold\n", encoding="utf-8")
    task = load_task(str(spec))
    assert task.name == "one"  # the YAML's stem when no name is given
    assert task.frame["text"].tolist() == [r["text"] for r in ROWS]
    assert set(task.frame["pool"]) == {"train"}


def test_yaml_label_outside_declared_classes(tmp_path):
    write(tmp_path / "tr.csv", [{"text": "a", "label": 0}, {"text": "b", "label": 3}])
    spec = tmp_path / "t.yaml"
    spec.write_text("files: {train: tr.csv}\nnum_classes: 3\n", encoding="utf-8")
    with pytest.raises(W2SError) as e:
        yaml_task(spec)
    assert f"{tmp_path / 'tr.csv'}:3: field 'label'" in str(e.value)


def test_yaml_unknown_field_suggests(tmp_path):
    write(tmp_path / "d.jsonl", ROWS)
    spec = tmp_path / "typo.yaml"
    spec.write_text("file: d.jsonl\nnum_class: 2\n", encoding="utf-8")
    with pytest.raises(W2SError) as e:
        yaml_task(spec)
    msg = str(e.value)
    assert "'num_class'" in msg and "did you mean" in msg.lower() and "num_classes" in msg


@pytest.mark.parametrize("body,field", [
    ("file: d.jsonl\nnum_classes: 3\nlabel_names: [a, b]\n", "label_names"),
    ("file: d.jsonl\nnum_classes: 1\n", "num_classes"),
    ("file: d.jsonl\nlabel_names: only\n", "label_names"),
    ("files: {dev: d.jsonl}\n", "files"),
    ("description: nothing to load\n", "file"),
])
def test_yaml_bad_fields(tmp_path, body, field):
    write(tmp_path / "d.jsonl", ROWS)
    spec = tmp_path / "bad.yaml"
    spec.write_text(body, encoding="utf-8")
    with pytest.raises(W2SError, match=f"'{field}"):
        yaml_task(spec)


def test_yaml_python_tags_are_refused_not_executed(tmp_path):
    marker = tmp_path / "pwned"
    spec = tmp_path / "evil.yaml"
    spec.write_text(
        f"name: !!python/object/apply:os.system ['touch {marker}']\nfile: d.jsonl\n", encoding="utf-8")
    with pytest.raises(W2SError, match="evil.yaml"):
        load_task(str(spec))
    assert not marker.exists()


def test_yaml_invalid_syntax_names_the_line(tmp_path):
    spec = tmp_path / "broken.yaml"
    spec.write_text("file: d.jsonl\nfiles: {train: [\n", encoding="utf-8")
    with pytest.raises(W2SError, match=r"broken\.yaml:\d+: invalid YAML"):
        yaml_task(spec)


# ------------------------------------------------------------------ load_task resolution
def test_unknown_task_name_suggests_a_close_one():
    with pytest.raises(W2SError) as e:
        load_task("citiess")
    assert "Did you mean" in str(e.value) and "cities" in str(e.value)


def test_unknown_task_name_lists_the_tasks_and_files_hint():
    # nothing is close to 'nosuchtask': the message lists the known names instead
    with pytest.raises(W2SError) as e:
        load_task("nosuchtask")
    msg = str(e.value)
    assert "unknown task 'nosuchtask'" in msg
    assert "sst2" in msg and "sciq" in msg
    assert ".jsonl" in msg  # the hint that a data file also works


@pytest.mark.parametrize("name", ["missing.jsonl", "missing.csv", "missing.yaml"])
def test_missing_file_for_task(tmp_path, name):
    with pytest.raises(W2SError, match="no such"):
        load_task(str(tmp_path / name))
