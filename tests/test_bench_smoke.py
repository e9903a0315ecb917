"""The speed bench (bench/speed.py) runs its smallest configuration and prints a well-formed summary."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "speed.py"
SUMMARY = re.compile(r"^summary: train_speedup=\d+\.\d+ extract_speedup=\d+\.\d+ probe_speedup=\d+\.\d+ "
                     r"extract_mfu=\d+\.\d+ train_mfu=\d+\.\d+ vs_oai_best=\d+\.\d+ vs_oai_default=\d+\.\d+ "
                     r"dtype=(fp32|bf16)$")


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
    assert res["loss_diff"] <= 1e-4  # OpenAI's loop and ours reach the same final loss on the same batches (fp32)
    assert all(v > 0 for k, v in res.items() if k not in ("loss_diff", "dtype"))
    assert any(line.startswith("train ") and "oai best" in line for line in lines)
    assert any(line.startswith("first step (warm-up") for line in lines)


def test_openai_replica_and_ours_agree_on_the_same_batches(tmp_path):
    """OpenAI's loop (minibatch 1 and 8) and ours on in-order batches end at the same fp32 loss."""
    import copy

    import numpy as np
    import torch
    from conftest import build_tiny_model, toy_texts
    from transformers import AutoModel, AutoTokenizer

    from w2sgen.models.classifier import Classifier, no_dropout_config

    bench = load_bench()
    path = build_tiny_model(tmp_path / "gpt2", "gpt2")
    tok = AutoTokenizer.from_pretrained(path)
    torch.manual_seed(0)
    clf = Classifier(AutoModel.from_pretrained(path, config=no_dropout_config(path)), 2, "last", -1)
    init = copy.deepcopy(clf.state_dict())
    texts, y = toy_texts(24)
    target = np.eye(2, dtype=np.float32)[y] * 0.8 + 0.1
    enc = tok(texts, truncation=True, max_length=bench.MAX_LENGTH)["input_ids"]
    finals = {}
    for mb in (1, 8):
        clf.load_state_dict(init)
        finals[f"oai{mb}"] = bench.oai_train(clf.backbone, clf.head, enc, target, batch=8, minibatch=mb, steps=3,
                                             lr=3e-3)[-1]
    bench.LR = 3e-3  # a rate that moves the tiny model
    try:
        clf.load_state_dict(init)
        losses, _ = bench.ours_train(clf, tok, texts, target, batch=8, steps=3, dtype="fp32", device="cpu", in_order=True)
    finally:
        bench.LR = 5e-5
    assert abs(losses[-1] - finals["oai8"]) < 1e-4 and abs(finals["oai1"] - finals["oai8"]) < 1e-4
    clf.load_state_dict(init)
    first = bench.oai_train(clf.backbone, clf.head, enc, target, batch=8, minibatch=8, steps=1, lr=3e-3)[-1]
    assert abs(first - finals["oai8"]) > 1e-3  # the loss moved: agreeing at the end is not trivial


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


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def test_coverage_bench_counts_an_unbounded_interval_as_flagged_not_as_covering(monkeypatch):
    """w2sgen shows no PGR when its interval is unbounded (stats.pgr_flag_reason): the bench scores
    such an experiment as flagged, never as a hit."""
    import numpy as np

    mod = _load(COVERAGE_BENCH, "w2s_bench_coverage_flags")
    nan = float("nan")
    shown = np.array([[0, 0.1, 0.5, 0, -0.1, 0.1]] * 3)  # PGR [0.1, 0.5] covers 0.3, ΔPGR covers 0
    unbounded = np.array([[0, nan, nan, 0, nan, nan]] * 2)
    x = np.concatenate([shown, unbounded])
    rows = [{"truth": (0.3, 0.0), **{m: x for m in (*mod.ANALYTIC, *mod.BOOT)}, "run_gap_cover": np.ones(5, bool)}]
    table, pooled = mod.score({(3, 0.10): rows})
    r = next(r for r in table if r["method"] == mod.MAIN)
    assert r["n"] == 3 and r["unflagged"] == 0.6 and r["cov_pgr"] == 1.0 and r["cov_delta"] == 1.0
    # analytic(): an unbounded Fieller interval raises the experiment's flag
    rng = np.random.default_rng(0)
    t, _ = mod.simulate(rng, 2, 3, np.array([0.7, 0.9, 0.76, 0.8]), "shared")
    assert (mod.analytic(t, "shared")[mod.MAIN][:, [0, 3]] == 0).all()  # a 20-point gap: shown
    monkeypatch.setattr(mod.stats, "ratio_interval", lambda *a, **k: mod.stats.Interval(0.3, nan, nan))
    assert (mod.analytic(t, "shared")[mod.MAIN][:, [0, 3]] == 1).all()


def test_methods_bench_overall_prints_the_gap_and_the_multiple_comparison_note(capsys):
    import pandas as pd

    mod = _load(METHODS_BENCH, "w2s_bench_methods_overall")
    row = dict(group="encoder", runs=6, uses_ground_truth=False, pgr_acc=0.4, pgr_acc_lo=0.2, pgr_acc_hi=0.6,
               flagged=False, flag_reason=None, gap_acc=0.10, gap_acc_lo=0.07, gap_acc_hi=0.13, delta_pgr=0.1,
               delta_pgr_lo=-0.1, delta_pgr_hi=0.3, delta_flagged=False, delta_acc=0.01, delta_acc_lo=0.002,
               delta_acc_hi=0.018, tasks_won=1, tasks_lost=0, tasks=1, cost=1.0)
    o = pd.DataFrame([dict(row, method="xent"), dict(row, method="logconf")])
    mod.print_overall(o)
    out = capsys.readouterr().out
    assert "+10.0 [+7.0, +13.0]" in out and "gap pts" in out  # the overall gap, with its interval
    assert "above xent (Δacc interval > 0): logconf" in out and "no correction for multiple comparisons" in out
