"""Method composition (``a+b``): parsing and its rules, the pipeline order, keys, end to end."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from conftest import toy_config, write_toy_task

import w2sgen
from w2sgen.config import RunConfig
from w2sgen.errors import W2SError
from w2sgen.methods import METHODS, Method
from w2sgen.methods.base import KINDS
from w2sgen.methods.compose import parse


def test_every_registered_method_has_a_kind_and_a_one_line_description():
    for name, m in METHODS.items():
        assert m.kind in KINDS, name
        assert m.description and "\n" not in m.description, name


def test_parts_apply_in_kind_order_and_keep_the_written_name():
    spec = parse("logconf+confidence_filter")
    assert spec.name == "logconf+confidence_filter"
    assert [p.method.name for p in spec.parts] == ["confidence_filter", "logconf"]
    assert spec.loss.method.name == "logconf"
    assert parse("confidence_filter").loss.method.name == "xent"  # no loss part: xent


def test_each_part_gets_its_own_settings():
    spec = parse("confidence_filter+logconf", {"logconf": {"alpha_max": 0.75}, "confidence_filter": {"radius": 0.2}})
    assert spec.settings() == {"confidence_filter": {"radius": 0.2},
                               "logconf": {"alpha_max": 0.75, "warmup_frac": 0.2}}


@pytest.mark.parametrize("name, match", [
    ("logconf+xent", "both loss methods"),
    ("logconf+logconf", "appears twice"),
    ("logconf+", "empty part"),
    ("logconf+confidnce_filter", "Did you mean: confidence_filter"),
])
def test_bad_compositions_are_user_errors(name, match):
    with pytest.raises(W2SError, match=match):
        parse(name)


def _alone() -> Method:
    return Method("fake_alone", "A test method that runs by itself.", dataclasses.make_dataclass("C", []),
                  kind="alone", run_fn=lambda cfg, ctx, plan: None)


def test_alone_methods_do_not_compose(monkeypatch):
    monkeypatch.setitem(METHODS._items, "fake_alone", _alone())
    with pytest.raises(W2SError, match="does not compose"):
        parse("fake_alone+logconf")
    assert parse("fake_alone").single


def test_keys_of_composed_students_differ_from_their_parts():
    from w2sgen.protocol import StageInputs, StageKey
    from w2sgen.tasks.splits import Splits

    weak = np.array([[0.9, 0.1], [0.45, 0.55], [0.2, 0.8]], dtype=np.float32)
    keys = StageInputs(RunConfig(), StageKey({"seed": 0, "mode": "probe"}), {"transfer": ["a", "b", "c"]},
                       np.array([0, 1, 1]),
                       Splits({"transfer": np.array([3, 5, 7])}, 0))
    a = keys.student("confidence_filter", "f", weak)
    b = keys.student("confidence_filter+logconf", "f", weak)
    c = keys.student("logconf", "f", weak)
    assert a["train"] == b["train"] and b["train"] != c["train"]  # the filter's kept rows, either way
    assert len({str(a), str(b), str(c)}) == 3
    assert b["method"] == "confidence_filter+logconf"


# --------------------------------------------------------------------------- end to end (tiny random encoders)


def _config(tmp_path, weak, strong, methods, **kw) -> RunConfig:
    return toy_config(write_toy_task(tmp_path / "toy.jsonl"), weak, strong, tmp_path / "out", methods=methods, **kw)


def test_composed_filter_and_loss_train_the_filtered_rows_with_the_loss(tmp_path, tiny_encoders, cache_dir):
    weak, strong = tiny_encoders
    cfg = _config(tmp_path, weak, strong, ["xent", "logconf", "confidence_filter", "confidence_filter+logconf"],
                  method_args={"confidence_filter": {"radius": 0.02}})
    res = w2sgen.run(cfg, cache_dir=cache_dir)
    st = res.runs[0]["stages"]["students"]
    assert set(st) == {"xent", "logconf", "confidence_filter", "confidence_filter+logconf"}
    assert st["confidence_filter+logconf"]["n_train"] == st["confidence_filter"]["n_train"] < 40
    losses = {k: v["losses"] for k, v in st.items()}
    assert losses["confidence_filter+logconf"] != losses["confidence_filter"]  # the loss part is used
    assert set(res.table["method"]) == set(st)


def test_a_train_part_receives_the_plan_and_must_store_the_student(tmp_path, tiny_encoders, cache_dir, monkeypatch):
    """A ``train`` method gets the plan after select and loss; a result not stored under the plan's
    key is refused (a method cannot silently return someone else's stage)."""
    seen = {}

    def train_fn(cfg, ctx, plan):
        seen["n"], seen["loss"] = len(plan.ids), plan.loss_fn
        return ctx.train_student(plan)

    m = Method("fake_train", "A test method that trains the student itself.", dataclasses.make_dataclass("C", []),
               kind="train", train_fn=train_fn)
    monkeypatch.setitem(METHODS._items, "fake_train", m)
    weak, strong = tiny_encoders
    cfg = _config(tmp_path, weak, strong, ["confidence_filter+fake_train"],
                  method_args={"confidence_filter": {"radius": 0.02}})
    res = w2sgen.run(cfg, cache_dir=cache_dir)
    b = res.runs[0]["stages"]["students"]["confidence_filter+fake_train"]
    assert seen["n"] == b["n_train"] < 40 and b["train"]["n_train"] == seen["n"]
    # rerun: the whole composed student is a cache hit and train_fn is not called again
    seen.clear()
    res2 = w2sgen.run(dataclasses.replace(cfg, out=str(tmp_path / "out2")), cache_dir=cache_dir)
    assert not seen and res2.runs[0]["stages"]["students"]["confidence_filter+fake_train"]["cached"]

    def wrong(cfg, ctx, plan):
        return ctx.floor  # someone else's stage

    monkeypatch.setattr(m, "train_fn", wrong)
    with pytest.raises(RuntimeError, match="plan's inputs"):
        w2sgen.run(dataclasses.replace(cfg, out=str(tmp_path / "out3"), seeds=[1]), cache_dir=cache_dir)
