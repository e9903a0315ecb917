"""``probe_ladder``: the linear-probe comparison of Burns et al. (2023) on one run.

Four strong-model results on test, from weakest to strongest use of ground truth:

    lp_weak       : a linear probe on the frozen strong model, trained on the weak labels
                    (== the probe-mode ``xent`` student of the run; same stage)
    lp_gt         : a linear probe on the frozen strong model, trained on ground truth
                    (== the probe-mode ceiling; same stage)
    ft_weak_lp_gt : the strong model finetuned on the weak labels, then a linear probe on its
                    (frozen, finetuned) features trained on ground truth: how much of the ground
                    truth knowledge is still linearly there after weak finetuning
    ft_gt         : the strong model finetuned on ground truth (the finetune ceiling; same stage
                    as a finetune run's ceiling with the same finetune settings)

``ft_weak`` (the finetuned model's own predictions) comes for free and is recorded too. The
method's own predictions are lp_weak's. The finetuned weights are stored, in full (merged under
LoRA), in the cache stage ``ladder-ft`` (one model copy per seed and setting), so that the probe
of ft_weak_lp_gt reads their features.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import W2SError
from ..metrics import accuracy
from .base import Method

RUNGS = ("lp_weak", "lp_gt", "ft_weak_lp_gt", "ft_gt")


@dataclass
class ProbeLadderConfig:
    ft_steps: int | None = None
    """Cap on finetuning optimizer steps (quick CPU runs); None: the run's finetune.max_steps (epochs decide)."""
    ft_lr: float | None = None
    """Finetuning peak learning rate; None: the run's finetune.lr (or the model's default)."""
    lora: bool = False
    """Finetune LoRA adapters instead of all weights (the paper's ladder finetunes all weights)."""

    def __post_init__(self) -> None:
        if self.ft_steps is not None and (not isinstance(self.ft_steps, int) or self.ft_steps < 1):
            raise W2SError(f"method 'probe_ladder': ft_steps must be an integer >= 1 or None, got {self.ft_steps!r}")
        if self.ft_lr is not None and not self.ft_lr > 0:
            raise W2SError(f"method 'probe_ladder': ft_lr must be > 0 or None (the run's finetune.lr), got {self.ft_lr!r}")


# --------------------------------------------------------------------------- core (pure)


def ladder_configs(run_cfg: Any, cfg: ProbeLadderConfig) -> tuple[Any, Any]:
    """(probe-mode run config, finetune-mode run config) of the ladder: the run's settings with the
    mode switched and, for finetuning, ``ft_steps``, ``ft_lr`` and ``lora`` applied."""
    ft = dataclasses.replace(run_cfg.finetune, lora=cfg.lora,
                             max_steps=cfg.ft_steps if cfg.ft_steps is not None else run_cfg.finetune.max_steps,
                             lr=cfg.ft_lr if cfg.ft_lr is not None else run_cfg.finetune.lr)
    return dataclasses.replace(run_cfg, mode="probe"), dataclasses.replace(run_cfg, mode="finetune", finetune=ft)


# --------------------------------------------------------------------------- stages


def _finetuned(ctx: Any, side: Any, fcfg: Any, target: np.ndarray, stage_inputs: dict[str, Any]) -> Path:
    """The ``ladder-ft`` stage: ``side`` finetuned on transfer with ``target`` (the weak labels).

    Its predictions are the finetuned classifier's; the entry is also a model directory: the whole
    finetuned backbone (LoRA merged) and its tokenizer (the classification head is not kept). Trains with ``finetune`` itself, so its predictions equal those of the finetune-mode ``xent``
    student.
    """
    from ..protocol import PREDICT_SPLITS, _save_stage, _xent_loss
    from ..train.distributed import is_distributed

    if is_distributed():
        raise W2SError("probe_ladder: its finetuning runs in one process; run it without accelerate/torchrun")

    def build(d: Path) -> None:
        from ..train.finetune import finetune

        t0 = time.time()
        texts = ctx.task.frame["text"].tolist()
        _ = side.meta  # resolves device and dtype
        res = finetune(side.model, [texts[i] for i in ctx.rows("transfer")], target, _xent_loss(), fcfg.finetune,
                       seed=ctx.seed, num_classes=ctx.num_classes, pooling=side.pooling, layer=side.layer,
                       eval_sets={s: [texts[i] for i in ctx.rows(s)] for s in PREDICT_SPLITS}, device=side.device,
                       compute_dtype=side.dtype, trust_remote_code=fcfg.trust_remote_code,
                       desc=f"ladder-ft ({side.model.name})")
        backbone = res.model.backbone.merge_and_unload() if fcfg.finetune.lora else res.model.backbone
        backbone.save_pretrained(d)  # the entry is a model directory: the cache's manifest covers its files
        res.tokenizer.save_pretrained(d)
        _save_stage(d, ctx.task, ctx.splits, res.probs, {},
                    {"losses": res.losses, "steps": len(res.losses), "lr": res.info["lr"],
                     "head_lr": res.info["head_lr"], "family": res.info["family"], "lora": fcfg.finetune.lora,
                     "train_wall_s": round(time.time() - t0, 3)})

    entry, _ = ctx.cache.get_or_build("ladder-ft", stage_inputs, build)
    return entry


