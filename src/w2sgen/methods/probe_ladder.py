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
    from ..reads import with_changes

    ft = with_changes(run_cfg.finetune, lora=cfg.lora,
                      max_steps=cfg.ft_steps if cfg.ft_steps is not None else run_cfg.finetune.max_steps,
                      lr=cfg.ft_lr if cfg.ft_lr is not None else run_cfg.finetune.lr)
    return with_changes(run_cfg, mode="probe"), with_changes(run_cfg, mode="finetune", finetune=ft)


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
        load_result,
        train_stage,
        weak_eval,
    )
    from ..train.select import Reference

    t0 = time.time()
    keys = ctx.keys
    pcfg, fcfg = ladder_configs(ctx.cfg, cfg)
    transfer = ctx.rows("transfer")
    gt = ctx.onehot(transfer)  # (n, K) — this method declares uses_ground_truth
    gt_train = ids_hash(ctx.ids("transfer"), ctx.labels[transfer])
    weak = ctx.weak_probs("transfer")  # (n, K)
    stages: dict[str, StageResult] = {}

    # lp_weak: the probe-mode xent student (same key as a probe run's), lp_gt: the probe-mode ceiling
    frozen = ctx.frozen_strong()
    xplan = keys.student_plan("xent", weak)
    gt_val = Reference(ctx.onehot(ctx.rows("val")), "ground truth")  # the gt rungs choose heads as ceilings do
    lp_weak_key = keys.make("student", frozen.key, cfg=pcfg, method="xent", settings=xplan.method.settings(),
                            train_split="transfer", train=ids_hash(xplan.ids, xplan.target),
                            weak_eval=weak_eval(ctx))
    stages["lp_weak"] = train_stage(ctx.cache, "student", lp_weak_key, frozen, ctx.task, ctx.splits, xplan.target,
                                    xplan.loss_fn, pcfg, ctx.seed, train_idx=xplan.rows,
                                    ref=ctx.reference())
    lp_gt_key = keys.make("ceiling", frozen.key, cfg=pcfg, train_split="transfer", train=gt_train)
    stages["lp_gt"] = train_stage(ctx.cache, "ceiling", lp_gt_key, frozen, ctx.task, ctx.splits, gt, _xent_loss(),
                                  pcfg, ctx.seed, ref=gt_val)

    # ft_gt: the finetune-mode ceiling (same key as a finetune run's with these settings)
    same = ctx.cfg.mode == "finetune" and ctx.cfg.finetune == fcfg.finetune
    ft_side = ctx.strong if same else ctx.side_under(fcfg)
    ft_gt_key = keys.make("ceiling", ft_side.key, cfg=fcfg, train_split="transfer", train=gt_train)
    stages["ft_gt"] = finetune_stage(ctx.cache, "ceiling", ft_gt_key, ft_side, ctx.task, ctx.splits, gt,
                                     _xent_loss(), fcfg, ctx.seed)

    # ft_weak (+ its full weights), then lp_gt on the finetuned model's features
    ft_inputs = keys.make("ladder-ft", ft_side.key, cfg=fcfg, train_split="transfer",
                          train=ids_hash(ctx.ids("transfer"), weak))
    entry = _finetuned(ctx, ft_side, fcfg, weak, ft_inputs)
    preds, info = _load_stage(entry)
    stages["ft_weak"] = StageResult("ladder-ft", preds, info, True, entry.name, 0.0)
    feat = ctx.side_under(pcfg, str(entry), layer=ft_side.layer)
    feat.pooling = ft_side.pooling  # read the features the finetuned head was trained on
    feat.derived = True  # its weights are the ladder-ft entry's, keyed above
    stages["ft_weak_lp_gt"] = train_stage(
        ctx.cache, "ladder-lp", keys.make("ladder-lp", feat.key, cfg=pcfg, train_split="transfer", train=gt_train,
                                          finetuned=entry.name),
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
    return load_result("student", entry, hit, t0)


def _key(cfg: ProbeLadderConfig, env: Any) -> dict[str, Any]:
    """The ladder trains under both modes whatever the run's: both training sections, the frozen
    (probe-mode) and the finetune-mode side of the strong model, and lp_weak's method (xent)."""
    layer = env.cfg.embed.strong_layer
    return {"probe": env.config("probe"), "finetune": env.config("finetune"), "xent": env.config("method_args.xent"),
            "frozen": env.model_key(env.strong, layer, mode="probe"),
            "finetuned": env.model_key(env.strong, layer, mode="finetune")}


METHOD = Method(
    name="probe_ladder",
    description="Linear-probe ladder: lp(weak), lp(gt), finetune(weak)+lp(gt), finetune(gt) test accuracies; its predictions are lp(weak)'s.",
    config_cls=ProbeLadderConfig,
    kind="alone",
    run_fn=_run,
    key_fn=_key,
    uses_ground_truth=True,
)
