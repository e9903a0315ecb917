"""``w2sgen.run`` for generation tasks: every seed's stages, its statistics and its run folder.

A run folder of a generation run holds, besides ``run.json`` (``task_kind: generation``):

    predictions/<stage>.parquet   id, split, prob_0, prob_1: the checker's verdict as one-hot (scoring.py)
    labels.parquet                id, split, label (1), group
    generations/<stage>.parquet   id, split, prompt, gold, output, right, n_tokens, logprob, stopped
"""

from __future__ import annotations

import logging
import os
import platform
import time
from collections.abc import Collection
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..config import RunConfig, to_dict
from ..errors import W2SError

log = logging.getLogger("w2sgen")


def load_gen_task(cfg: RunConfig) -> Any:
    """The generation task of ``cfg`` (a registered name with ``gen.task_args``, or a data file),
    scored by ``gen.checker`` when set."""
    from ..tasks import TASKS, load_task
    from .tasks import GenTaskSpec

    name = cfg.task
    if name in TASKS and isinstance(TASKS.get(name), GenTaskSpec):
        task = TASKS.get(name).load(cfg.data_dir, task_args=cfg.gen.task_args)
    else:
        if cfg.gen.task_args:
            raise W2SError(f"config field 'gen.task_args': task {name!r} is not generated; it takes no settings")
        task = load_task(name, cfg.data_dir, cfg.text_col, cfg.label_col, cfg.group_col)
    if task.kind != "generation":
        raise W2SError(f"task {name!r} is not a generation task")
    return task.with_checker(cfg.gen.checker)


def with_defaults(cfg: RunConfig, given: Collection[str] | None = None) -> RunConfig:
    """``cfg`` with the generation defaults in the run fields its user left unset: ``mode`` finetune and
    ``methods`` DEFAULT_METHODS (RunConfig's defaults, probe and xent + logconf, are for classification).

    ``given``: the fields the user set (the CLI: flags, ``--set`` and the config YAML; ``w2sgen.run``
    with a dict: its keys). None (a RunConfig object): a field equal to RunConfig's default counts as
    unset, since a RunConfig cannot tell ``RunConfig(mode="probe")`` from ``RunConfig()``; an explicit
    choice that differs from the default is kept and checked by :func:`check_config`."""
    from . import DEFAULT_METHODS

    default = RunConfig()
    unset = {name: value for name, value in (("mode", "finetune"), ("methods", list(DEFAULT_METHODS)))
             if (name not in given if given is not None else getattr(cfg, name) == getattr(default, name))}
    if not unset:
        return cfg
    chosen = ", ".join(f"{n} {v}" for n, v in unset.items())
    if given is None:  # a RunConfig object: its classification defaults are replaced, which the user should see
        log.warning("task %s is a generation task: running with %s instead of RunConfig's classification "
                    "defaults (set mode='finetune' and methods explicitly, or pass a dict config, to choose)",
                    cfg.task, chosen)
    else:
        log.info("task %s is a generation task: %s", cfg.task, chosen)
    return replace(cfg, **unset)


