"""Finetuning real packaged models on real data (integration: minutes, not seconds)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import require_data

import w2sgen
from w2sgen.config import FinetuneConfig, RunConfig, SplitConfig

pytestmark = pytest.mark.integration


def test_minilm_finetune_beats_its_frozen_probe_on_sst2(tmp_path, cache_dir):
    """Same data, same seed: finetuning MiniLM-L6 for one epoch (40 steps) vs a linear probe on its frozen features."""
    data = require_data("sst2")
    base = dict(task="sst2", data_dir=str(data), weak="minilm-l6", strong="minilm-l6", methods=["xent"], seeds=[0],
                splits=SplitConfig(n_weak_train=64, n_transfer=640, n_val=64, n_test=300, min_val=64))
    probe = w2sgen.run(RunConfig(**base, out=str(tmp_path / "p"), mode="probe"), cache_dir=cache_dir)
    ft = w2sgen.run(RunConfig(**base, out=str(tmp_path / "f"), mode="finetune",
                              finetune=FinetuneConfig(epochs=1, batch_size=16, micro_batch_size=16, lr=5e-5)),
                    cache_dir=cache_dir)
    p_acc = probe.table["ceiling_acc"].iloc[0]
    f_acc = ft.table["ceiling_acc"].iloc[0]
    info = ft.runs[0]["stages"]["ceiling"]["train"]
    assert info["steps"] == 40  # 640 examples, one epoch and info["effective_batch"] == 16
    assert f_acc > p_acc or f_acc >= 0.80, (f_acc, p_acc)


def test_protocol_finetune_with_smollm2_as_strong(tmp_path, cache_dir):
    """weak minilm-l6 -> strong smollm2-135m (LoRA), every stage finetuned, on a small cities subset."""
    cfg = RunConfig(task="cities", weak="minilm-l6", strong="smollm2-135m", methods=["xent", "logconf"], seeds=[0],
                    mode="finetune", out=str(tmp_path / "out"),
                    splits=SplitConfig(n_weak_train=64, n_transfer=64, n_val=16, n_test=96, min_val=16, min_test=96),
                    finetune=FinetuneConfig(max_steps=4, batch_size=16, micro_batch_size=8, lora=True))
    res = w2sgen.run(cfg, cache_dir=cache_dir)
    t = res.table
    assert list(t["method"]) == ["logconf", "xent"]
    assert t[["weak_acc", "ceiling_acc", "w2s_acc"]].to_numpy().min() > 0.3
    st = res.runs[0]["stages"]
    assert st["ceiling"]["train"]["lora"] is True and st["ceiling"]["train"]["family"] == "llama"
    assert st["ceiling"]["train"]["steps"] == 4
    entry = cache_dir / "stages" / "ceiling" / st["ceiling"]["key"]
    assert (entry / "adapter.safetensors").is_file()
    assert (entry / "adapter.safetensors").stat().st_size < 20e6  # adapters + head, not a copy of the base
    assert np.isfinite(t["w2s_auroc"]).all()
