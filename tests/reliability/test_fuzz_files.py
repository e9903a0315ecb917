"""Random and mutated data files, task YAMLs and weak-label files: only W2SError comes out."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pandas as pd
import yaml
from fuzzing import FUZZ, JSONS, NAMES, SCALARS, TEXTS, assert_empty, mutate, user_error_only
from hypothesis import given
from hypothesis import strategies as st

from w2sgen.store.labels import read_labels
from w2sgen.tasks.files import file_task, load_data_file, yaml_task

VALID_JSONL = b"".join(json.dumps({"text": f"row {i}", "label": i % 2, "group": f"g{i // 2}"}).encode() + b"\n"
                       for i in range(6))
VALID_CSV = b"text,label,group\n" + b"".join(f'"row, {i}",{i % 2},g{i // 2}\n'.encode() for i in range(6))


def _table(rows: list[list[str]], delim: str) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delim)
    for r in rows:
        w.writerow(r)
    return buf.getvalue().encode("utf-8", "surrogatepass")


def _parquet(columns: dict[str, list]) -> bytes:
    buf = io.BytesIO()
    try:
        pd.DataFrame(columns).to_parquet(buf, index=False)
    except Exception:  # pyarrow refuses some mixed columns: store them as text
        pd.DataFrame({k: [repr(v) for v in vals] for k, vals in columns.items()}).to_parquet(buf, index=False)
    return buf.getvalue()


@st.composite
def data_files(draw) -> tuple[str, bytes]:
    """(suffix, content): structured records, mutated valid files, or noise."""
    suffix = draw(st.sampled_from([".jsonl", ".csv", ".tsv", ".parquet"]))
    kind = draw(st.sampled_from(["records", "records", "mutated", "noise"]))
    if kind == "noise":
        return suffix, draw(st.binary(max_size=200))
    if kind == "mutated":
        base = {".jsonl": VALID_JSONL, ".csv": VALID_CSV, ".tsv": VALID_CSV.replace(b",", b"\t"),
                ".parquet": _parquet({"text": ["a", "b"], "label": [0, 1]})}[suffix]
        return suffix, mutate(base, draw(st.integers(0, 2**32)), draw(st.integers(1, 8)))
    cols = draw(st.lists(st.sampled_from(NAMES), min_size=0, max_size=3, unique=True))
    valid = draw(st.booleans())  # half the cases are near-valid files that reach every check
    if valid or draw(st.booleans()):
        cols = list(dict.fromkeys(["text", "label", *cols]))
    n = draw(st.integers(0, 6))

    def value(col: str):
        if valid and col in ("text", "sentence"):
            return draw(st.one_of(GOOD_TEXT, GOOD_TEXT, GOOD_TEXT, GOOD_TEXT, GOOD_TEXT, TEXTS))
        if valid and col == "label":
            return draw(st.one_of(GOOD_LABEL, GOOD_LABEL, GOOD_LABEL, GOOD_LABEL, GOOD_LABEL, SCALARS))
        if valid and col in ("group", "id"):
            return draw(st.one_of(st.sampled_from(["g1", "g2", "1", 1, 2]), SCALARS))
        return draw(SCALARS)

    if suffix == ".jsonl":
        lines = []
        for _ in range(n):
            rec = {c: value(c) for c in cols} if valid or draw(st.booleans()) else draw(JSONS)
            lines.append(json.dumps(rec))
        return suffix, ("\n".join(lines) + draw(st.sampled_from(["", "\n", "\n\n", "\r\n"]))).encode()
    if suffix in (".csv", ".tsv"):
        width = len(cols)
        rows: list[list] = [cols]
        for _ in range(n):
            if valid:
                rows.append([value(c) for c in cols])
            else:
                rows.append(draw(st.lists(TEXTS, min_size=max(0, width - 1), max_size=width + 1)))
        return suffix, _table(rows, "\t" if suffix == ".tsv" else ",")
    if valid:
        return suffix, _parquet({c: [value(c) for _ in range(n)] for c in cols})
    values = st.one_of(st.lists(st.one_of(st.none(), st.integers(-2, 3)), min_size=n, max_size=n),
                       st.lists(st.one_of(st.none(), st.floats()), min_size=n, max_size=n),
                       st.lists(st.one_of(st.none(), TEXTS), min_size=n, max_size=n),
                       st.lists(st.booleans(), min_size=n, max_size=n))
    return suffix, _parquet({c: draw(values) for c in cols})


GOOD_TEXT = st.sampled_from(["good movie", "bad film", "the city of paris is in france", "x"])
GOOD_LABEL = st.sampled_from([0, 1, "0", "1", "true", "false", "pos", "negative", 1.0, True, "c1"])
COLS = st.sampled_from(["text", "label", "group", "id", "sentence", "missing"])


@FUZZ
@given(f=data_files(), text_col=st.sampled_from(["text", "text", "text", "sentence"]),
       group_col=st.one_of(st.none(), st.none(), COLS), id_col=st.one_of(st.none(), st.none(), COLS),
       num_classes=st.integers(2, 4), names=st.booleans())
def test_fuzz_data_files(tmp_path_factory, empty_cache, f, text_col, group_col, id_col, num_classes, names):
    suffix, content = f
    path = tmp_path_factory.mktemp("data") / f"task{suffix}"
    path.write_bytes(content)
    label_names = [f"c{i}" for i in range(num_classes)] if names else None

    def load():
        frame = load_data_file(path, text_col=text_col, group_col=group_col, id_col=id_col,
                               num_classes=num_classes, label_names=label_names)
        assert list(frame.columns)[:3] == ["id", "text", "label"] or "label" in frame.columns
        assert frame["label"].between(0, num_classes - 1).all()
        assert frame["id"].is_unique
        return frame

    user_error_only("tasks.files.load_data_file", load)
    user_error_only("tasks.files.file_task", lambda: file_task(path, text_col=text_col, group_col=group_col))
    assert_empty(empty_cache)


YAML_KEYS = ["name", "description", "files", "file", "text_col", "label_col", "group_col", "id_col",
             "num_classes", "label_names", "hub", "license", "version", "nmae", "splits"]


@st.composite
def task_yamls(draw, data: str) -> str:
    kind = draw(st.sampled_from(["spec", "spec", "mutated", "noise", "tagged"]))
    if kind == "noise":
        return draw(st.text(max_size=120))
    if kind == "tagged":
        return draw(st.sampled_from([
            "!!python/object/apply:os.system ['echo pwned']\n",
            "name: !!python/name:os.system\nfile: d.jsonl\n",
            "file: !!binary aGVsbG8=\n", "a: &x [*x]\n", "{{{{\n", "- a\n- b\n", "file: [d.jsonl]\n",
        ]))
    spec: dict = {"file": data} if draw(st.booleans()) else {}
    for key in draw(st.lists(st.sampled_from(YAML_KEYS), max_size=4, unique=True)):
        if key in ("file",):
            spec[key] = draw(st.sampled_from([data, "nope.jsonl", "", "../" + data, 3, None, [data]]))
        elif key == "files":
            spec[key] = draw(st.one_of(
                st.dictionaries(st.sampled_from(["train", "test", "dev", 1]), st.sampled_from([data, "x.csv", None, 5]),
                                max_size=3), JSONS))
        elif key == "hub":
            spec[key] = draw(st.one_of(JSONS, st.just({"dataset": "org/does-not-exist-w2s-fuzz"}),
                                       st.just({"dataset": 5, "splits": "x"})))
        elif key == "num_classes":
            spec[key] = draw(st.one_of(st.integers(-1, 5), SCALARS))
        elif key == "label_names":
            spec[key] = draw(st.one_of(st.lists(TEXTS, max_size=4), SCALARS))
        else:
            spec[key] = draw(st.one_of(SCALARS, st.sampled_from(["text", "label", "group", "id"])))
    text = yaml.safe_dump(spec, allow_unicode=True)
    if kind == "mutated":
        text = mutate(text.encode(), draw(st.integers(0, 2**32)), draw(st.integers(1, 6))).decode("utf-8", "replace")
    return text


@FUZZ
@given(spec=task_yamls("d.jsonl"))
def test_fuzz_task_yaml(tmp_path_factory, empty_cache, spec):
    d = tmp_path_factory.mktemp("yaml")
    (d / "d.jsonl").write_bytes(VALID_JSONL)
    (d / "x.csv").write_bytes(VALID_CSV)
    path = d / "task.yaml"
    path.write_text(spec, encoding="utf-8", errors="surrogatepass")
    user_error_only("tasks.files.yaml_task", lambda: yaml_task(path))
    assert_empty(empty_cache)


@st.composite
def label_files(draw) -> tuple[str, bytes]:
    suffix = draw(st.sampled_from([".csv", ".jsonl", ".parquet", ".tsv", ".txt"]))
    kind = draw(st.sampled_from(["records", "records", "mutated", "noise"]))
    if kind == "noise":
        return suffix, draw(st.binary(max_size=120))
    n = draw(st.integers(0, 4))
    cols = draw(st.lists(st.sampled_from(["id", "prob", "probs", "split", "x"]), max_size=4, unique=True))
    valid = draw(st.booleans())
    if valid:
        cols = list(dict.fromkeys(["id", draw(st.sampled_from(["prob", "probs"])), *cols]))
    good = {"id": st.one_of(st.sampled_from(["a", "b", "t:train:1"]), st.integers(0, 3)),
            "prob": st.floats(0, 1), "probs": st.sampled_from(["[0.2, 0.8]", "[0.1, 0.2, 0.7]", "[1, 0]"])}
    recs = [{c: draw(st.one_of(*[good[c]] * 6, SCALARS) if valid and c in good else
                     st.one_of(SCALARS, st.just("[0.2, 0.8]"), st.lists(st.floats(0, 1), max_size=3)))
             for c in cols} for _ in range(n)]
    if suffix == ".jsonl":
        content = "".join(json.dumps(r) + "\n" for r in recs).encode()
    elif suffix == ".parquet":
        content = _parquet({c: [r[c] for r in recs] for c in cols})
    else:
        content = _table([cols] + [[str(r[c]) for c in cols] for r in recs], "\t" if suffix == ".tsv" else ",")
    if kind == "mutated":
        content = mutate(content, draw(st.integers(0, 2**32)), draw(st.integers(1, 5)))
    return suffix, content


@FUZZ
@given(f=label_files(), k=st.integers(2, 3))
def test_fuzz_weak_label_files(tmp_path_factory, empty_cache, f, k):
    suffix, content = f
    path = tmp_path_factory.mktemp("labels") / f"weak{suffix}"
    path.write_bytes(content)

    def read():
        out = read_labels(path, k)
        for v in out.values():
            assert v.shape == (k,) and abs(float(v.sum()) - 1) < 1e-2 and (v >= 0).all() and (v <= 1).all()
        return out

    user_error_only("store.labels.read_labels", read)
    assert_empty(empty_cache)


def test_missing_and_odd_paths(tmp_path, empty_cache):
    """Directories, missing files and unreadable paths are user errors too."""
    (tmp_path / "dir.csv").mkdir()
    for p in (tmp_path / "dir.csv", tmp_path / "none.jsonl", Path("/dev/null/x.csv")):
        user_error_only("tasks.files.load_data_file", lambda p=p: load_data_file(p))
        user_error_only("store.labels.read_labels", lambda p=p: read_labels(p, 2))
    assert_empty(empty_cache)
