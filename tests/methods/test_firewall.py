"""The label firewall: a method's context holds no ground truth of transfer, val or test.

Each way in (``ctx.labels``, ``ctx.keys.labels``, ``ctx.onehot`` of transfer rows, ``ctx.metrics``,
the task frame's label column, ``ctx.ceiling``, the cache's ceiling entries, ``ctx.keys.ceiling``)
raises a W2SError naming the method and what it read; a method that catches the error still fails
the run, and no student entry is written. weak_train's ground truth stays readable. Methods that
declare ``uses_ground_truth`` run unguarded and are marked.
"""

from __future__ import annotations

import contextlib
import dataclasses

import numpy as np
import pandas as pd
import pytest
from conftest import toy_config, write_toy_task

import w2sgen
from w2sgen.errors import GroundTruthError, W2SError
from w2sgen.methods import METHODS, register_method
from w2sgen.methods.base import Method


@dataclasses.dataclass
class PeekConfig:
    how: str = "labels"
    """Which way in the peeking method tries."""
    catch: bool = False
    """Catch the firewall's error and go on (as the old filters' analysis did)."""


PEEKS = {
    "labels": ("ctx.labels", lambda ctx: ctx.labels),
    "keys.labels": ("ctx.keys.labels", lambda ctx: ctx.keys.labels),
    "onehot": ("ctx.onehot", lambda ctx: ctx.onehot(ctx.rows("transfer"))),
    "metrics": ("ctx.metrics", lambda ctx: ctx.metrics(ctx.floor)),
    "frame": ("label column", lambda ctx: ctx.task.frame["label"]),
    "frame_attr": ("label column", lambda ctx: ctx.task.frame.label),
    "ceiling": ("ctx.ceiling", lambda ctx: ctx.ceiling.probs("test", ctx.ids("test"))),
    "keys.ceiling": ("ctx.keys.ceiling", lambda ctx: ctx.keys.ceiling("x")),
    "cache": ("'ceiling' entries", lambda ctx: ctx.cache.get("ceiling", "0" * 24)),
    "labels_of": ("ground truth of test", lambda ctx: ctx.labels_of("test")),
    "frame_index": ("label column", lambda ctx: ctx.task.frame[pd.Index(["text", "label"])]),
    "cache_ladder": ("'ladder-lp' entries", lambda ctx: ctx.cache.get("ladder-lp", "0" * 24)),
}


def _train(cfg: PeekConfig, ctx, plan):
    try:
        PEEKS[cfg.how][1](ctx)
    except GroundTruthError:
        if not cfg.catch:
            raise
    return ctx.train_student(plan)


@contextlib.contextmanager
def registered(method: Method):
    """``method`` in the registry for the duration (other tests see the registry unchanged)."""
    register_method(method, overwrite=True)
    try:
        yield method
    finally:
        METHODS.unregister(method.name)


@pytest.fixture
def peek():
    with registered(Method(name="peek", description="Reads ground truth (a test double).", config_cls=PeekConfig,
                           kind="train", train_fn=_train)) as m:
        yield m


@pytest.fixture
def toy(tmp_path):
    return write_toy_task(tmp_path / "toy.jsonl")


@pytest.mark.parametrize("how", sorted(PEEKS))
@pytest.mark.parametrize("catch", [False, True])
def test_every_way_to_ground_truth_is_refused_and_fails_the_run(how, catch, peek, toy, tiny_encoders, tmp_path):
    weak, strong = tiny_encoders
    cfg = toy_config(toy, weak, strong, tmp_path / "out", methods=["peek"],
                     method_args={"peek": {"how": how, "catch": catch}})
    with pytest.raises(W2SError) as e:
        w2sgen.run(cfg, cache_dir=tmp_path / "cache", index=False)
    msg = str(e.value)
    assert "method 'peek'" in msg and PEEKS[how][0] in msg and "firewall" in msg
    assert not list((tmp_path / "cache" / "stages").glob("student/*/manifest.json"))  # nothing committed


def test_weak_train_ground_truth_stays_readable(tiny_encoders, toy, tmp_path):
    """A method may read weak_train's labels (ensembles train more weak floors on them)."""
    seen = {}

    def train(cfg, ctx, plan):
        seen["y"] = ctx.weak_train_labels()
        seen["onehot"] = ctx.onehot(ctx.rows("weak_train"))
        return ctx.train_student(plan)

    weak, strong = tiny_encoders
    cfg = toy_config(toy, weak, strong, tmp_path / "out", methods=["wt_reader"])
    with registered(Method(name="wt_reader", description="Reads weak_train's labels.", config_cls=PeekConfig,
                           kind="train", train_fn=train)):
        rec = w2sgen.run(cfg, cache_dir=tmp_path / "cache", index=False).runs[0]
    assert len(seen["y"]) == rec["task"]["sizes"]["weak_train"]
    np.testing.assert_array_equal(seen["onehot"].argmax(1), seen["y"])


def test_a_method_declaring_uses_ground_truth_runs_and_is_marked(tiny_encoders, toy, tmp_path):
    def train(cfg, ctx, plan):
        assert len(ctx.labels) > 0  # allowed: declared
        return ctx.train_student(plan)

    weak, strong = tiny_encoders
    cfg = toy_config(toy, weak, strong, tmp_path / "out", methods=["xent", "gt_user"])
    with registered(Method(name="gt_user", description="Declares its ground truth.", config_cls=PeekConfig,
                           kind="train", train_fn=train, uses_ground_truth=True)):
        rec = w2sgen.run(cfg, cache_dir=tmp_path / "cache", index=False).runs[0]
    assert rec["stages"]["students"]["gt_user"]["uses_ground_truth"] is True
    assert rec["stages"]["students"]["xent"]["uses_ground_truth"] is False


def test_registered_methods_declare_ground_truth_only_where_they_train_on_it():
    assert {n for n in METHODS.names() if METHODS.get(n).uses_ground_truth} == {"probe_ladder"}


def test_row_selections_of_the_guarded_frame_carry_no_labels():
    """Masks, slices, column lists and attribute access read the frame without its label column."""
    from w2sgen.errors import GroundTruthError as GTE
    from w2sgen.methods.context import _GuardedFrame

    class Ctx:
        def refuse(self, what):
            raise GTE(what)

    frame = pd.DataFrame({"id": ["a", "b", "c"], "text": ["x", "y", "z"], "label": [0, 1, 1], "group": [0, 0, 1]})
    g = _GuardedFrame(frame, Ctx())
    mask = frame["id"] != "b"
    for view in (g[mask], g[:], g[g.columns], g[["id", "text"]], g.loc[:, :], g.iloc[0:2], g.head()):
        assert "label" not in getattr(view, "columns", getattr(view, "index", []))
    assert list(g["text"]) == ["x", "y", "z"] and len(g) == 3
    for key in ("label", ["label"], ("id", "label"), pd.Index(["label"]), np.array(["text", "label"])):
        with pytest.raises(GTE):
            g[key]
    with pytest.raises(GTE):
        _ = g.label
