"""The generation method hooks: a select, a labels and a loss method, each one file registered from
outside the package, change what the student trains on and how, and its cache key (tiny decoders)."""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from generation.fixtures import gen_config, write_task

import w2sgen
from w2sgen.errors import W2SError
from w2sgen.generation.methods import GEN_METHODS

METHOD_FILE = '''
import json
from dataclasses import dataclass

import numpy as np

from w2sgen.generation.lm import answer_xent
from w2sgen.generation.methods import Answers, GenMethod, register

CALLS = []


@dataclass
class KeepConfig:
    frac: float = 0.5
    """Share of the transfer answers kept: those the weak model wrote with the highest log-probability."""


def keep_confident(cfg, answers):
    order = np.argsort(-answers.logprob, kind="stable")
    keep = np.zeros(len(answers), dtype=bool)
    keep[order[: int(round(cfg.frac * len(answers)))]] = True
    return keep


@dataclass
class SuffixConfig:
    suffix: str = " zzz"


def suffix(cfg, ctx):  # a labels method: the weak answers with a word appended (never a right answer),
    # written in a cached stage of its own, keyed by the floor and its setting (as a vote over sampled
    # weak answers would be)
    a = ctx.weak_answers("transfer")

    def build(d):
        (d / "answers.json").write_text(json.dumps([t + cfg.suffix for t in a.texts]))

    path = ctx.method_stage("suffixed", build)
    return Answers(a.ids, json.loads((path / "answers.json").read_text()), a.logprob, a.n_tokens)


@dataclass
class DoubleConfig:
    scale: float = 2.0


def make_double(cfg):
    def loss(logits, labels, step, total, model, input_ids, attention_mask, position_ids, n_answer):
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        CALLS.append((tuple(logits.shape), step, total, trainable, tuple(input_ids.shape), n_answer))
        return cfg.scale * answer_xent(logits, labels, step, total)
    loss.wants_batch = True  # given the model being trained and the batch (a sequence-level loss needs them)
    return loss


register(GenMethod(name="hook_keep", kind="select", config_cls=KeepConfig, select_fn=keep_confident,
                   description="keeps the most confident weak answers"), overwrite=True)
register(GenMethod(name="hook_suffix", kind="labels", config_cls=SuffixConfig, supervise_fn=suffix,
                   description="weak answers with a word appended"), overwrite=True)
register(GenMethod(name="hook_double", kind="loss", config_cls=DoubleConfig, make_loss=make_double,
                   description="answer cross-entropy times scale"), overwrite=True)
'''


