"""Checkpoints within a finetune: a crashed run resumes to the uninterrupted result; eval_every curves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import build_tiny_model, toy_texts

from w2sgen.config import FinetuneConfig
from w2sgen.errors import W2SError
from w2sgen.train.checkpoint import latest_checkpoint
from w2sgen.train.losses import logconf


class Crash(RuntimeError):
    pass


toy = toy_texts


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from w2sgen.models.registry import resolve_model

    return resolve_model(str(build_tiny_model(tmp_path_factory.mktemp("m") / "llama", "llama")))


def run(model, cfg: FinetuneConfig, **kw):
    from w2sgen.train.finetune import finetune

    tr_x, tr_y = toy(45)
    te_x, _ = toy(20, seed=1)
    target = np.eye(2, dtype=np.float32)[tr_y] * 0.8 + 0.1  # soft labels

    def loss(lg, t, s, T, window=None):  # batch-level: uses the window across micro-batches
        return logconf(lg, t, alpha=0.5, window=window)

    loss.needs_window = True

    return finetune(model, tr_x, target, loss, cfg, seed=0, num_classes=2, pooling="last", layer=-1,
                    eval_sets={"test": te_x, "val": te_x[:7]}, **kw)


@pytest.mark.parametrize("lora", [False, True])
def test_resume_after_crash_equals_uninterrupted(tmp_path, tiny, lora):
    # 45 examples, micro 3 x 2 accumulated = 6 per step: 8 steps per epoch, the last uneven; 2 epochs
    cfg = FinetuneConfig(lr=3e-3, epochs=2, batch_size=8, micro_batch_size=3, lora=lora, lora_rank=4,
                         checkpoint_every=5)
    straight = run(tiny, cfg)
    assert len(straight.losses) == 16

    def crash(step: int) -> None:
        if step == 8:
            raise Crash

    ck = tmp_path / "ck"
    with pytest.raises(Crash):
        run(tiny, cfg, checkpoint_dir=ck, on_step=crash)
    assert latest_checkpoint(ck, next(iter(_fps(ck)))).name == "step-00000005"
    resumed = run(tiny, cfg, checkpoint_dir=ck)
    assert resumed.info["resumed_from_step"] == 5
    np.testing.assert_allclose(resumed.losses, straight.losses, rtol=0, atol=1e-6)
    for k in straight.probs:
        np.testing.assert_allclose(resumed.probs[k], straight.probs[k], rtol=0, atol=1e-6)
    for k in straight.trainable:
        np.testing.assert_allclose(resumed.trainable[k].numpy(), straight.trainable[k].numpy(), rtol=0, atol=1e-6)


def _fps(root):
    import json

    return {json.loads((d / "meta.json").read_text())["fingerprint"] for d in root.iterdir() if d.is_dir()}


def test_checkpoint_of_another_run_is_ignored(tmp_path, tiny):
    cfg = FinetuneConfig(lr=3e-3, max_steps=4, batch_size=8, checkpoint_every=2)

    def crash(step: int) -> None:
        if step == 3:
            raise Crash

    ck = tmp_path / "ck"
    with pytest.raises(Crash):
        run(tiny, cfg, checkpoint_dir=ck, on_step=crash)
    other = run(tiny, FinetuneConfig(lr=1e-3, max_steps=4, batch_size=8, checkpoint_every=2), checkpoint_dir=ck)
    assert "resumed_from_step" not in other.info  # a different lr: its fingerprint differs


def test_checkpoint_every_validated(tiny):
    with pytest.raises(W2SError, match="checkpoint_every"):
        run(tiny, FinetuneConfig(max_steps=1, batch_size=8, checkpoint_every=0))


def test_eval_every_curve(tiny):
    cfg = FinetuneConfig(lr=3e-3, max_steps=5, batch_size=8)
    res = run(tiny, cfg, eval_every=2)
    assert [c["step"] for c in res.curve] == [2, 4, 5]  # every 2 steps and at the end
    for c in res.curve:
        assert set(c["probs"]) == {"test", "val"} and c["probs"]["test"].shape == (20, 2)
    for k in res.probs:
        np.testing.assert_array_equal(res.curve[-1]["probs"][k], res.probs[k])
    plain = run(tiny, cfg)
    assert plain.curve == []
    np.testing.assert_allclose(plain.probs["test"], res.probs["test"], rtol=0, atol=1e-6)  # evals don't perturb
    assert not np.allclose(res.curve[0]["probs"]["test"], res.probs["test"])


def test_eval_every_with_resume_keeps_the_curve(tmp_path, tiny):
    cfg = FinetuneConfig(lr=3e-3, max_steps=6, batch_size=8, checkpoint_every=4)
    straight = run(tiny, cfg, eval_every=2)

    def crash(step: int) -> None:
        if step == 5:
            raise Crash

    with pytest.raises(Crash):
        run(tiny, cfg, eval_every=2, checkpoint_dir=tmp_path / "ck", on_step=crash)
    resumed = run(tiny, cfg, eval_every=2, checkpoint_dir=tmp_path / "ck")
    assert [c["step"] for c in resumed.curve] == [2, 4, 6]
    for a, b in zip(straight.curve, resumed.curve):
        np.testing.assert_allclose(a["probs"]["test"], b["probs"]["test"], rtol=0, atol=1e-6)


def test_protocol_stage_resumes_after_a_crash(tmp_path, tiny_encoders, monkeypatch):
    """A run that crashes inside the ceiling's finetune resumes it from the stage's checkpoint
    (CACHE/checkpoints/ceiling/<key>), to the predictions of an uninterrupted run; the checkpoint
    is deleted once the stage entry exists."""
    import json

    import pandas as pd
    from conftest import write_toy_task

    import w2sgen
    import w2sgen.train.finetune as ft
    from w2sgen.config import RunConfig, SplitConfig

    weak, strong = tiny_encoders
    task = write_toy_task(tmp_path / "toy.jsonl", 80)

    def cfg(out: str) -> RunConfig:
        return RunConfig(task=str(task), weak=str(weak), strong=str(strong), methods=["xent"], mode="finetune",
                         out=str(tmp_path / out), splits=SplitConfig(n_weak_train=16, n_transfer=24, n_val=8, n_test=24, min_val=8, min_test=24),
                         finetune=FinetuneConfig(max_steps=4, batch_size=8, lr=3e-3, checkpoint_every=2))

    straight = w2sgen.run(cfg("a"), cache_dir=tmp_path / "ca")
    real = ft.finetune

    def crash(step: int) -> None:
        if step == 3:
            raise Crash

    def crashing(*args, **kw):
        if kw.get("desc", "").startswith("ceiling"):
            kw["on_step"] = crash
        return real(*args, **kw)

    monkeypatch.setattr(ft, "finetune", crashing)
    with pytest.raises(Crash):
        w2sgen.run(cfg("b"), cache_dir=tmp_path / "cb")
    ck = list((tmp_path / "cb" / "checkpoints" / "ceiling").glob("*/step-*"))
    assert [p.name for p in ck] == ["step-00000002"]
    monkeypatch.setattr(ft, "finetune", real)
    resumed = w2sgen.run(cfg("b"), cache_dir=tmp_path / "cb")
    info = json.loads((Path(resumed.runs[0]["_dir"]) / "run.json").read_text())
    assert info["stages"]["ceiling"]["train"]["resumed_from_step"] == 2
    assert "resumed_from_step" not in info["stages"]["weak"]["train"]  # the floor was cached, not rerun
    assert not any((tmp_path / "cb" / "checkpoints" / "ceiling").glob("*"))
    assert resumed.runs[0]["stages"]["ceiling"]["key"] == straight.runs[0]["stages"]["ceiling"]["key"]
    for name in ("ceiling", "student-xent"):
        a = pd.read_parquet(f"{straight.runs[0]['_dir']}/predictions/{name}.parquet")
        b = pd.read_parquet(f"{resumed.runs[0]['_dir']}/predictions/{name}.parquet")
        num = a.select_dtypes("number").columns
        np.testing.assert_allclose(b[num].to_numpy(), a[num].to_numpy(), rtol=0, atol=1e-6)