def _run(cfg: ProbeLadderConfig, ctx: Any, plan: Any):
    from ..protocol import (
        PREDICT_SPLITS,
        StageResult,
        _load_stage,
        _save_stage,
        _xent_loss,
        finetune_stage,
        ids_hash,
        train_stage,
    )
    from ..train.select import Reference

    t0 = time.time()
    keys = ctx.keys
    pcfg, fcfg = ladder_configs(ctx.cfg, cfg)
    p_over, f_over = ctx.mode_inputs(pcfg), ctx.mode_inputs(fcfg)
    transfer = ctx.rows("transfer")
    gt = ctx.onehot(transfer)  # (n, K)
    weak = ctx.weak_probs("transfer")  # (n, K)
    stages: dict[str, StageResult] = {}

    # lp_weak: the probe-mode xent student (same key as a probe run's), lp_gt: the probe-mode ceiling
    frozen = ctx.frozen_strong()
    xplan = keys.student_plan("xent", weak)
    gt_val = Reference(ctx.onehot(ctx.rows("val")), "ground truth")  # the gt rungs choose heads as ceilings do
    stages["lp_weak"] = train_stage(ctx.cache, "student", dict(keys.student("xent", frozen.key, weak), **p_over),
                                    frozen, ctx.task, ctx.splits, xplan.target, xplan.loss_fn, pcfg, ctx.seed,
                                    train_idx=xplan.rows, ref=ctx.reference())
    stages["lp_gt"] = train_stage(ctx.cache, "ceiling", dict(keys.ceiling(frozen.key), **p_over), frozen, ctx.task,
                                  ctx.splits, gt, _xent_loss(), pcfg, ctx.seed, ref=gt_val)

    # ft_gt: the finetune-mode ceiling (same key as a finetune run's with these settings)
    ft_side = ctx.strong if ctx.cfg == fcfg else ctx.side_under(fcfg)
    stages["ft_gt"] = finetune_stage(ctx.cache, "ceiling", dict(keys.ceiling(ft_side.key), **f_over), ft_side,
                                     ctx.task, ctx.splits, gt, _xent_loss(), fcfg, ctx.seed)

    # ft_weak (+ its full weights), then lp_gt on the finetuned model's features
    ft_inputs = dict(keys.base, **f_over, stage="ladder-ft", features=ft_side.key, train_split="transfer",
                     train=ids_hash(ctx.ids("transfer"), weak))
    entry = _finetuned(ctx, ft_side, fcfg, weak, ft_inputs)
    preds, info = _load_stage(entry)
    stages["ft_weak"] = StageResult("ladder-ft", preds, info, True, entry.name, 0.0)
    feat = ctx.side_under(pcfg, str(entry), layer=ft_side.layer)
    feat.pooling = ft_side.pooling  # read the features the finetuned head was trained on
    stages["ft_weak_lp_gt"] = train_stage(
        ctx.cache, "ladder-lp", dict(keys.ceiling(feat.key), **p_over, stage="ladder-lp", finetuned=entry.name),
        feat, ctx.task, ctx.splits, gt, _xent_loss(), pcfg, ctx.seed, ref=gt_val)

    y = {s: ctx.labels[ctx.rows(s)] for s in ("val", "test")}
    acc = {s: {name: accuracy(y[s], st.probs(s, ctx.ids(s))) for name, st in stages.items()} for s in y}
    order = (*RUNGS, "ft_weak")
    own = stages["lp_weak"]

    def build(d: Path) -> None:
        probs = {s: own.probs(s, ctx.ids(s)) for s in PREDICT_SPLITS}
        _save_stage(d, ctx.task, ctx.splits, probs, {}, {
            **plan.info, "losses": list(own.info.get("losses") or []),
            "ladder": {k: acc["test"][k] for k in order}, "ladder_val": {k: acc["val"][k] for k in order},
            "ladder_keys": {k: stages[k].key for k in order},
            "ladder_settings": {"ft_steps": fcfg.finetune.max_steps, "ft_lr": stages["ft_weak"].info.get("lr"),
                                "lora": fcfg.finetune.lora, "ft_layer": ft_side.layer, "probe_layer": frozen.layer},
            "train_wall_s": round(time.time() - t0, 3)})

    entry, hit = ctx.cache.get_or_build("student", plan.inputs, build)
    preds, info = _load_stage(entry)
    return StageResult("student", preds, info, hit, entry.name, time.time() - t0)


METHOD = Method(
    name="probe_ladder",
    description="Linear-probe ladder: lp(weak), lp(gt), finetune(weak)+lp(gt), finetune(gt) test accuracies; its predictions are lp(weak)'s.",
    config_cls=ProbeLadderConfig,
    kind="alone",
    run_fn=_run,
)
