"""The generation method hooks: a select, a labels and a loss method, each one file registered from
outside the package, change what the student trains on and how, and its cache key (tiny decoders)."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pandas as pd
import pytest
from generation.fixtures import gen_config, write_task

import w2sgen
from w2sgen.generation.methods import GEN_METHODS

METHOD_FILE = '''
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


def suffix(cfg, ctx):  # a labels method: the weak answers with a word appended (never a right answer)
    a = ctx.weak_answers("transfer")
    return Answers(a.ids, [t + cfg.suffix for t in a.texts], a.logprob, a.n_tokens)


@dataclass
class DoubleConfig:
    scale: float = 2.0


def make_double(cfg):
    def loss(logits, labels, step, total):
        CALLS.append((tuple(logits.shape), step, total))
        return cfg.scale * answer_xent(logits, labels, step, total)
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

    # labels: the student trained on the method's answers, not the weak model's
    assert transfer["right"].any()  # the weak answers are right sometimes, the appended ones never
    assert st["hook_suffix"]["analysis"]["train_targets"] == {"n": 40, "acc": 0.0}

    # loss: the method's objective is what the optimizer saw (the same first batch, twice the loss)
    assert hook_methods.CALLS and all(total == st["hook_double"]["train"]["steps"] for _, _, total in hook_methods.CALLS)
    assert st["hook_double"]["losses"][0] == pytest.approx(2 * st["xent"]["losses"][0], rel=1e-5)

    # composed (labels then select) and every key distinct: no method is served another's student
    assert st["hook_suffix+hook_keep"]["analysis"]["train_targets"] == {"n": 20, "acc": 0.0}
    keys = {m: st[m]["key"] for m in methods}
    assert len(set(keys.values())) == len(methods)

    # a setting of a hook method is in its student's key
    cfg2 = gen_config(task, weak, strong, tmp_path / "out2", methods=["hook_keep"],
                      method_args={"hook_keep": {"frac": 0.25}})
    (rec2,) = w2sgen.run(cfg2, cache_dir=cache_dir).runs
    s2 = rec2["stages"]["students"]["hook_keep"]
    assert s2["n_train"] == 10 and not s2["cached"] and s2["key"] != keys["hook_keep"]
