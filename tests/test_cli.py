"""The w2s command: help and user errors without heavy imports, tracebacks or stack dumps."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import write_toy_task

from w2sgen.cli import main

PY = sys.executable


def w2s(*args, env=None):
    return subprocess.run([PY, "-m", "w2sgen.cli", *args], capture_output=True, text=True, env=env, timeout=120)


def test_help_and_user_errors_do_not_import_torch():
    code = ("import sys; from w2sgen.cli import main\n"
            "try:\n    main(['run', '--task', 'citis', '--weak', 'minilm-l6', '--strong', 'mpnet-base'])\n"
            "except SystemExit: pass\n"
            "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'heavy import'\n")
    r = subprocess.run([PY, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "Did you mean: cities" in r.stderr


@pytest.mark.parametrize("cmd", [[], ["run"], ["demo"], ["results"], ["export-labels"], ["list"]])
def test_help_everywhere(cmd):
    r = w2s(*cmd, "--help")
    assert r.returncode == 0 and "usage: w2s" in r.stdout


@pytest.mark.parametrize("args,needle", [
    (["run", "--task", "citis", "--weak", "minilm-l6", "--strong", "mpnet-base"], "unknown task 'citis'. Did you mean: cities"),
    (["run", "--task", "cities", "--weak", "minilm-l7", "--strong", "mpnet-base"], "unknown model 'minilm-l7'. Did you mean: minilm-l6"),
    (["run", "--task", "cities", "--weak", "minilm-l6", "--strong", "mpnet-base", "--methods", "xnet"], "Did you mean: xent"),
    (["run", "--task", "cities", "--weak", "minilm-l6"], "'strong' is required"),
    (["run", "--task", "cities", "--weak", "a", "--strong", "b", "--set", "probe.lrr=1"], "Did you mean: lr"),
    (["results", "/nonexistent/dir"], "no such results directory"),
])
def test_user_errors_exit_2_without_traceback(args, needle):
    r = w2s(*args)
    assert r.returncode == 2
    assert needle in r.stderr
    assert "Traceback" not in r.stderr


def test_bad_data_file_names_file_line_field(tmp_path, tiny_encoders):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine", "label": 1}\n{"text": "odd", "label": 2}\n')
    weak, strong = tiny_encoders
    r = w2s("run", "--task", str(bad), "--weak", str(weak), "--strong", str(strong))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert f"{bad}:2: field 'label': 2 is outside the classes 0..1" in r.stderr


def test_model_dir_without_weights(tmp_path):
    d = tmp_path / "empty_model"
    d.mkdir()
    (d / "config.json").write_text("{}")
    toy = write_toy_task(tmp_path / "toy.jsonl")
    r = w2s("run", "--task", str(toy), "--weak", str(d), "--strong", str(d), "--cache-dir", str(tmp_path / "c"),
            "--set", "splits.min_test=20", "--set", "splits.min_val=10")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "missing weights (model.safetensors), tokenizer" in r.stderr


def test_run_results_json_and_export(tmp_path, tiny_encoders, capsys):
    weak, strong = tiny_encoders
    toy = write_toy_task(tmp_path / "toy.jsonl")
    out = tmp_path / "out"
    rc = main(["run", "--task", str(toy), "--weak", str(weak), "--strong", str(strong), "--out", str(out),
               "--seeds", "0,1", "--cache-dir", str(tmp_path / "cache"), "--set", "probe.epochs=5",
               "--set", "splits.min_test=20", "--set", "splits.min_val=10"])  # the toy task's 120 examples
    assert rc == 0
    capsys.readouterr()
    assert main(["results", str(out), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert isinstance(rows, list) and len(rows) == 4  # 2 seeds x 2 methods
    assert list(rows[0])[:9] == ["task", "weak", "strong", "mode", "method", "seed", "weak_acc", "ceiling_acc",
                                 "w2s_acc"]
    assert {"gap_acc", "gap_acc_lo", "gap_acc_hi", "flagged", "pgr_acc", "majority_acc", "run_id"} <= set(rows[0])
    assert all((r["pgr_acc"] is None) == r["flagged"] for r in rows)  # a flagged run has no PGR
    assert {r["method"] for r in rows} == {"xent", "logconf"} and {r["seed"] for r in rows} == {0, 1}
    assert all(0 <= r["w2s_acc"] <= 1 for r in rows)
    assert main(["results", str(out), "--format", "csv"]) == 0
    csv = capsys.readouterr().out.splitlines()
    assert csv[0].startswith("task,weak,strong,mode,method,seed") and len(csv) == 5
    run_dir = next(p for p in sorted(out.iterdir()) if (p / "run.json").is_file())  # not runs.sqlite
    assert main(["export-labels", str(run_dir), "-o", str(tmp_path / "w.jsonl"), "--splits", "transfer"]) == 0
    lines = (tmp_path / "w.jsonl").read_text().splitlines()
    assert all(json.loads(ln)["split"] == "transfer" for ln in lines) and len(lines) > 10


def test_degenerate_splits_fail_the_run_before_any_training(tmp_path, tiny_encoders):
    """The toy task's 120 examples cannot hold the default minimums (test 200, val 100): the run stops
    with the split, its size and the fix, and no stage is trained or cached."""
    weak, strong = tiny_encoders
    toy = write_toy_task(tmp_path / "toy.jsonl")
    cache = tmp_path / "cache"
    r = w2s("run", "--task", str(toy), "--weak", str(weak), "--strong", str(strong), "--out", str(tmp_path / "out"),
            "--cache-dir", str(cache))
    err = r.stderr
    assert r.returncode == 2 and "Traceback" not in err
    assert "split 'test' has 120 examples, under splits.min_test=200" in err and "--set splits.min_test=120" in err
    assert not list(cache.glob("stages/*/*")) and not (tmp_path / "out").exists()


def test_list_commands(capsys):
    assert main(["list", "tasks"]) == 0
    out = capsys.readouterr().out
    assert "cities" in out and "sst2" in out and "sciq" in out
    assert main(["list", "models"]) == 0
    assert "minilm-l6" in capsys.readouterr().out
    assert main(["list", "methods"]) == 0
    out = capsys.readouterr().out
    assert "xent" in out and "logconf" in out and "product" in out
