"""Seconds per finetuning step of each packaged model (full and LoRA; fp32 and bf16 autocast).

Plain Python; prints a table. Uses the real loop (w2sgen.train.finetune.finetune) on SST-2
sentences from $W2S_DATA_DIR (default ../shared/data), or generated sentences without it.

    .venv/bin/python bench/step_times.py [--steps 6] [--batch 16] [--models minilm-l6,mpnet-base,smollm2-135m]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np


def sentences(n: int) -> list[str]:
    root = Path(os.environ.get("W2S_DATA_DIR") or Path(__file__).resolve().parents[2] / "shared" / "data")
    f = root / "sst2" / "data" / "SST-2" / "test.tsv"
    if f.is_file():
        rows = [r.rsplit("\t", 1)[0].strip() for r in f.read_text(encoding="utf-8").splitlines()[1:]]
        return (rows * (n // len(rows) + 1))[:n]
    rng = np.random.default_rng(0)
    words = "the a film movie good bad great awful plot actor story scene is was very not".split()
    return [" ".join(rng.choice(words, 18)) for _ in range(n)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--models", default="minilm-l6,mpnet-base,smollm2-135m")
    a = ap.parse_args()
    os.environ.setdefault("W2S_PROGRESS", "0")
    import torch

    from w2sgen.config import FinetuneConfig
    from w2sgen.models import resolve_model
    from w2sgen.train.activations import cpu_has_bf16
    from w2sgen.train.finetune import finetune
    from w2sgen.train.losses import xent

    texts = sentences(a.batch * a.steps)
    y = np.eye(2, dtype=np.float32)[np.arange(len(texts)) % 2]
    dtypes = ["fp32"] + (["bf16"] if torch.cuda.is_available() or cpu_has_bf16() else [])
    print(f"threads={torch.get_num_threads()} batch={a.batch} steps={a.steps} "
          "(training time only, model loading excluded, first step included)")
    print(f"{'model':<14} {'mode':<5} {'dtype':<5} {'s/step':>8} {'tokens/s':>9}")
    for name in a.models.split(","):
        model = resolve_model(name)
        pooling = "last" if model.kind == "decoder" else "mean"
        for lora in (False, True):
            for dt in dtypes:
                cfg = FinetuneConfig(max_steps=a.steps, batch_size=a.batch, micro_batch_size=a.batch, lora=lora)
                res = finetune(model, texts, y, lambda lg, tg, s, T, window=None: xent(lg, tg), cfg, seed=0,
                               num_classes=2, pooling=pooling, layer=-1, eval_sets={}, compute_dtype=dt)
                info = res.info
                print(f"{name:<14} {'lora' if lora else 'full':<5} {dt:<5} {info['s_per_step']:>8.3f} "
                      f"{info['tokens_per_s']:>9.0f}", flush=True)


if __name__ == "__main__":
    main()
