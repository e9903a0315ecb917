"""Cached stages of the generation protocol: finetune a causal LM on (prompt, answer) pairs and write
answers, or write answers with the base model (prompting). Each entry holds its answers
(``generations.parquet``: id, split, output, n_tokens, logprob, stopped), a student's training set
(``train.parquet``: id, target; the floor and the ceiling, trained on gold answers, keep none), its
LoRA adapters (under LoRA) and ``train.json`` (losses, training and generation speed with the
1-minute load around each timed section, the device's model and torch's threads). No entry holds a gold answer: scoring is the protocol's job, after the
stages (:mod:`w2sgen.generation.scoring`), and a method's guarded cache refuses the ceiling's entries
(whose adapters were trained on transfer's gold answers)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .methods import Answers

GENERATIONS = "generations.parquet"
TRAIN_SET = "train.parquet"


@dataclass
class GenStage:
    """A generation stage's output: the answers it wrote, its facts, and where it is cached."""

    name: str
    generations: pd.DataFrame
    """id, split, output, n_tokens, logprob, stopped."""
    info: dict[str, Any]
    cached: bool
    key: str
    wall_s: float
    path: Path | None = None

    def answers(self, split: str, ids: list[str] | None = None) -> Answers | None:
        """The stage's answers on ``split`` (in the order of ``ids`` when given); None if it wrote none there."""
        f = self.generations[self.generations["split"] == split]
        if not len(f):
            return None
        if ids is not None:
            f = f.set_index("id")
            if not pd.Index(ids).isin(f.index).all():
                return None
            f = f.loc[ids].reset_index()
        return Answers(f["id"].astype(str).tolist(), f["output"].astype(str).tolist(),
                       f["logprob"].to_numpy(dtype=float), f["n_tokens"].to_numpy(dtype=np.int64))

    def splits(self) -> list[str]:
        return list(dict.fromkeys(self.generations["split"].astype(str)))


def load_stage(name: str, d: Path, hit: bool, t0: float) -> GenStage:
    import json

    return GenStage(name, pd.read_parquet(d / GENERATIONS), json.loads((d / "train.json").read_text()), hit, d.name,
                    time.time() - t0, d)


def _save(d: Path, gens: dict[str, tuple[list[str], Any]], info: dict[str, Any], adapters: dict[str, Any],
          train: tuple[list[str], list[str]] | None) -> None:
    from safetensors.torch import save_file

    from ..store.atomic import atomic_write_json

    frames = [pd.DataFrame({"id": ids, "split": s, "output": g.texts, "n_tokens": g.n_tokens.astype(np.int32),
                            "logprob": g.logprob.astype(np.float32), "stopped": g.stopped})
              for s, (ids, g) in gens.items()]
    pd.concat(frames, ignore_index=True).to_parquet(d / GENERATIONS, index=False)
    if train is not None:
        pd.DataFrame({"id": train[0], "target": train[1]}).to_parquet(d / TRAIN_SET, index=False)
    if adapters:
        save_file({k: v.contiguous() for k, v in adapters.items()}, str(d / "adapter.safetensors"))
    atomic_write_json(d / "train.json", info)


def speed(g: Any) -> dict[str, Any]:
    """The generation facts of one split: answers, tokens (answer tokens plus stop tokens, see
    :class:`~w2sgen.generation.lm.Generations`), seconds, tokens/s, share stopped, and the 1-minute
    load average at the start and end of decoding."""
    return {"n": len(g.texts), "tokens": int(g.tokens), "seconds": round(g.seconds, 3),
            "tokens_per_s": round(g.tokens_per_s, 1), "stopped": float(np.mean(g.stopped)) if len(g.texts) else None,
            "load_1min": list(g.load_1min)}


def machine(device: str) -> dict[str, Any]:
    """What a stage's timings ran on: the device's model (GPU name, or CPU name and a digest of its
    flags) and torch's CPU threads."""
    import torch

    from ..train.dtype_probe import device_model

    return {"device_model": device_model(device), "threads": torch.get_num_threads()}


