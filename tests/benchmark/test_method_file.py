"""A method as one Python file: loading, registration, refusals, and the worker's side of it
(a sweep run in a process that has not loaded the file registers it from ``method_files``)."""

from __future__ import annotations

import pytest

from w2sgen.benchmark.method_file import file_sha256, load_method_file, unload
from w2sgen.benchmark.suite import load_suite, run_configs
from w2sgen.config import to_dict
from w2sgen.errors import W2SError
from w2sgen.methods import METHODS


@pytest.fixture
def hard(tmp_path, kit):
    path = kit.write_method(tmp_path / "hard.py", kit.HARD)
    yield path
    unload("hard")


def test_a_method_file_registers_its_method_with_the_file_hash(hard):
    f = load_method_file(hard)
    assert (f.name, f.path, f.sha256) == ("hard", str(hard.resolve()), file_sha256(hard))
    m = METHODS.get("hard")
    assert m.source_sha256 == f.sha256 and m.settings(m.config_cls())["method_file_sha256"] == f.sha256
    assert load_method_file(hard) == f  # the same content again: a no-op


def test_an_edited_method_file_is_refused_where_the_driver_loaded_another_content(hard):
    sha = load_method_file(hard).sha256
    hard.write_text(hard.read_text() + "\n# edited\n")
    with pytest.raises(W2SError, match="content changed while the benchmark ran"):
        load_method_file(hard, sha)
    with pytest.raises(W2SError, match="as a method loaded from another file"):
        load_method_file(hard)  # another content under a name a file already holds


@pytest.mark.parametrize("source, message", [
    ("X = 1\n", "defines no METHOD"),
    ("raise ValueError('boom')\n", "importing it failed: ValueError: boom"),
    ("from w2sgen.methods import METHODS\nMETHOD = METHODS.get('xent')\n", "the name of a registered method"),
    ("import dataclasses\nfrom w2sgen.methods import METHODS\nMETHOD = dataclasses.replace(METHODS.get('xent'), "
     "name='looker', analyze_fn=lambda cfg, st, truth, ctx: {})\n", "has an analyze_fn, which the protocol calls"),
])
def test_bad_method_files_are_refused_clearly(tmp_path, source, message):
    p = tmp_path / "bad.py"
    p.write_text(source)
    with pytest.raises(W2SError, match="bad.py") as e:
        load_method_file(p)
    assert message in str(e.value)
    with pytest.raises(W2SError, match="no such file"):
        load_method_file(tmp_path / "missing.py")


def test_a_worker_registers_the_method_file_before_its_run(hard, tiny_suite, tmp_path):
    from w2sgen.sweep.local import _run_one

    sha = load_method_file(hard).sha256
    cfg = run_configs(load_suite(tiny_suite), ["xent", "hard"], tmp_path / "out", None)[0]
    unload("hard")  # as in a fresh worker process
    with pytest.raises(W2SError, match="hard"):
        _run_one(to_dict(cfg), str(tmp_path / "cache"))  # without the file the method is unknown
    run_dir, _ = _run_one(to_dict(cfg), str(tmp_path / "cache"), [(str(hard.resolve()), sha)])
    assert "hard" in METHODS
    import json
    from pathlib import Path

    rec = json.loads((Path(run_dir) / "run.json").read_text())
    assert rec["stages"]["students"]["hard"]["wall_s"] > 0


def test_a_method_file_with_an_analyze_fn_loads_when_it_declares_ground_truth(tmp_path):
    from w2sgen.benchmark.method_file import unload
    from w2sgen.methods import METHODS

    p = tmp_path / "declared.py"
    p.write_text("import dataclasses\nfrom w2sgen.methods import METHODS\nMETHOD = dataclasses.replace("
                 "METHODS.get('xent'), name='declared_looker', uses_ground_truth=True, "
                 "analyze_fn=lambda cfg, st, truth, ctx: {})\n")
    try:
        assert load_method_file(p).name == "declared_looker"
        assert METHODS.get("declared_looker").uses_ground_truth
    finally:
        unload("declared_looker")