def check_config(cfg: RunConfig) -> list[str]:
    """Refuse what a generation run cannot do (naming the fix); returns the parsed method names."""
    from .methods import parse

    if cfg.mode != "finetune":
        raise W2SError(f"config field 'mode' is {cfg.mode!r}, but task {cfg.task!r} is a generation task (answers "
                       "written as text): it runs in finetune mode (SFT of the weak and strong language models). "
                       "Set mode to 'finetune' (CLI: --mode finetune) or leave it unset (w2s run and w2sgen.run "
                       "then choose finetune)")
    ft = cfg.finetune
    for name, bad, fix in (
            ("lora", ft.lora, "generation tasks choose LoRA with gen.lora (unset: LoRA on a CPU, all weights on a "
                              "GPU): use --set gen.lora=true"),
            ("checkpoint_every", ft.checkpoint_every, "a generation stage keeps no checkpoints (it reruns whole); "
                                                      "leave it unset"),
            ("head_lr", ft.head_lr, "a causal LM finetuned on answers has no classification head; leave it unset")):
        if bad is not None and bad is not False:
            raise W2SError(f"config field 'finetune.{name}' = {bad!r} does not apply to generation task "
                           f"{cfg.task!r}: {fix}")
    if cfg.weak_labels:
        raise W2SError("--weak-labels: bringing your own weak labels is for classification tasks; a generation "
                       "task's weak answers come from the weak model")
    g = cfg.gen
    for name, v in (("max_new_tokens", g.max_new_tokens), ("batch_size", g.batch_size)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise W2SError(f"config field 'gen.{name}': {v!r} must be an integer >= 1")
    if "{prompt}" not in str(g.template):
        raise W2SError(f"config field 'gen.template': {g.template!r} has no '{{prompt}}'; the models would never "
                       "see the question (e.g. '{prompt}\\nAnswer:')")
    return [parse(m, cfg.method_args).name for m in cfg.methods]


def require_decoders(*models: Any) -> None:
    """Refuse an encoder as the weak or strong model of a generation task (it cannot write answers)."""
    from ..models.lm import model_kind

    for role, m in zip(("--weak", "--strong"), models, strict=True):
        if model_kind(m) != "decoder":
            raise W2SError(f"{role} {m.name!r} is an encoder; a generation task needs decoders (causal LMs) that "
                           "write answers, e.g. --weak smollm2-135m --strong smollm2-135m")


def run(cfg: RunConfig, *, cache_dir: str | Path | None = None, trackers: Any = None, index: bool = True,
        executor_info: dict[str, Any] | None = None):
    """Run the generation protocol for every seed of ``cfg`` (see ``w2sgen.run``)."""
    from .. import api
    from ..models import resolve_model
    from ..protocol import side_for
    from ..safety import check_writable, writing
    from ..store.cache import StageCache
    from ..tasks.splits import make_splits

    cfg = replace(cfg, methods=check_config(cfg))
    weak_model, strong_model = resolve_model(cfg.weak), resolve_model(cfg.strong)
    cache = StageCache(cache_dir)
    check_writable(cfg.out, "results directory")
    check_writable(cache.root, "cache directory")
    t0 = time.time()
    task = load_gen_task(cfg)
    t_task = time.time() - t0
    log.info("task %s: %d examples (%.1fs)", task.name, len(task), t_task)
    require_decoders(weak_model, strong_model)
    plan = {seed: make_splits(task, cfg.splits, seed) for seed in cfg.seeds}
    strong = side_for(strong_model, cfg.embed.strong_layer, cfg, cache.root, role="strong")
    weak = side_for(weak_model, cfg.embed.weak_layer, cfg, cache.root, role="weak")
    out = Path(cfg.out)
    records = []
    for seed, splits in plan.items():
        api.seed_everything(seed)
        t_seed = time.time()
        with writing("cache directory", cache.root):
            from .protocol import gen_settings, run_seed

            rec = run_seed(cfg, seed, task, splits, weak, strong, cache)
        stages, correct = rec.pop("_stages"), rec.pop("_correct")
        run_stats = finish(rec, task, splits, correct)
        record = {
            "config": dict(to_dict(cfg), seeds=[seed]), "seed": seed, "split_seed": splits.seed, "mode": cfg.mode,
            "task_kind": "generation",
            "task": {"name": task.name, "fingerprint": task.fingerprint(), "examples": len(task), "num_classes": 2,
                     "label_names": task.label_names, "checker": task.checker_name, "sizes": splits.sizes(),
                     "notes": task.notes, "load_s": round(t_task, 3)},
            "gen": gen_settings(cfg, task, strong.device),
            "weak": {"name": weak.model.name, **weak.meta}, "strong": {"name": strong.model.name, **strong.meta},
            "stages": rec, "stats": run_stats, "versions": api.versions(), "wall_s": round(time.time() - t_seed, 3),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "executor": executor_info or {"kind": "local", "pid": os.getpid(), "node": platform.node(), "worker": None},
        }
        d = write(out, task, splits, record, stages, correct)
        if index:
            from ..store.db import index_run

            index_run(out, d)
            if trackers:
                from ..trackers import log_run

                log_run(trackers, out, d)
        log.info("run %s: done in %.1fs", d.name, record["wall_s"])
        record["_dir"] = str(d)
        records.append(record)
    return api.Results(records, out)


class _Verdicts:
    """A stage's correctness as the (n, 2) one-hot ``aggregate.finish_run`` reads through ``probs``."""

    def __init__(self, ids: dict[str, list[str]], correct: dict[str, Any]):
        self._by = {s: dict(zip(ids[s], c, strict=True)) for s, c in correct.items()}

    def probs(self, split: str, ids: list[str]):
        from .scoring import as_probs

        by = self._by.get(split)
        if by is None or any(i not in by for i in ids):
            return None
        return as_probs([by[i] for i in ids])


def finish(rec: dict[str, Any], task: Any, splits: Any, correct: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The run's ``stats`` block from ``aggregate.finish_run`` (the gap over test groups, its interval,
    the flag; a flagged run's PGRs nulled), without what correctness cannot give: majority-class
    accuracy (every label is "right") and ECE (the verdicts are not probabilities)."""
    from ..aggregate import finish_run

    ids = {s: task.frame["id"].iloc[splits[s]].tolist() for s in ("transfer", "val", "test")}
    stats = finish_run(rec, task, splits, {k: _Verdicts(ids, c) for k, c in correct.items()})
    stats["majority_acc"] = None
    for b in [rec["weak"], rec["ceiling"], *rec["students"].values()]:
        b.get("test", {}).pop("ece", None)
    return stats


def write(out: Path, task: Any, splits: Any, record: dict[str, Any], stages: dict[str, Any],
          correct: dict[str, dict[str, Any]]) -> Path:
    """Write the run folder (predictions, generations, run.json atomically; then labels.parquet)."""
    from ..api import _write_labels
    from ..store.results import run_dir_name, write_run
    from .scoring import prediction_frame

    frame = task.frame.set_index("id")
    preds, gens = {}, {}
    for k, st in stages.items():
        g = st.generations.copy()
        ids = {s: g.loc[g["split"] == s, "id"].astype(str).tolist() for s in correct[k]}
        preds[k] = prediction_frame(ids, correct[k])
        rows = frame.loc[g["id"].astype(str)]
        g.insert(2, "prompt", rows["text"].to_numpy())
        g.insert(3, "gold", rows["answer"].to_numpy())
        flags = {(s, i): bool(v) for s in correct[k] for i, v in zip(ids[s], correct[k][s], strict=True)}
        g.insert(5, "right", [flags[(s, i)] for s, i in zip(g["split"], g["id"].astype(str), strict=True)])
        gens[f"generations/{k}.parquet"] = g
    name = run_dir_name(task.name, record["weak"]["name"], record["strong"]["name"], record["mode"], record["seed"])
    d = write_run(out, name, record, {}, preds, tables=gens)
    _write_labels(d, task, splits)
    return d

