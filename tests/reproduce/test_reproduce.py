"""``w2s reproduce`` end to end on tiny local models of three sizes: probe mode (the grid through the
sweep engine, resume from the cache, claims.json / ceilings.json / report.html) and finetune mode
(the command a GPU machine runs with a hub ladder)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import _tiny_tokenizer, write_toy_task

from w2sgen.cli import main
from w2sgen.reproduce.claims import VERDICTS
from w2sgen.reproduce.design import blocks, param_count, parse_params

TINY = ["splits.n_weak_train=40", "splits.n_transfer=40", "splits.n_val=20", "splits.n_test=20",
        "splits.min_val=20", "splits.min_test=20", "embed.dtype=fp32", "bootstrap.folds=2"]


def sized(path: Path, hidden: int, seed: int, lm: bool = False) -> Path:
    """A tiny random BERT (or Llama LM) of width ``hidden`` with the tiny word-level tokenizer."""
    import torch
    import transformers as tf

    tok = _tiny_tokenizer(path)
    torch.manual_seed(seed)
    common = dict(vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
                  num_attention_heads=2, max_position_embeddings=64, pad_token_id=tok.pad_token_id)
    if lm:
        tf.AutoModelForCausalLM.from_config(tf.LlamaConfig(**common, num_key_value_heads=1)).save_pretrained(path)
    else:
        tf.AutoModel.from_config(tf.BertConfig(**common)).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def ladder(tmp_path_factory) -> tuple[list[str], Path]:
    root = tmp_path_factory.mktemp("ladder")
    models = [str(sized(root / f"m{h}", h, i)) for i, h in enumerate((8, 16, 32))]
    return models, write_toy_task(root / "toy.jsonl", n=200)


def test_parse_params_and_counting(ladder):
    assert parse_params("22.7M") == pytest.approx(22.7e6)
    assert parse_params("1.5B") == pytest.approx(1.5e9)
    assert parse_params("") is None
    models, _ = ladder
    counts = [param_count(m) for m in models]
    assert counts == sorted(counts) and counts[0] > 0
    assert param_count("gemma-3-270m") == pytest.approx(268e6)


def test_grid_design(ladder, tmp_path):
    models, task = ladder
    (b,) = blocks(models, [str(task)], "probe", [0, 1], False, str(tmp_path), TINY)
    pairs = {(r.weak, r.strong) for r in b.runs}
    assert pairs == {(models[0], models[1]), (models[0], models[2]), (models[1], models[2]), (models[0], models[0])}
    end = [r for r in b.runs if (r.weak, r.strong) == (models[0], models[2])]
    assert all("bootstrap" in r.methods and r.method_args["bootstrap"]["models"] == [models[1]] for r in end)
    assert all("early_stop" in r.methods for r in b.runs if r.weak != r.strong)
    assert all(r.splits.n_test == 20 for r in b.runs)  # --set reaches every run
    default = blocks(None, None, None, None, False, str(tmp_path))
    assert [x.mode for x in default] == ["probe", "finetune"]
    assert default[1].ladder == ["minilm-l6", "mpnet-base"] and {r.seeds[0] for r in default[1].runs} == {0, 1, 2}
    assert {r.splits.n_transfer for r in default[1].runs} == {1500}


def _args(models, task, out, cache, *extra):
    args = ["reproduce", "--ladder", ",".join(models), "--tasks", str(task), "--seeds", "0,1", "--out", str(out),
            "--cache-dir", str(cache)]
    for s in TINY:
        args += ["--set", s]
    return args + list(extra)


@pytest.mark.integration
def test_probe_end_to_end(ladder, tmp_path, capsys):
    models, task = ladder
    out, cache = tmp_path / "out", tmp_path / "cache"
    args = _args(models, task, out, cache, "--set", "probe.epochs=5", "--set", "probe.lr=0.01")
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "claims (95% intervals" in text and "ceilings (probe ladder)" in text
    claims = json.loads((out / "claims.json").read_text())
    assert claims and all(c["verdict"] in VERDICTS for c in claims)
    assert all({"claim", "statistic", "value", "lo", "hi", "verdict"} <= set(c) for c in claims)
    ceil = json.loads((out / "ceilings.json").read_text())["probe ladder"]
    assert set(next(iter(ceil.values()))) == set(models)  # every rung's ceiling, the smallest's too
    html = (out / "report.html").read_text()
    assert "Test accuracy vs strong size" in html and "PGR vs strong size" in html and html.count("<img") >= 2
    assert (out / "plots" / "figure3-probe-ladder.svg").is_file()
    assert len(list((out / "runs").glob("*/run.json"))) == 8  # 4 pairs x 2 seeds
    # a rerun trains nothing (every stage is cached) and states the same claims
    entries = sorted((p, p.stat().st_mtime_ns) for p in (cache / "stages").glob("*/*/predictions.parquet"))
    assert main(args) == 0
    capsys.readouterr()
    assert sorted((p, p.stat().st_mtime_ns) for p in (cache / "stages").glob("*/*/predictions.parquet")) == entries
    assert json.loads((out / "claims.json").read_text()) == claims


@pytest.mark.slow  # a local Ray (2 CPUs): 1-3 min here; make test already runs Ray in tests/sweep and tests/benchmark
def test_probe_grid_runs_on_ray(ladder, tmp_path, capsys):
    """``--executor ray``: the grid's runs are Ray tasks in other processes; the claims come back the same way."""
    import os

    pytest.importorskip("ray")
    models, task = ladder
    out = tmp_path / "out"
    args = _args(models, task, out, tmp_path / "cache", "--set", "probe.epochs=5", "--executor", "ray",
                 "--workers", "2")
    assert main(args) == 0
    assert "claims (95% intervals" in capsys.readouterr().out
    runs = [json.loads(p.read_text()) for p in (out / "runs").glob("*/run.json")]
    assert len(runs) == 8 and {r["executor"]["kind"] for r in runs} == {"ray"}
    assert os.getpid() not in {r["executor"]["pid"] for r in runs}
    claims = json.loads((out / "claims.json").read_text())
    assert claims and all(c["verdict"] in VERDICTS for c in claims)


