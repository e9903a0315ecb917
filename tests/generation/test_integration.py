"""cities_gen end to end on the packaged smollm2-135m (weak and strong), a short budget (integration)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import w2sgen
from w2sgen.config import FinetuneConfig, GenConfig, RunConfig, SplitConfig
from w2sgen.generation.checkers import exact_match

pytestmark = pytest.mark.integration


def test_cities_gen_with_smollm2(tmp_path, cache_dir):
    """Three LoRA steps per finetuned stage: the losses fall, answers stop at EOS or a newline, the
    checker's verdicts are what the run folder and the statistics hold."""
    from w2sgen.models import resolve_model
    from w2sgen.models.backbone import local_dir

    try:
        local_dir(resolve_model("smollm2-135m"))
    except Exception:  # noqa: BLE001 - the packaged model is optional here
        pytest.skip("smollm2-135m is not installed")
    cfg = RunConfig(task="cities_gen", weak="smollm2-135m", strong="smollm2-135m", methods=["xent"],
                    seeds=[0], mode="finetune", out=str(tmp_path / "out"),
                    splits=SplitConfig(n_weak_train=24, n_transfer=24, n_val=16, n_test=32, min_val=16, min_test=32),
                    finetune=FinetuneConfig(max_steps=3, batch_size=8, lr=1e-3), gen=GenConfig(batch_size=16))
    res = w2sgen.run(cfg, cache_dir=cache_dir)
    rec = res.runs[0]
    st = rec["stages"]
    assert rec["gen"] == {"max_new_tokens": 8, "batch_size": 16, "template": "{prompt}\nAnswer:", "lora": True}
    for b in (st["weak"], st["ceiling"], st["students"]["xent"]):
        assert b["train"]["steps"] == 3 and b["train"]["lora"] is True and b["train"]["train_tokens_per_s"] > 0
        assert b["losses"][-1] < b["losses"][0]
    speed = st["weak"]["train"]["generate"]["test"]
    assert speed["n"] == 32 and speed["tokens_per_s"] > 0
    assert speed["stopped"] > 0.5  # answers end at EOS or a newline, not at max_new_tokens
    gens = pd.read_parquet(f"{rec['_dir']}/generations/ceiling.parquet")
    assert gens["right"].tolist() == [exact_match(o, g) for o, g in zip(gens["output"], gens["gold"], strict=True)]
    assert gens.loc[gens["split"] == "test", "right"].mean() == pytest.approx(st["ceiling"]["test"]["acc"])
    t = res.table
    assert list(t["method"]) == ["xent"] and np.isfinite(t["gap_acc"]).all()
