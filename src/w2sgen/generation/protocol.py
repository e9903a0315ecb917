"""The weak-to-strong protocol on generation tasks, as cached stages:

    floor    : the weak LM finetuned (SFT) on weak_train's gold answers -> answers on transfer, val, test
    ceiling  : the strong LM finetuned on transfer's gold answers        -> answers on val, test
    student  : per method, e.g. xent = the strong LM finetuned on transfer's weak answers -> val, test

Every stage's key is a ``protocol.StageKey`` built with ``StageInputs.make`` (task fingerprint with
its gold answers, split ids, the model side, the finetune section, the resolved ``gen`` settings,
the method's settings and the answers it trains on), so the read recorder proves it complete. The
checker scores every stage's answers after the stages have run; methods never see gold answers of
transfer, val or test (:class:`~w2sgen.generation.context.GenContext`).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ..protocol import KeyEnv, StageInputs, StageKey, ids_hash, part_analyses, stage_inputs
from .methods import Answers, GenSpec, parse
from .scoring import right, student_effects
from .stages import GenStage, prompt_stage, sft_stage

TRAIN_GEN = ("max_new_tokens", "batch_size", "template", "lora")
"""The ``gen`` fields a finetuned stage's key holds (resolved); a prompted stage's holds all but lora."""


def gen_settings(cfg: Any, task: Any, device: str, train: bool = True) -> dict[str, Any]:
    """The resolved ``gen`` settings of a stage: max_new_tokens (the task's default when unset),
    batch_size, template and (finetuned stages) lora (unset: LoRA on a CPU, all weights elsewhere)."""
    g = cfg.gen
    out = {"max_new_tokens": int(g.max_new_tokens or task.max_new_tokens), "batch_size": int(g.batch_size),
           "template": str(g.template)}
    if train:
        out["lora"] = bool(device == "cpu") if g.lora is None else bool(g.lora)
    return out


DECODING = "greedy-raw-logits"
"""How every stage decodes (in its key): greedy on the raw logits, the checkpoint's generation_config.json
ignored (before: its processors, e.g. repetition_penalty, applied)."""


def gen_covers(train: bool = True) -> frozenset[str]:
    return frozenset(f"gen.{f}" for f in TRAIN_GEN if train or f != "lora")


def answers_hash(ids: list[str], texts: list[str]) -> str:
    """Hash of (id, answer) pairs in order: what a stage trains on."""
    return ids_hash([f"{i}\x1f{t}" for i, t in zip(ids, texts, strict=True)])


class GenKeys:
    """The stage inputs of one seed of a generation run (built on ``protocol.StageInputs``)."""

    def __init__(self, inputs: StageInputs, gold: dict[str, list[str]], gen_train: dict[str, Any],
                 gen_prompt: dict[str, Any]):
        self.inputs = inputs
        self._gold = gold
        self.gen_train = gen_train
        self.gen_prompt = gen_prompt

    def _sft(self, stage: str, side_key: str, **entries: Any) -> StageKey:
        return self.inputs.make(stage, side_key, task_kind="generation", decoding=DECODING, gen=self.gen_train,
                                **entries).with_(gen_covers(True))

    def floor(self, weak_key: str) -> StageKey:
        """The weak model on weak_train's gold answers."""
        ids = self.inputs.split_ids["weak_train"]
        return self._sft("floor", weak_key, train_split="weak_train", train=answers_hash(ids, self._gold["weak_train"]),
                         generate=["transfer", "val", "test"])

    def ceiling(self, strong_key: str) -> StageKey:
        """The strong model on transfer's gold answers."""
        ids = self.inputs.split_ids["transfer"]
        return self._sft("ceiling", strong_key, train_split="transfer", train=answers_hash(ids, self._gold["transfer"]),
                         generate=["val", "test"])

    def student(self, spec: GenSpec, strong_key: str, answers: Answers, declared: dict[str, Any] | None = None,
                covers: frozenset[str] = frozenset()) -> StageKey:
        """A finetuned student of ``spec`` trained on ``answers`` (transfer ids and target texts)."""
        settings = {f"method_args.{p.method.name}" for p in spec.parts}
        extra = {"declared": declared} if declared else {}
        return self._sft("student", strong_key, method=spec.name, settings=spec.settings(), train_split="transfer",
                         train=answers_hash(answers.ids, answers.texts), generate=["val", "test"],
                         **extra).with_(settings | covers)

    def prompted(self, spec: GenSpec, strong_key: str, weights_dtype: str, declared: dict[str, Any] | None = None,
                 covers: frozenset[str] = frozenset()) -> StageKey:
        """A student of ``spec`` that prompts the strong model (no training, no weak answers)."""
        settings = {f"method_args.{p.method.name}" for p in spec.parts}
        extra = {"declared": declared} if declared else {}
        return self.inputs.make("student", strong_key, trains=False, task_kind="generation", decoding=DECODING,
                                method=spec.name,
                                settings=spec.settings(), gen=self.gen_prompt, weights_dtype=weights_dtype,
                                generate=["val", "test"], **extra
                                ).with_(gen_covers(False) | settings | covers | {"finetune.weights_dtype"})


def run_seed(cfg: Any, seed: int, task: Any, splits: Any, weak: Any, strong: Any, cache: Any) -> dict[str, Any]:
    """All stages of one seed of a generation run; returns its record (metrics, keys, timings) with
    ``_stages`` (the GenStages) and ``_correct`` ({stage: {split: (n,) bool}})."""
    from ..reads import tracked

    cfg = tracked(cfg)
    t_run = time.time()
    frame = task.frame
    inputs = stage_inputs(cfg, seed, task, splits)
    ids = inputs.split_ids
    prompts = {s: frame["text"].iloc[splits[s]].tolist() for s in ids}
    gold = {s: frame["answer"].iloc[splits[s]].astype(str).tolist() for s in ids}
    _ = strong.meta, weak.meta  # resolves each side's device
    keys = GenKeys(inputs, gold, gen_settings(cfg, task, strong.device), gen_settings(cfg, task, strong.device, train=False))
    weak_gen = gen_settings(cfg, task, weak.device)
    keys_weak = GenKeys(inputs, gold, weak_gen, keys.gen_prompt)

    floor = sft_stage(cache, "floor", keys_weak.floor(weak.key), weak, cfg, seed,
                      (ids["weak_train"], prompts["weak_train"], gold["weak_train"]),
                      {s: (ids[s], prompts[s]) for s in ("transfer", "val", "test")}, weak_gen)
    ceiling = sft_stage(cache, "ceiling", keys.ceiling(strong.key), strong, cfg, seed,
                        (ids["transfer"], prompts["transfer"], gold["transfer"]),
                        {s: (ids[s], prompts[s]) for s in ("val", "test")}, keys.gen_train)
    ctx = _context(cfg, seed, task, splits, keys, ids, prompts, gold, floor, weak, strong, cache)
    students, specs = {}, {}
    for name in cfg.methods:
        t_m = time.time()
        st, spec = run_student(ctx, keys, name)
        st.wall_s = time.time() - t_m
        students[spec.name], specs[spec.name] = st, spec

    checker = task.checker
    stages = {"weak": floor, "ceiling": ceiling, **{f"student-{m}": st for m, st in students.items()}}
    correct = {k: {s: right(checker, st.answers(s, ids[s]).texts, gold[s]) for s in st.splits()}
               for k, st in stages.items()}
    record = {"weak": dict(block(floor, correct["weak"]), source="floor", model=weak.model.name, features=weak.key),
              "ceiling": block(ceiling, correct["ceiling"]), "students": {}}
    w, c = record["weak"]["test"]["acc"], record["ceiling"]["test"]["acc"]
    weak_test = floor.answers("test", ids["test"])
    for name, st in students.items():
        b = block(st, correct[f"student-{name}"])
        b["n_train"] = int(st.info.get("n_train", 0))
        b["uses_ground_truth"] = False
        b["pgr_acc"] = _pgr(w, b["test"]["acc"], c)
        b["test"].update(student_effects(correct["weak"]["test"], correct[f"student-{name}"]["test"], weak_test.texts,
                                         st.answers("test", ids["test"]).texts, _agreement(task)))
        b["analysis"] = analyze(ctx, specs[name], st, task, gold)
        record["students"][name] = b
    record["wall_s"] = round(time.time() - t_run, 3)
    record["_stages"] = stages
    record["_correct"] = correct
    return record


def run_student(ctx: Any, keys: GenKeys, name: str) -> tuple[GenStage, GenSpec]:
    """Train (or load) the student of method ``name``; the whole pipeline runs in one recorded scope
    whose covers are the student's key (its settings are read inside it)."""
    from .. import reads
    from ..store.cache import stage_key

    with reads.scope(f"student {name}") as sc:
        spec = parse(name, ctx.cfg.method_args)
        ctx.method, ctx.settings = spec.name, spec.settings()
        env = ctx.key_env()
        declared = {}
        for p in spec.parts:
            if p.method.key_fn is not None:
                declared.update(p.method.key_fn(p.cfg, env) or {})
        alone = spec.one("alone")
        if alone is not None:
            key = keys.prompted(spec, ctx.strong.key, _weights_dtype(ctx), declared, frozenset(env.covers))
            sc.covers |= key.covers
            st = alone.method.run_fn(alone.cfg, ctx, key)
        else:
            # the key's covers do not depend on the answers it trains on: cover them before any hook
            # runs, so a labels method may build its own cached stages (each checks every open scope)
            no_answers = Answers([], [], np.zeros(0), np.zeros(0, np.int64))
            sc.covers |= keys.student(spec, ctx.strong.key, no_answers, declared, frozenset(env.covers)).covers
            lab = spec.one("labels")
            sup = lab.method.supervise_fn(lab.cfg, ctx) if lab is not None else ctx.weak_answers("transfer")
            for p in spec.of_kind("select"):
                sup = sup.take(np.asarray(p.method.select_fn(p.cfg, sup), dtype=bool))
                if not len(sup):
                    from ..errors import W2SError

                    raise W2SError(f"method {p.method.name!r}: kept none of the transfer answers; loosen its settings")
            loss = spec.one("loss")
            loss_fn = loss.method.make_loss(loss.cfg) if loss is not None and loss.method.make_loss else None
            key = keys.student(spec, ctx.strong.key, sup, declared, frozenset(env.covers))
            sc.covers |= key.covers
            st = ctx.train_student(key, sup, loss_fn)
        if st.key != stage_key(key) or st.name != "student":
            raise RuntimeError(f"method {spec.name!r} must store its student under the key it was given")
    return st, spec


def _agreement(task: Any) -> Any:
    """The checker that says whether the student's answer agrees with the weak one: the task's own when it
    compares two answers (exact, numeric); exact match for a task's custom function, which may expect a
    gold reference (e.g. unit tests) rather than another model's answer."""
    from .checkers import CHECKERS, exact_match

    return task.checker if any(task.checker is c for c in CHECKERS.values()) else exact_match


def _weights_dtype(ctx: Any) -> str:
    spec = ctx.strong.model.spec
    return ctx.cfg.finetune.weights_dtype or (spec.dtype if spec else "fp32")


def _context(cfg, seed, task, splits, keys, ids, prompts, gold, floor, weak, strong, cache):
    from .context import GenContext

    pos = {i: k for k, i in enumerate(ids["transfer"])}
    gen_train, gen_prompt = keys.gen_train, keys.gen_prompt  # not ``keys``: it holds every split's gold answers

    def train(key: StageKey, answers: Answers, loss_fn: Any) -> GenStage:
        rows = [pos[i] for i in answers.ids]
        return sft_stage(cache, "student", key, strong, cfg, seed,
                         (list(answers.ids), [prompts["transfer"][r] for r in rows], list(answers.texts)),
                         {s: (ids[s], prompts[s]) for s in ("val", "test")}, gen_train, loss_fn=loss_fn)

    def prompt(key: StageKey) -> GenStage:
        return prompt_stage(cache, "student", key, strong, cfg, {s: (ids[s], prompts[s]) for s in ("val", "test")},
                            gen_prompt)

    def key_env() -> KeyEnv:
        from ..models import resolve_model
        from ..protocol import side_for

        def model_key(name: str, layer: int | None, mode: str | None) -> str:
            return side_for(resolve_model(name), layer, cfg, cache.root).key

        return KeyEnv(cfg, model_key, strong.model.name, weak.model.name, ids)

    return GenContext(cfg, seed, ids, prompts, gold["weak_train"], floor, strong, weak, cache, train, prompt, key_env)


def analyze(ctx: Any, spec: GenSpec, st: GenStage, task: Any, gold: dict[str, list[str]]) -> dict[str, Any]:
    """Ground-truth facts of a student, after its method returned: the accuracy of the answers it was
    trained on (the weak answers it kept), and each part's ``analyze_fn``."""
    out: dict[str, Any] = {}
    if st.path is not None and (st.path / "train.parquet").is_file():
        import pandas as pd

        t = pd.read_parquet(st.path / "train.parquet")
        lookup = dict(zip(ctx.ids("transfer"), gold["transfer"], strict=True))
        ok = right(task.checker, t["target"].astype(str).tolist(), [lookup[i] for i in t["id"].astype(str)])
        out["train_targets"] = {"n": int(len(ok)), "acc": float(ok.mean()) if len(ok) else None}
    out.update(part_analyses(spec, st, gold, ctx))
    return out


def block(st: GenStage, correct: dict[str, np.ndarray]) -> dict[str, Any]:
    """A stage's record: key, cache hit, wall time, accuracy per split, training facts, loss curve."""
    out: dict[str, Any] = {"key": st.key, "cached": st.cached, "wall_s": round(st.wall_s, 3)}
    for s in ("transfer", "val", "test"):
        if s in correct:
            out[s] = {"acc": float(correct[s].mean()) if len(correct[s]) else float("nan"), "auroc": float("nan")}
    for s in ("val", "test"):
        out.setdefault(s, {"acc": float("nan"), "auroc": float("nan")})
    out["train"] = {k: v for k, v in st.info.items() if k != "losses"}
    losses = list(st.info.get("losses") or [])
    out["final_loss"] = losses[-1] if losses else None
    out["losses"] = losses
    return out


def _pgr(weak: float, w2s: float, ceiling: float) -> float:
    from ..metrics import pgr

    return pgr(weak, w2s, ceiling)