@pytest.fixture
def hook_methods(tmp_path):
    path = tmp_path / "my_gen_methods.py"
    path.write_text(METHOD_FILE)
    spec = importlib.util.spec_from_file_location("my_gen_methods", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["my_gen_methods"] = mod
    spec.loader.exec_module(mod)
    yield mod
    for name in ("hook_keep", "hook_suffix", "hook_double"):
        GEN_METHODS.unregister(name)
    sys.modules.pop("my_gen_methods", None)


def test_one_file_methods_plug_into_every_hook(tmp_path, tiny_decoders, cache_dir, hook_methods):
    weak, strong = tiny_decoders
    task = write_task(tmp_path / "cities.jsonl")
    methods = ["xent", "hook_keep", "hook_suffix", "hook_double", "hook_suffix+hook_keep"]
    cfg = gen_config(task, weak, strong, tmp_path / "out", methods=methods)
    (rec,) = w2sgen.run(cfg, cache_dir=cache_dir).runs
    st = rec["stages"]["students"]
    d = rec["_dir"]
    weak_gen = pd.read_parquet(f"{d}/generations/weak.parquet")
    transfer = weak_gen[weak_gen["split"] == "transfer"].reset_index(drop=True)
    assert len(transfer) == 40 and st["xent"]["n_train"] == 40

    # select: exactly the 20 answers of highest log-probability, chosen without gold answers
    assert st["hook_keep"]["n_train"] == 20
    kept = np.sort(np.argsort(-transfer["logprob"].to_numpy(), kind="stable")[:20])
    targets = st["hook_keep"]["analysis"]["train_targets"]
    assert targets["n"] == 20
    assert targets["acc"] == pytest.approx(transfer["right"].to_numpy()[kept].mean())

    # labels: the student trained on the method's answers, not the weak model's, built in its own
    # cached stage inside the student's recorded scope
    assert len(list(cache_dir.glob("**/suffixed/*/answers.json"))) == 2  # keyed by each method's settings
    assert transfer["right"].any()  # the weak answers are right sometimes, the appended ones never
    assert st["hook_suffix"]["analysis"]["train_targets"] == {"n": 40, "acc": 0.0}

    # loss: the method's objective is what the optimizer saw (the same first batch, twice the loss)
    calls = hook_methods.CALLS
    assert calls and all(total == st["hook_double"]["train"]["steps"] for _, _, total, *_ in calls)
    for (b, a, _v), _, _, trainable, (b2, t), n_answer in calls:
        assert trainable > 0 and b2 == b and a == n_answer < t  # the model in training, its batch
    assert st["hook_double"]["losses"][0] == pytest.approx(2 * st["xent"]["losses"][0], rel=1e-5)

    # composed (labels then select) and every key distinct: no method is served another's student
    assert st["hook_suffix+hook_keep"]["analysis"]["train_targets"] == {"n": 20, "acc": 0.0}
    keys = {m: st[m]["key"] for m in methods}
    assert len(set(keys.values())) == len(methods)

    # a setting of a labels method is in the key of its own stage, which is rebuilt, not served stale
    cfg3 = gen_config(task, weak, strong, tmp_path / "out3", methods=["hook_suffix"],
                      method_args={"hook_suffix": {"suffix": " yyy"}})
    (rec3,) = w2sgen.run(cfg3, cache_dir=cache_dir).runs
    targets = pd.read_parquet(next(p for p in cache_dir.glob("**/student/*/train.parquet")
                                   if p.parent.name == rec3["stages"]["students"]["hook_suffix"]["key"]))
    assert targets["target"].str.endswith(" yyy").all()
    assert len(list(cache_dir.glob("**/suffixed/*/answers.json"))) == 3

    # a setting of a hook method is in its student's key
    cfg2 = gen_config(task, weak, strong, tmp_path / "out2", methods=["hook_keep"],
                      method_args={"hook_keep": {"frac": 0.25}})
    (rec2,) = w2sgen.run(cfg2, cache_dir=cache_dir).runs
    s2 = rec2["stages"]["students"]["hook_keep"]
    assert s2["n_train"] == 10 and not s2["cached"] and s2["key"] != keys["hook_keep"]


def test_a_method_file_in_the_package_is_found_and_registered(tmp_path, monkeypatch):
    """One file defining ``METHOD`` in ``w2sgen/generation/methods/`` is a method (here the package's
    search path is extended to a temporary folder instead of writing into the source tree)."""
    from w2sgen.generation import method_names
    from w2sgen.generation import methods as pkg
    from w2sgen.generation.methods import parse

    (tmp_path / "hook_found.py").write_text(
        "from dataclasses import dataclass\n"
        "from w2sgen.generation.methods import GenMethod\n\n\n"
        "@dataclass\nclass C:\n    k: int = 3\n\n\n"
        "METHOD = GenMethod(name='hook_found', kind='select', config_cls=C,\n"
        "                   select_fn=lambda cfg, answers: answers.logprob > -1.0, description='found')\n")
    monkeypatch.setattr(pkg, "__path__", [*pkg.__path__, str(tmp_path)])
    try:
        pkg._discover()
        assert "hook_found" in method_names()
        assert parse("xent+hook_found", {"hook_found": {"k": 5}}).one("select").cfg.k == 5
    finally:
        GEN_METHODS.unregister("hook_found")
        sys.modules.pop("w2sgen.generation.methods.hook_found", None)
    with pytest.raises(W2SError, match=r"unknown method 'hook_found'.*xent, zero_shot \(a new one is a file"):
        parse("hook_found")


def test_the_firewall_hides_gold_answers_from_generation_methods(tmp_path, tiny_decoders, cache_dir):
    """A method that looks for the ceiling's cache entries (trained on transfer's gold answers) is
    refused and its run fails even when it catches the error; nothing a method can reach holds the gold
    answers of transfer, val or test."""
    from w2sgen.errors import GroundTruthError
    from w2sgen.generation.methods import Answers, GenMethod, register
    from w2sgen.generation.protocol import GenKeys

    seen = {}

    @dataclass
    class Peek:
        catch: bool = False

    def peek(cfg, ctx):
        seen["ctx"] = ctx
        try:
            ctx.cache.get("ceiling", "0" * 24)
        except GroundTruthError:
            if not cfg.catch:
                raise
        a = ctx.weak_answers("transfer")
        return Answers(a.ids, a.texts, a.logprob, a.n_tokens)

    register(GenMethod(name="hook_peek", kind="labels", config_cls=Peek, supervise_fn=peek, description="peeks"),
             overwrite=True)
    try:
        weak, strong = tiny_decoders
        task = write_task(tmp_path / "cities.jsonl")
        for catch in (False, True):
            cfg = gen_config(task, weak, strong, tmp_path / f"out{catch}", methods=["hook_peek"],
                             method_args={"hook_peek": {"catch": catch}})
            with pytest.raises(W2SError, match=r"method 'hook_peek' tried to read the stage cache's 'ceiling'"):
                w2sgen.run(cfg, cache_dir=cache_dir)
        assert list(cache_dir.glob("**/ceiling/*/inputs.json"))  # the run got as far as the student
        assert not list(cache_dir.glob("**/student/*/inputs.json"))  # whose stage was never committed
        ctx = seen["ctx"]
        gold = set(pd.read_json(task, lines=True)["answer"])
        reachable = [*vars(ctx).values()]
        for f in (ctx._train, ctx._prompt, ctx._key_env):
            reachable += [c.cell_contents for c in f.__closure__ or ()]
        assert not [v for v in reachable if isinstance(v, GenKeys)]
        assert not [v for v in reachable if isinstance(v, dict) and "transfer" in v
                    and any(isinstance(x, list) and x and set(x) <= gold for x in v.values())]
    finally:
        GEN_METHODS.unregister("hook_peek")
