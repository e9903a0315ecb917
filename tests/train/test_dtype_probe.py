"""``dtype: auto`` by measurement: the probe's rule, its cache per device model, explicit dtypes win."""

from __future__ import annotations

import json

import pytest

from w2sgen.train import dtype_probe
from w2sgen.train.activations import resolve_dtype


@pytest.fixture
def models_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("W2S_MODELS_DIR", str(tmp_path / "models"))
    return tmp_path / "models"


def test_probe_measures_both_dtypes_and_applies_the_rule():
    res = dtype_probe.probe("cpu", width=64, tokens=32)
    assert res.fp32_gflops > 0 and res.bf16_gflops > 0 and res.width == 64 and res.tokens == 32
    assert res.choice == dtype_probe.choose(res.fp32_gflops, res.bf16_gflops, res.bf16_stopped)
    assert res.device.startswith("cpu:") and "GFLOP/s" in res.describe()


def test_auto_is_measured_once_per_device_model_and_stored(models_dir, monkeypatch):
    calls = []
    real = dtype_probe.probe

    def counting(device, width, *a, **kw):
        calls.append(width)
        return real(device, width, tokens=16)

    monkeypatch.setattr(dtype_probe, "probe", counting)
    first = resolve_dtype("auto", "cpu", 32)
    assert resolve_dtype("auto", "cpu", 32) == first and calls == [32]  # the second time comes from the file
    resolve_dtype("auto", "cpu", 48)
    assert calls == [32, 48]  # another width is another probe
    table = json.loads((models_dir / dtype_probe.CACHE_FILE).read_text())
    assert len(table) == 2 and all(dtype_probe.device_model("cpu") in k for k in table)


def test_stored_choice_decides_and_explicit_dtype_wins(models_dir, monkeypatch):
    res = dtype_probe.probe("cpu", width=32, tokens=16)
    for choice in ("bf16", "fp32"):
        table = {dtype_probe._key("cpu", 32): {**res.__dict__, "choice": choice}}
        models_dir.mkdir(exist_ok=True)
        (models_dir / dtype_probe.CACHE_FILE).write_text(json.dumps(table))
        monkeypatch.setattr(dtype_probe, "probe", lambda *a, **k: pytest.fail("must not probe"))
        assert resolve_dtype("auto", "cpu", 32) == choice
        assert resolve_dtype("fp32", "cpu", 32) == "fp32" and resolve_dtype("bf16", "cpu", 32) == "bf16"


def test_rule_bf16_only_when_measured_1_2x_faster():
    assert dtype_probe.choose(100.0, 119.0) == "fp32"  # faster, but not by 1.2x
    assert dtype_probe.choose(100.0, 120.0) == "bf16"
    assert dtype_probe.choose(321.0, 163.0) == "fp32"  # a CPU that lists avx512_bf16 but runs it at half speed
    assert dtype_probe.choose(100.0, 500.0, bf16_stopped=True) == "fp32"  # cut by the budget: never chosen


def test_doctor_shows_the_probe_and_stores_nothing(models_dir):
    from w2sgen.doctor import Report, check_dtype

    rep = Report()
    check_dtype(rep, "cpu")
    rows = rep.sections["dtype auto"]
    assert rows["cpu"].startswith(("fp32 (", "bf16 (")) and "GFLOP/s" in rows["cpu"]
    assert "measured now" in rows["probe"] and not models_dir.exists()


def test_an_answer_stored_by_an_older_probe_is_measured_again(models_dir, monkeypatch):
    """Stored answers are keyed by the probe's version: one written by an older probe (a key without
    the version, as before tiny widths repeated their matmuls) is not read back."""
    import torch

    old_key = f"{dtype_probe.device_model('cpu')} | torch {torch.__version__} | width 16"
    stale = dict(device=dtype_probe.device_model("cpu"), torch=torch.__version__, width=16, tokens=128,
                 fp32_gflops=0.01, bf16_gflops=1.6, bf16_stopped=False, choice="bf16", seconds=0.5)
    models_dir.mkdir(parents=True, exist_ok=True)
    (models_dir / dtype_probe.CACHE_FILE).write_text(json.dumps({old_key: stale}))
    assert dtype_probe.cached("cpu", 16) is None
    monkeypatch.setattr(dtype_probe, "probe", lambda device, width, *a, **kw: dtype_probe.ProbeResult(
        **dict(stale, choice="fp32", fp32_gflops=10.0)))
    assert resolve_dtype("auto", "cpu", 16) == "fp32"
