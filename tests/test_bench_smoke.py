"""The speed bench (bench/speed.py) runs its smallest configuration and prints a well-formed summary."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "speed.py"
SUMMARY = re.compile(r"^summary: train_speedup=\d+\.\d+ extract_speedup=\d+\.\d+ probe_speedup=\d+\.\d+ "
                     r"extract_mfu=\d+\.\d+ train_mfu=\d+\.\d+$")


def load_bench():
    spec = importlib.util.spec_from_file_location("w2s_bench_speed", BENCH)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.integration
def test_bench_smoke(capsys):
    bench = load_bench()
    res = bench.run("smoke")
    lines = capsys.readouterr().out.strip().splitlines()
    assert SUMMARY.match(lines[-1]), lines[-1]
    assert res["loss_diff"] <= 1e-3  # naive and ours reach the same final loss (fp32)
    assert all(v > 0 for k, v in res.items() if k != "loss_diff")
    assert any(line.startswith("train ") and "naive" in line for line in lines)


SWEEP_BENCH = Path(__file__).resolve().parents[1] / "bench" / "sweep.py"
SWEEP_SUMMARY = re.compile(r"^summary: local2_ratio=\d+\.\d+ cached_rerun_s=\d+\.\d+ add_method_ratio=\d+\.\d+$")


@pytest.mark.integration
def test_sweep_bench_smoke(capsys):
    spec = importlib.util.spec_from_file_location("w2s_bench_sweep", SWEEP_BENCH)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    res = mod.run("smoke", with_ray=False)
    lines = capsys.readouterr().out.strip().splitlines()
    assert SWEEP_SUMMARY.match(lines[-1]), lines[-1]
    assert any(line.startswith("rerun cached ") for line in lines)
    assert all(v > 0 for v in res.values())


METHODS_BENCH = Path(__file__).resolve().parents[1] / "bench" / "methods.py"


@pytest.mark.integration
def test_methods_bench_smoke(capsys, tmp_path):
    """bench/methods.py on one task and two seeds with two cheap methods: the tables are well formed."""
    from conftest import require_data

    require_data("sst2")
    spec = importlib.util.spec_from_file_location("w2s_bench_methods", METHODS_BENCH)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    rc = mod.main(["--smoke", "--tasks", "sst2", "--seeds", "0,1", "--methods", "xent,confidence_filter",
                   "--out", str(tmp_path / "out"), "--features-cache", str(tmp_path / "features")])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "sst2 · encoder pair" in out and "confidence_filter" in out
    assert re.search(r"encoder\s+confidence_filter\s+2\s+[+-]\d+\.\d \[\s*[+-]\d+\.\d,\s+[+-]\d+\.\d\]", out), out


COVERAGE_BENCH = Path(__file__).resolve().parents[1] / "bench" / "coverage.py"
COVERAGE_SUMMARY = re.compile(r"^summary: coverage_pgr=\d\.\d{3} coverage_delta=\d\.\d{3} runs=\d+$")


def test_coverage_bench_smoke(capsys):
    """bench/coverage.py with a handful of experiments per cell: every method's rows and the summary line."""
    spec = importlib.util.spec_from_file_location("w2s_bench_coverage", COVERAGE_BENCH)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    assert mod.main(["--reps", "6", "--boot-reps", "6", "--n-boot", "50"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert COVERAGE_SUMMARY.match(lines[-1]), lines[-1]
    for method in (*mod.ANALYTIC, *mod.BOOT):
        assert sum(line.startswith(f"{method} ") for line in lines) == 10, method  # 5 gaps x 2 seed counts
    assert mod.MAIN == "fieller-vc"
