"""``zero_shot``: the strong decoder prompted, no training (Burns et al. 2023, §5.2.1).

p(k | x) = softmax_k log P(w_k | prompt(x)): the log-probability of each class's label word w_k
(summed over its tokens) after the prompt, normalised over the K words. Label words: the task's
label names when they are words (``false``/``true`` -> " false"/" true"), else ``label_words``,
else " false"/" true" for binary tasks. The predictions on transfer, val and test are stored as
the student (stage ``student``); nothing is trained.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from ..errors import W2SError
from ..models.lm import DEFAULT_TEMPLATE
from .base import Method


@dataclass
class ZeroShotConfig:
    model: str | None = None
    """The decoder to prompt (short name, hub id or directory); None: the run's strong model."""
    template: str = DEFAULT_TEMPLATE
    """Prompt; ``{text}`` is the example's text, ``{choices}`` (optional) the label words joined by " or ".
    The label word follows the prompt directly (words carry their own leading space)."""
    label_words: list[str] | None = None
    """One word per class in label order, e.g. [" no", " yes"]; None: the task's label names with a
    leading space when they are words, else [" false", " true"] for a binary task."""
    batch_size: int = 16
    """Sequences (prompt + one label word) per forward pass."""
    max_length: int = 1024
    """Token limit of prompt + word; longer prompts lose tokens from the left."""

    def __post_init__(self) -> None:
        _check_prompting(self, "zero_shot")


def _check_prompting(cfg: Any, method: str) -> None:
    if "{text}" not in cfg.template:
        raise W2SError(f"method {method!r}: template must contain {{text}}, got {cfg.template!r}")
    if cfg.label_words is not None and (len(cfg.label_words) < 2 or not all(isinstance(w, str) and w.strip()
                                                                            for w in cfg.label_words)):
        raise W2SError(f"method {method!r}: label_words must be a list of at least two non-empty words, "
                       f"got {cfg.label_words!r}")
    if cfg.label_words is not None and len(set(cfg.label_words)) < len(cfg.label_words):
        raise W2SError(f"method {method!r}: label_words must be distinct, got {cfg.label_words!r}")
    if cfg.batch_size < 1:
        raise W2SError(f"method {method!r}: batch_size must be >= 1, got {cfg.batch_size}")
    if cfg.max_length < 2:
        raise W2SError(f"method {method!r}: max_length must be >= 2, got {cfg.max_length}")


def prompt_model(cfg: Any, ctx: Any, method: str):
    """The ResolvedModel to prompt: ``cfg.model`` or the run's strong model; a decoder, else a W2SError."""
    from ..models import resolve_model
    from ..models.lm import require_decoder

    model = resolve_model(cfg.model) if cfg.model else ctx.strong.model
    require_decoder(model, method)
    return model


def run_prompting(cfg: Any, ctx: Any, plan: Any, method: str,
                  prompt_of: Any = None, extra_info: dict[str, Any] | None = None):
    """Score every transfer/val/test text's prompt and store the label-word probabilities as the
    student under ``plan.inputs``. ``prompt_of(text, words) -> str`` (default: the template).

    The scores are their own stage (``prompt-scores``), keyed only by what decides them (model
    weights, prompts, label words, dtype, token limit), so runs that differ elsewhere (weak model,
    probe settings) do not score again; the student entry repeats its probabilities.
    """
    from ..models.backbone import fingerprint, local_dir
    from ..models.lm import (
        label_probs,
        label_words,
        load_causal_lm,
        render,
        score_label_words,
        texts_hash,
    )
    from ..protocol import PREDICT_SPLITS, _load_stage, _probs, _save_stage, load_result
    from ..train.activations import resolve_device, resolve_dtype

    t0 = time.time()
    model = prompt_model(cfg, ctx, method)
    words = label_words(list(ctx.task.label_names), cfg.label_words)
    prompt_of = prompt_of or (lambda text, w: render(cfg.template, text, w))
    prompts = {s: [prompt_of(t, words) for t in ctx.texts(ctx.rows(s))] for s in PREDICT_SPLITS}
    device = resolve_device(ctx.cfg.embed.device)
    dtype = resolve_dtype(ctx.cfg.embed.dtype, device)
    fp = fingerprint(local_dir(model))
    score_inputs = {"stage": "prompt-scores", "fingerprint": fp, "words": words, "dtype": dtype,
                    "max_length": cfg.max_length, "task": ctx.keys.base["task"], "predict": ctx.keys.base["predict"],
                    "prompts": texts_hash([p for s in PREDICT_SPLITS for p in prompts[s]])}

    def score(d) -> None:
        import torch

        t1 = time.time()
        lm = load_causal_lm(model, device=device, trust_remote_code=ctx.cfg.trust_remote_code)
        lp = {s: score_label_words(lm, prompts[s], words, batch_size=cfg.batch_size, dtype=dtype,
                                   max_length=cfg.max_length) for s in PREDICT_SPLITS}  # (n, K) each
        _save_stage(d, ctx.task, ctx.splits, {s: label_probs(v) for s, v in lp.items()},
                    {"logprobs.safetensors": {s: torch.from_numpy(v) for s, v in lp.items()}},
                    {"model": model.name, "n_prompts": sum(len(v) for v in prompts.values()),
                     "score_wall_s": round(time.time() - t1, 3)})

    scores, _ = ctx.cache.get_or_build("prompt-scores", score_inputs, score)
    frame, score_info = _load_stage(scores)

    def build(d) -> None:
        probs = {s: _probs(frame[frame["split"] == s].set_index("id").loc[ctx.ids(s)]) for s in PREDICT_SPLITS}
        info = {**plan.info, "model": model.name, "fingerprint": fp, "template": cfg.template, "label_words": words,
                "example_prompt": prompts["test"][0] if prompts["test"] else "", "dtype": dtype,
                "scores_stage": scores.name, "score_wall_s": score_info["score_wall_s"], **(extra_info or {})}
        _save_stage(d, ctx.task, ctx.splits, probs, {}, info)

    entry, hit = ctx.cache.get_or_build("student", plan.inputs, build)
    return load_result("student", entry, hit, t0)


def _run(cfg: ZeroShotConfig, ctx: Any, plan: Any):
    return run_prompting(cfg, ctx, plan, "zero_shot", extra_info={"shots": 0})


def prompt_key(cfg: Any, env: Any) -> dict[str, Any]:
    """What the prompting methods read beyond their settings: the prompted model (when it is not the
    strong model) and the compute dtype (``embed.dtype``, in every mode)."""
    return {"model": env.model_key(cfg.model) if cfg.model else None, "dtype": env.dtype("embed.dtype")}


METHOD = Method(
    name="zero_shot",
    description="Prompt the strong decoder: p(k|x) = softmax over label words of log P(word_k | prompt(x)); no training.",
    config_cls=ZeroShotConfig,
    kind="alone",
    run_fn=_run,
    key_fn=prompt_key,
    trains=False,
)
