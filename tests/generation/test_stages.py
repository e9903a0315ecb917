"""The generation stages' records: speeds with the device and the load."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from conftest import build_tiny_lm

from w2sgen.config import FinetuneConfig, GenConfig, RunConfig
from w2sgen.generation.stages import prompt_stage, sft_stage
from w2sgen.models import resolve_model
from w2sgen.protocol import StageKey


class _Cache:
    """A stage cache that always builds."""

    def __init__(self, root):
        self.root, self.n = root, 0

    def get_or_build(self, stage, inputs, build):
        self.n += 1
        d = self.root / f"{stage}{self.n}"
        d.mkdir()
        build(d)
        return d, False


@pytest.fixture(scope="module")
def side(tmp_path_factory):
    path = build_tiny_lm(tmp_path_factory.mktemp("lm") / "tiny")
    return SimpleNamespace(meta={}, model=resolve_model(str(path)), device="cpu", dtype="fp32")


def _cfg() -> RunConfig:
    return RunConfig(task="t", weak="w", strong="s", mode="finetune", gen=GenConfig(max_new_tokens=3, batch_size=4),
                     finetune=FinetuneConfig(max_steps=2, batch_size=4, lr=1e-3))


def _check_timings(info):
    assert info["device_model"].startswith("cpu:") and info["threads"] >= 1
    for s in ("val", "test"):
        g = info["generate"][s]
        assert g["n"] == 2 and g["tokens"] > 0 and len(g["load_1min"]) == 2
        assert all(isinstance(x, float) for x in g["load_1min"])


def test_stage_records_name_the_device_and_the_load(tmp_path, side):
    cache, cfg = _Cache(tmp_path), _cfg()
    gen = {"max_new_tokens": 3, "batch_size": 4, "template": cfg.gen.template, "lora": True}
    predict = {s: ([f"{s}0", f"{s}1"], ["the city of rome is in ?", "the city of oslo is in ?"]) for s in ("val", "test")}
    train = (["a", "b", "c", "d"], ["the city of paris is in ?"] * 4, ["france"] * 4)
    st = sft_stage(cache, "ceiling", StageKey({"x": 1}), side, cfg, 0, train, predict, gen)
    _check_timings(st.info)
    assert st.info["n_truncated"] == 0 and all(isinstance(x, float) for x in st.info["train_load_1min"])
    pr = prompt_stage(cache, "student", StageKey({"x": 2}), side, cfg, predict, gen)
    _check_timings(pr.info)
