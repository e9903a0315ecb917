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