def load_side_lm(side: Any, cfg: Any, *, training: bool):
    """The side's causal LM (weights dtype: finetune.weights_dtype or the model's default)."""
    from ..models.backbone import local_dir
    from .lm import load_lm

    spec = side.model.spec
    wdtype = cfg.finetune.weights_dtype or (spec.dtype if spec else "fp32")
    # prompting runs in eval mode: dropout never applies, so its setting is not read
    return load_lm(str(local_dir(side.model)), device=side.device, dtype=side.dtype, weights_dtype=wdtype,
                   dropout=cfg.finetune.dropout if training else True, trust_remote_code=cfg.trust_remote_code,
                   name=side.model.name)


def sft_lr(side: Any, cfg: Any, lora: bool) -> float:
    """finetune.lr, else the model's default (LoRA or full) at batch 32, scaled linearly with finetune.batch_size."""
    if cfg.finetune.lr is not None:
        return float(cfg.finetune.lr)
    spec = side.model.spec
    base = (spec.lora_lr if lora else spec.lr) if spec else (5e-4 if lora else 5e-5)
    return base * cfg.finetune.batch_size / 32


def sft_stage(cache: Any, stage: str, inputs: Any, side: Any, cfg: Any, seed: int, train: tuple[list[str], list[str], list[str]],
              predict: dict[str, tuple[list[str], list[str]]], gen: dict[str, Any], loss_fn: Any = None,
              extra_info: dict[str, Any] | None = None) -> GenStage:
    """Finetune ``side``'s model on ``train`` = (ids, prompts, answers), then answer ``predict`` =
    {split: (ids, prompts)}; cached under ``inputs``. ``gen``: the resolved generation settings
    (max_new_tokens, batch_size, template, lora), which ``inputs`` holds."""
    from .lm import generate, render, sft

    t0 = time.time()
    _ = side.meta  # resolves device and dtype (and records the side's reads into the stage)

    def build(d: Path) -> None:
        lm = load_side_lm(side, cfg, training=True)
        template = cfg.gen.template
        lr = sft_lr(side, cfg, gen["lora"])
        res = sft(lm, [render(template, p) for p in train[1]], train[2], lr=lr, lora=gen["lora"], cfg=cfg.finetune,
                  seed=seed, loss_fn=loss_fn, desc=f"{stage} ({side.model.name})")
        gens = {s: (ids, generate(res.lm, [render(template, p) for p in prompts], max_new_tokens=gen["max_new_tokens"],
                                  batch_size=gen["batch_size"], desc=f"{stage} answers {s}"))
                for s, (ids, prompts) in predict.items()}
        info = {"losses": res.losses, **res.info, "load_s": round(lm.load_s, 3), "family": lm.family,
                "generate": {s: speed(g) for s, (_, g) in gens.items()}, **machine(lm.device), **(extra_info or {})}
        # only a student keeps its training set (its analysis scores it): the floor's and the ceiling's are
        # gold answers, which a method could otherwise read from the cache's folder
        _save(d, gens, info, res.adapters, (list(train[0]), list(train[2])) if stage == "student" else None)

    entry, hit = cache.get_or_build(stage, inputs, build)
    return load_stage(stage, entry, hit, t0)


def prompt_stage(cache: Any, stage: str, inputs: Any, side: Any, cfg: Any, predict: dict[str, tuple[list[str], list[str]]],
                 gen: dict[str, Any]) -> GenStage:
    """Answer ``predict`` = {split: (ids, prompts)} with ``side``'s model as it is (no training); cached."""
    from .lm import generate, render

    t0 = time.time()
    _ = side.meta

    def build(d: Path) -> None:
        lm = load_side_lm(side, cfg, training=False)
        template = cfg.gen.template
        gens = {s: (ids, generate(lm, [render(template, p) for p in prompts], max_new_tokens=gen["max_new_tokens"],
                                  batch_size=gen["batch_size"], desc=f"{stage} answers {s}"))
                for s, (ids, prompts) in predict.items()}
        info = {"losses": [], "load_s": round(lm.load_s, 3), "family": lm.family,
                "generate": {s: speed(g) for s, (_, g) in gens.items()}, **machine(lm.device), "n_train": 0}
        _save(d, gens, info, {}, None)

    entry, hit = cache.get_or_build(stage, inputs, build)
    return load_stage(stage, entry, hit, t0)
