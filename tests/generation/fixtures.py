"""Shared fixtures of the generation tests: a tiny generation task file and a quick run config."""

from __future__ import annotations

import json

from w2sgen.config import FinetuneConfig, GenConfig, RunConfig, SplitConfig

CITIES = [("paris", "france"), ("berlin", "germany"), ("rome", "italy"), ("madrid", "spain"), ("tokyo", "japan"),
          ("lima", "peru"), ("oslo", "norway"), ("cairo", "egypt")]


def write_task(path, n: int = 120):
    """A generation task file: "the city of X is in ?" -> X's country, one group per row."""
    rows = [{"id": f"q{i}", "prompt": f"the city of {c} is in ?", "answer": k}
            for i, (c, k) in enumerate((CITIES * (n // len(CITIES) + 1))[:n])]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def gen_config(task, weak, strong, out, **kw) -> RunConfig:
    """Tiny splits (40/40/20/20, minimums lowered), 40 SFT steps of LoRA (the tiny random LM head among
    its targets: frozen, it barely moves the logits), answers of at most 3 tokens."""
    kw.setdefault("methods", ["xent", "zero_shot"])
    cfg = RunConfig(task=str(task), weak=str(weak), strong=str(strong), out=str(out), seeds=[0], mode="finetune",
                    splits=SplitConfig(n_weak_train=40, n_transfer=40, n_val=20, n_test=20, min_val=20, min_test=20),
                    finetune=FinetuneConfig(epochs=8, batch_size=8, lr=3e-2, lora_targets=["q_proj", "v_proj", "lm_head"]),
                    gen=GenConfig(max_new_tokens=3, batch_size=16), **kw)
    return cfg
