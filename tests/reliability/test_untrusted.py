"""Untrusted files and names: no code runs from a model, config or artifact; no name escapes its folder."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from fuzzing import FUZZ
from hypothesis import given
from hypothesis import strategies as st

from w2sgen.errors import W2SError
from w2sgen.store.results import run_dir_name, safe_name, write_run

SRC = Path(__file__).resolve().parents[2] / "src" / "w2sgen"
SOURCES = sorted(SRC.rglob("*.py"))


def calls(name: str):
    """(file, ast.Call) for every call of ``name`` (a dotted attribute such as torch.load) in the source."""
    for f in SOURCES:
        for node in ast.walk(ast.parse(f.read_text(), str(f))):
            if isinstance(node, ast.Call) and ast.unparse(node.func).endswith(name):
                yield f, node


def test_sources_were_found():
    assert len(SOURCES) > 20 and (SRC / "cli.py") in SOURCES


def test_torch_load_only_with_weights_only():
    for f, node in calls("torch.load"):
        kw = {k.arg: k.value for k in node.keywords}
        assert "weights_only" in kw and ast.unparse(kw["weights_only"]) == "True", f"{f}:{node.lineno}"


def test_np_load_never_allows_pickle():
    for f, node in calls("np.load"):
        kw = {k.arg: ast.unparse(k.value) for k in node.keywords}
        assert kw.get("allow_pickle", "False") == "False", f"{f}:{node.lineno}"


def test_trust_remote_code_is_never_switched_on_in_the_source():
    for f in SOURCES:
        for node in ast.walk(ast.parse(f.read_text(), str(f))):
            if isinstance(node, ast.keyword) and node.arg == "trust_remote_code":
                assert not (isinstance(node.value, ast.Constant) and node.value.value is True), f"{f}:{node.value.lineno}"
    from w2sgen.config import RunConfig

    assert RunConfig().trust_remote_code is False


def test_yaml_is_parsed_safely_and_no_pickle_in_our_code():
    for f in SOURCES:
        text = f.read_text()
        assert not re.search(r"yaml\.(load|unsafe_load|full_load|load_all)\(", text), f
        assert not re.search(r"^\s*(import|from)\s+(pickle|dill|cloudpickle|joblib)\b", text, re.M), f
        assert "marshal.loads" not in text and not re.search(r"(?<![\w.])(eval|exec)\(", text), f
        # torch.load only with weights_only=True (no arbitrary unpickling of checkpoint files)
        for line in text.splitlines():
            if "torch.load(" in line:
                assert "weights_only=True" in line, (f, line)


@pytest.mark.parametrize("doc", [
    "task: !!python/object/apply:os.system ['touch {marker}']\n",
    "task: !!python/object/new:subprocess.Popen [['touch', '{marker}']]\n",
    "!!python/name:os.system\n",
])
def test_yaml_python_tags_are_refused(tmp_path, doc):
    from w2sgen.config import load_config, load_yaml
    from w2sgen.tasks.files import yaml_task

    marker = tmp_path / "pwned"
    f = tmp_path / "evil.yaml"
    f.write_text(doc.format(marker=marker))
    for load in (load_yaml, load_config, yaml_task):
        with pytest.raises(W2SError, match=r"evil.yaml:1: invalid YAML"):
            load(f)
    assert not marker.exists()


def test_our_artifacts_are_json_parquet_safetensors_npy(tmp_path, tiny_encoders):
    """A whole run writes no pickle: every file of the cache and results is a known safe format."""
    from conftest import write_toy_task

    import w2sgen
    from w2sgen.config import RunConfig, SplitConfig

    weak, strong = tiny_encoders
    toy = write_toy_task(tmp_path / "toy.jsonl")
    cfg = RunConfig(task=str(toy), weak=str(weak), strong=str(strong), out=str(tmp_path / "out"), methods=["xent"],
                    splits=SplitConfig(n_weak_train=40, n_transfer=40, n_val=20, n_test=20, min_val=20, min_test=20))
    cfg.probe.epochs = 3
    w2sgen.run(cfg, cache_dir=tmp_path / "cache")
    files = [p for root in ("cache", "out") for p in (tmp_path / root).rglob("*") if p.is_file()]
    assert files
    for p in files:
        assert p.suffix in (".json", ".parquet", ".safetensors", ".npy", ".sqlite"), p
        head = p.read_bytes()[:2]
        assert head != b"\x80\x04" and head != b"\x80\x05", f"{p} looks like a pickle"


ODD = ["../", "..", ".", "/etc/passwd", "../../x", "a/../../b", "~", "~/x", "C:\\Windows", "\\\\srv\\share",
       "\x00", "a\x00b", "nul", "con", " ", "", "-rf", "--help", ".hidden", "ünï", "日本語", "a" * 300,
       "x/" * 50, "%2e%2e%2f", "$(rm -rf /)", "`id`", "a\nb"]


@FUZZ
@given(name=st.one_of(st.sampled_from(ODD), st.text(max_size=40),
                      st.lists(st.sampled_from(["..", ".", "/", "a", "\\", "~", "\x00", "é"]), max_size=12).map("".join)))
def test_safe_name_never_escapes(tmp_path_factory, name):
    s = safe_name(name)
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", s) or s == "x", s
    assert s not in (".", "..") and "/" not in s and "\\" not in s and len(s) <= 80
    root = Path("/results").resolve()
    assert (root / s).resolve().parent == root
    run = run_dir_name(name, name, name, name, 0)
    assert "/" not in run and not run.startswith(".") and (root / run).resolve().parent == root
    from fuzzing import SURVIVED

    SURVIVED["store.results.safe_name"] = SURVIVED.get("store.results.safe_name", 0) + 1


def test_long_names_stay_distinct():
    """Truncation must not make two different models share a run folder."""
    base = "/experiments/checkpoints/" + "very-long-directory-name/" * 4
    a, b = safe_name(base + "step-1000"), safe_name(base + "step-2000")
    assert a != b and len(a) <= 80 and len(b) <= 80


def test_run_folders_from_hostile_names_stay_inside(tmp_path):
    src = tmp_path / "p.parquet"
    src.write_bytes(b"PAR1")
    out = tmp_path / "out"
    for task, weak, strong in [("../../evil", "/etc/passwd", ".."), ("..", "..", ".."), ("a/../../b", "~", "x")]:
        d = write_run(out, run_dir_name(task, weak, strong, "probe", 0), {"x": 1}, {"../../stage": src})
        assert d.resolve().parent == out.resolve()
        assert all(p.resolve().is_relative_to(out.resolve()) for p in d.rglob("*"))
    assert {p.name for p in tmp_path.iterdir()} == {"p.parquet", "out"}


def test_task_named_to_escape_stays_inside(tmp_path, tiny_encoders):
    """A task YAML whose name is a path, end to end: every file lands inside --out and the cache."""
    import json

    from conftest import write_toy_task

    import w2sgen
    from w2sgen.config import RunConfig, SplitConfig

    weak, strong = tiny_encoders
    write_toy_task(tmp_path / "toy.jsonl")
    spec = tmp_path / "evil.yaml"
    spec.write_text(json.dumps({"name": "../../../escaped", "file": "toy.jsonl"}))
    cfg = RunConfig(task=str(spec), weak=str(weak), strong=str(strong), out=str(tmp_path / "out"),
                    methods=["xent"], splits=SplitConfig(n_weak_train=40, n_transfer=40, n_val=20, n_test=20, min_val=20, min_test=20))
    cfg.probe.epochs = 3
    before = set(tmp_path.parent.iterdir())
    w2sgen.run(cfg, cache_dir=tmp_path / "cache")
    assert set(tmp_path.parent.iterdir()) == before
    assert {p.name for p in tmp_path.iterdir()} == {"toy.jsonl", "evil.yaml", "out", "cache"}
    (run,) = [p for p in (tmp_path / "out").iterdir() if p.is_dir()]
    assert run.name.startswith("escaped__")
