"""The loss and relabelling methods of issue 5 as plug-ins: registry, configs, hooks, end-to-end runs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import toy_config, write_toy_task

import w2sgen
from w2sgen.config import FinetuneConfig, RunConfig, apply_overrides
from w2sgen.errors import W2SError
from w2sgen.methods import METHODS
from w2sgen.methods.confidence_filter import keep_mask
from w2sgen.methods.window import midweak

NEW = ["kl", "entropy", "window", "adaptconf", "reverse_ce", "confidence_filter"]


def test_registered_with_one_line_descriptions_and_config_dataclasses():
    import dataclasses

    for name in NEW:
        m = METHODS.get(name)
        assert m.name == name and m.description and "\n" not in m.description
        assert dataclasses.is_dataclass(m.config_cls)


@pytest.mark.parametrize("name", NEW)
def test_loss_accepts_the_accumulation_window(name):
    m = METHODS.get(name)
    cfg = m.prepare(m.config(), np.array([[0.3, 0.7], [0.9, 0.1]], dtype=np.float32))
    loss = m.make_loss(cfg)
    logits = torch.tensor([[0.2, -0.1], [1.0, 0.5], [0.0, 0.3]], requires_grad=True)
    weak = torch.tensor([[0.4, 0.6], [0.8, 0.2], [0.1, 0.9]])
    win = (torch.tensor([[0.5, 0.5]]), torch.tensor([[0.3, 0.7]]))
    a = loss(logits, weak, 3, 10)
    b = loss(logits, weak, 3, 10, window=win)
    assert torch.isfinite(a) and a.item() == pytest.approx(b.item())
    b.backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()


def test_confidence_filter_drops_exactly_the_labels_near_one_half():
    p1 = np.array([0.55, 0.6, 0.61, 0.39, 0.4, 0.95, 0.05, 0.5])
    weak = np.stack([1 - p1, p1], axis=1)
    want = np.array([False, False, True, True, False, True, True, False])  # 0.4 and 0.6 are inside [0.4, 0.6]
    np.testing.assert_array_equal(keep_mask(weak, 0.1), want)
    m = METHODS.get("confidence_filter")
    keep, target = m.select(m.config({"radius": 0.1}), weak.astype(np.float32))
    np.testing.assert_array_equal(keep, keep_mask(weak.astype(np.float32), 0.1))
    np.testing.assert_allclose(target, weak)  # targets are the weak labels themselves
    keep0, _ = m.select(m.config({"radius": 0}), weak)
    np.testing.assert_array_equal(keep0, p1 != 0.5)
    with pytest.raises(W2SError, match="kept none"):
        m.select(m.config({"radius": 0.49}), weak)


def test_other_methods_keep_everything():
    weak = np.array([[0.5, 0.5], [0.2, 0.8]], dtype=np.float32)
    for name in ("xent", "kl", "window"):
        m = METHODS.get(name)
        keep, target = m.select(m.config(), weak)
        assert keep.all() and target is weak


def test_window_radius_midweak_is_resolved_from_the_weak_labels():
    weak = np.array([[0.9, 0.1], [0.4, 0.6], [0.5, 0.5], [0.2, 0.8]])  # margins 0.4, 0.1, 0, 0.3
    assert midweak(weak) == pytest.approx(0.2)
    m = METHODS.get("window")
    assert m.config().radius == "midweak"
    assert m.prepare(m.config(), weak).radius == pytest.approx(0.2)
    assert m.prepare(m.config({"radius": 0.05}), weak).radius == 0.05
    with pytest.raises(ValueError, match="prepare"):
        m.make_loss(m.config())


@pytest.mark.parametrize("name, bad", [("window", {"radius": "wide"}), ("window", {"radius": -0.1}),
                                       ("confidence_filter", {"radius": 0.5}), ("adaptconf", {"temperature": 0}),
                                       ("kl", {"x": 1})])
def test_bad_settings_are_user_errors(name, bad):
    with pytest.raises(W2SError, match=name):
        METHODS.get(name).config(bad)


def test_set_overrides_reach_the_new_methods():
    cfg = apply_overrides(RunConfig(methods=["window", "confidence_filter"]),
                          ["window.radius=0.1", "confidence_filter.radius=0.2", "entropy.alpha_max=0.75"])
    assert cfg.method_args == {"window": {"radius": 0.1}, "confidence_filter": {"radius": 0.2},
                               "entropy": {"alpha_max": 0.75}}
    assert METHODS.get("window").config(cfg.method_args["window"]).radius == 0.1


# --------------------------------------------------------------------------- end to end (tiny random encoders)


_config = toy_config


@pytest.fixture(scope="module")
def e2e(tmp_path_factory, tiny_encoders):
    """One probe-mode run of every new method (plus xent), sharing floor and ceiling."""
    tmp = tmp_path_factory.mktemp("e2e")
    toy = write_toy_task(tmp / "toy.jsonl")
    weak, strong = tiny_encoders
    mp = pytest.MonkeyPatch()
    mp.setenv("W2S_CACHE_DIR", str(tmp / "cache"))
    try:
        cfg = _config(toy, weak, strong, tmp / "out", methods=["xent", *NEW],
                      method_args={"confidence_filter": {"radius": 0.02}})
        res = w2sgen.run(cfg, cache_dir=tmp / "cache")
    finally:
        mp.undo()
    return res


@pytest.mark.parametrize("name", NEW)
def test_end_to_end_probe(e2e, name):
    row = e2e.table.set_index("method").loc[name]
    for col in ("w2s_acc", "w2s_auroc"):
        assert 0 <= row[col] <= 1, col
    st = e2e.runs[0]["stages"]["students"][name]
    assert np.isfinite(st["final_loss"]) and not st["cached"]
    if name != "confidence_filter":
        assert st["n_train"] == 40


def _weak_on_transfer(rec) -> tuple[list[str], np.ndarray]:
    import pandas as pd

    f = pd.read_parquet(f"{rec['_dir']}/predictions/weak.parquet").query("split == 'transfer'")
    return f["id"].tolist(), f[["prob_0", "prob_1"]].to_numpy(np.float32)


def test_confidence_filter_student_trains_on_the_kept_examples(e2e):
    rec = e2e.runs[0]
    _, p = _weak_on_transfer(rec)
    n_keep = int(keep_mask(p, 0.02).sum())
    assert 0 < n_keep < 40  # the toy floor leaves some labels near 1/2
    st = rec["stages"]["students"]
    assert st["confidence_filter"]["n_train"] == n_keep
    assert st["confidence_filter"]["key"] != st["xent"]["key"]


def test_student_keys_hold_resolved_settings_and_kept_examples():
    """Methods without hooks keep the key they had before prepare/select existed (caches stay valid);
    window keys on its resolved radius, confidence_filter on the ids and targets it keeps."""
    from w2sgen.protocol import StageInputs, StageKey, ids_hash
    from w2sgen.tasks.splits import Splits

    weak = np.array([[0.9, 0.1], [0.45, 0.55], [0.2, 0.8]], dtype=np.float32)
    ids = ["a", "b", "c"]
    keys = StageInputs(RunConfig(method_args={"confidence_filter": {"radius": 0.1}}), StageKey({"seed": 0, "mode": "probe"}),
                       {"transfer": ids}, np.array([0, 1, 1]), Splits({"transfer": np.array([3, 5, 7])}, 0))
    assert keys.student("xent", "f", weak)["train"] == ids_hash(ids, weak)
    assert keys.student("window", "f", weak)["settings"] == {"radius": pytest.approx(0.3)}
    cf = keys.student("confidence_filter", "f", weak)
    assert cf["train"] == ids_hash(["a", "c"], weak[[0, 2]])
    plan = keys.student_plan("confidence_filter", weak)
    assert plan.ids == ["a", "c"] and plan.rows.tolist() == [3, 7]
    np.testing.assert_array_equal(plan.target, weak[[0, 2]])


def test_select_in_finetune_mode_trains_on_the_kept_texts(tmp_path, tiny_encoders, cache_dir, monkeypatch):
    """The select hook in finetune mode: the student finetunes on exactly the kept rows."""
    import w2sgen.train.finetune as ft

    seen: list[int] = []
    targets: list[np.ndarray] = []
    real = ft.finetune

    def spy(model, train_texts, target, *a, **kw):
        assert len(train_texts) == len(target)
        seen.append(len(train_texts))
        targets.append(np.asarray(target))
        return real(model, train_texts, target, *a, **kw)

    def keep_even(cfg, weak):  # a filter whose choice does not depend on the (random) tiny floor
        return np.arange(len(weak)) % 2 == 0, 1.0 - weak

    monkeypatch.setattr(ft, "finetune", spy)
    monkeypatch.setattr(METHODS.get("confidence_filter"), "select_fn", keep_even)
    weak, strong = tiny_encoders
    toy = write_toy_task(tmp_path / "toy.jsonl")
    cfg = _config(toy, weak, strong, tmp_path / "out", methods=["confidence_filter"], mode="finetune",
                  finetune=FinetuneConfig(max_steps=2, batch_size=8, micro_batch_size=8, lr=1e-3))
    res = w2sgen.run(cfg, cache_dir=cache_dir)
    assert seen == [40, 40, 20]  # floor, ceiling, student
    assert res.runs[0]["stages"]["students"]["confidence_filter"]["n_train"] == 20
    np.testing.assert_allclose(targets[2], 1.0 - _weak_on_transfer(res.runs[0])[1][::2], atol=1e-6)


def test_cli_lists_and_accepts_the_methods(capsys, tiny_encoders, tmp_path):
    from w2sgen.cli import _check_names, _config_from_args, build_parser, main

    assert main(["list", "methods"]) == 0
    out = capsys.readouterr().out
    for name in NEW:
        assert any(line.startswith(name + " ") and METHODS.get(name).description in line for line in out.splitlines())
    weak, strong = tiny_encoders
    toy = write_toy_task(tmp_path / "toy.jsonl")
    a = build_parser().parse_args(["run", "--task", str(toy), "--weak", str(weak), "--strong", str(strong),
                                   "--methods", ",".join(NEW), "--set", "window.radius=0.1"])
    cfg = _config_from_args(a)
    _check_names(cfg)
    assert cfg.methods == NEW and cfg.method_args == {"window": {"radius": 0.1}}
