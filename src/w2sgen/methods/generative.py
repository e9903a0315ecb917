"""``generative``: language-model finetuning on the task's unlabelled text first (Burns et al. 2023, §5.2.2).

Before any classification training the strong decoder is finetuned with the next-token objective
(mean −log P(t_j | t_<j) over the tokens) on the texts of ``weak_train`` and ``transfer`` (no
labels; val and test text unseen). That model, stored once (stage ``lm-finetune``: merged
safetensors weights, config and tokenizer, a local model directory), then replaces the strong
model for the student (weak labels). Probe mode reads its features; finetune mode finetunes it.
Its own ceiling (ground truth on transfer, stage ``ceiling``) and the PGR against it are the
protocol's analysis (``students.<name>.analysis.generative``), trained after the method returned.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import W2SError
from .base import Method


@dataclass
class GenerativeConfig:
    steps: int = 100
    """Optimizer steps of language-model finetuning."""
    lr: float = 1e-4
    """AdamW learning rate (constant) of the language-model finetuning."""
    lora: bool = True
    """Train LoRA adapters (then merge them into the weights); False: train every weight."""
    lora_rank: int = 8
    """LoRA rank (alpha = 2 * rank)."""
    batch_size: int = 8
    """Texts per step."""
    max_length: int = 128
    """Token limit per text (longer texts are truncated on the right)."""

    def __post_init__(self) -> None:
        for f in ("steps", "batch_size", "lora_rank"):
            if getattr(self, f) < 1:
                raise W2SError(f"method 'generative': {f} must be >= 1, got {getattr(self, f)}")
        if not self.lr > 0:
            raise W2SError(f"method 'generative': lr must be > 0, got {self.lr}")
        if self.max_length < 2:
            raise W2SError(f"method 'generative': max_length must be >= 2, got {self.max_length}")


def lm_texts(ctx: Any) -> list[str]:
    """The unlabelled texts of the LM finetuning: weak_train then transfer (never val or test)."""
    return ctx.texts(np.concatenate([ctx.rows("weak_train"), ctx.rows("transfer")]))


def lm_finetuned(cfg: GenerativeConfig, ctx: Any):
    """The cached LM-finetuned strong model: (entry directory, its train.json info)."""
    import json

    from ..models.backbone import fingerprint, local_dir
    from ..models.lm import lm_finetune, load_causal_lm, require_decoder, save_causal_lm, texts_hash
    from ..train.activations import resolve_device, resolve_dtype

    base = ctx.strong.model
    require_decoder(base, "generative")
    texts = lm_texts(ctx)
    device = resolve_device(ctx.cfg.embed.device)
    dtype = resolve_dtype(ctx.cfg.finetune.dtype, device)
    from ..protocol import PROTOCOL_VERSION

    inputs = {"protocol": PROTOCOL_VERSION, "stage": "lm-finetune", "model": fingerprint(local_dir(base)), "texts": texts_hash(texts),
              "settings": dataclasses.asdict(cfg), "seed": ctx.seed, "dtype": dtype}

    def build(d) -> None:
        from ..store.atomic import atomic_write_json

        t0 = time.time()
        lm = load_causal_lm(base, device=device, trust_remote_code=ctx.cfg.trust_remote_code)
        model, losses = lm_finetune(lm, texts, steps=cfg.steps, lr=cfg.lr, batch_size=cfg.batch_size,
                                    max_length=cfg.max_length, lora=cfg.lora, lora_rank=cfg.lora_rank,
                                    seed=ctx.seed, dtype=dtype)
        save_causal_lm(model.to("cpu"), lm.tokenizer, d)
        atomic_write_json(d / "lm_train.json", {"base": base.name, "losses": losses, "n_texts": len(texts),
                                                "dtype": dtype, "wall_s": round(time.time() - t0, 3)})

    entry, _ = ctx.cache.get_or_build("lm-finetune", inputs, build)
    return entry, json.loads((entry / "lm_train.json").read_text())


def _lm_side(ctx: Any, entry: Any):
    """The strong model's registered defaults (layer, pooling, learning rates) on the LM-finetuned
    weights of ``entry``: a derived side (its key follows from the lm-finetune stage's inputs)."""
    from ..protocol import side_for
    from ..tasks.splits import SPLITS

    model = dataclasses.replace(ctx.strong.model, name=f"{ctx.strong.model.name}+lm", path=str(entry), revision=None)
    side = side_for(model, ctx.strong.layer, ctx.cfg, ctx.cache.root)
    side.derived = True
    side.texts_needed = ctx.texts(np.concatenate([ctx.rows(s) for s in SPLITS]))
    return side


def _train(cfg: GenerativeConfig, ctx: Any, plan: Any):
    from ..protocol import PREDICT_SPLITS, _save_stage, load_result
    from ..store.cache import stage_key

    t0 = time.time()
    entry, lm_info = lm_finetuned(cfg, ctx)
    side = _lm_side(ctx, entry)
    # the student itself is an inner stage; the "student" entry repeats its predictions with the
    # LM finetuning's facts (its own ceiling, on ground truth, is the protocol's analysis)
    inner = ctx.train("generative-student", side, plan.rows, plan.target, plan.loss_fn,
                      inputs={"lm": entry.name, "student": stage_key(plan.inputs)})

    def build(d) -> None:
        losses = lm_info["losses"]
        info = {**plan.info, "lm_finetune": {"key": entry.name, "steps": len(losses), "first_loss": losses[0],
                                             "last_loss": losses[-1], "n_texts": lm_info["n_texts"]},
                "inner_stage": inner.key, **{k: v for k, v in inner.info.items() if k not in plan.info}}
        probs = {s: inner.probs(s, ctx.ids(s)) for s in PREDICT_SPLITS}
        _save_stage(d, ctx.task, ctx.splits, probs, {}, info)

    out, hit = ctx.cache.get_or_build("student", plan.inputs, build)
    return load_result("student", out, hit, t0)


def _key(cfg: GenerativeConfig, env: Any) -> dict[str, Any]:
    """The LM finetuning reads finetune.dtype (its compute dtype, in every mode) and the texts of
    weak_train (besides transfer's, already in the key)."""
    from ..protocol import ids_hash

    return {"lm_dtype": env.dtype("finetune.dtype"), "lm_texts": ids_hash(env.split_ids["weak_train"])}


def _analyze(cfg: GenerativeConfig, student: Any, truth: dict[str, np.ndarray], ctx: Any) -> dict[str, Any] | None:
    """The LM-finetuned model's own ceiling (ground truth on transfer, a cached stage trained here,
    after the method returned) and the PGR of the student against it."""
    from .. import metrics
    from ..protocol import _xent_loss

    lm = student.info.get("lm_finetune")
    if not lm:
        return None
    entry = ctx.cache.path("lm-finetune", lm["key"])
    if not entry.is_dir():
        return None
    transfer = ctx.rows("transfer")
    ceiling = ctx.train("ceiling", _lm_side(ctx, entry), transfer, ctx.onehot(transfer), _xent_loss(),
                        inputs={"lm": lm["key"]}, ref=ctx._truth_reference())  # a ceiling's head: as run_seed's
    own = ctx.metrics(ceiling)
    weak, st = ctx.metrics(ctx.floor), ctx.metrics(student)
    out: dict[str, Any] = {"own_ceiling": own}
    if "test" in own and "test" in weak and "test" in st:
        # the PGR against the own ceiling with its gap and the gap rule (no AUROC PGR: it has no rule)
        from ..stats import GAP_THRESHOLD

        gap = own["test"]["acc"] - weak["test"]["acc"]
        out["gap_acc_own_ceiling"] = gap
        out["flagged_own_ceiling"] = bool(not gap >= GAP_THRESHOLD)
        out["pgr_acc_own_ceiling"] = (None if out["flagged_own_ceiling"] else
                                      metrics.pgr(weak["test"]["acc"], st["test"]["acc"], own["test"]["acc"]))
    return out


METHOD = Method(
    name="generative",
    description="Finetune the strong decoder as a language model on the task's unlabelled text, then train "
                "its student (its own ceiling is recorded as an analysis).",
    config_cls=GenerativeConfig,
    kind="train",
    train_fn=_train,
    key_fn=_key,
    analyze_fn=_analyze,
)