def test_dry_run_and_bad_arguments(ladder, tmp_path, capsys):
    models, task = ladder
    assert main(_args(models, task, tmp_path / "o", tmp_path / "c", "--dry-run")) == 0
    text = capsys.readouterr().out
    assert "probe ladder: 8 runs" in text and "stages:" in text
    assert not (tmp_path / "o" / "claims.json").exists()
    assert main(["reproduce", "--ladder", models[0], "--out", str(tmp_path / "x")]) == 2
    assert "at least two models" in capsys.readouterr().err
    assert main(["reproduce", "--seeds", "0,x", "--out", str(tmp_path / "x")]) == 2


@pytest.mark.integration
def test_finetune_end_to_end(tmp_path, capsys):
    """--mode finetune with a ladder of causal LMs: what a GPU machine runs with gpt2 ... gpt2-xl."""
    models = [str(sized(tmp_path / f"lm{h}", h, i, lm=True)) for i, h in enumerate((8, 16, 32))]
    task = write_toy_task(tmp_path / "toy.jsonl", n=200)
    args = ["reproduce", "--mode", "finetune", "--ladder", ",".join(models), "--tasks", str(task), "--seeds", "0",
            "--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"), "--set", "finetune.max_steps=2",
            "--set", "finetune.batch_size=8", "--set", "finetune.lr=1e-3"]
    for s in TINY:
        args += ["--set", s]
    assert main(args) == 0
    claims = json.loads((tmp_path / "out" / "claims.json").read_text())
    assert {c["claim"] for c in claims} >= {"4"} and all(c["verdict"] in VERDICTS for c in claims)
    runs = [json.loads(p.read_text()) for p in (tmp_path / "out" / "runs").glob("*/run.json")]
    assert runs and all(r["mode"] == "finetune" for r in runs)
    end = [r for r in runs if r["weak"]["name"] == models[0] and r["strong"]["name"] == models[2]]
    assert {"xent", "logconf", "early_stop", "bootstrap"} <= set(end[0]["stages"]["students"])
    assert end[0]["stages"]["students"]["early_stop"]["analysis"]["early_stop"]["oracle"]


def test_quick_says_what_it_leaves_out(tmp_path):
    from w2sgen.reproduce.cli import quick_note

    default = blocks(None, None, None, None, True, str(tmp_path))
    note = quick_note(default)
    assert note.startswith("--quick: a smaller check")
    assert "2 task(s) (cities, sst2), 3 seed(s), up to 1,000 examples per task, 300 test" in note
    assert "finetune encoder pair: 1 task(s) (sst2), 1 seed(s), weak_train/transfer/val/test 1,000/400/100/200" in note
    assert "one seed" in note
    assert {r.splits.max_examples for r in default[0].runs} == {1000}
    ladder_only = blocks(["minilm-l6", "mpnet-base"], None, "probe", None, True, str(tmp_path))
    assert "one seed" not in quick_note(ladder_only)
