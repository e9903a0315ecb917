"""Extraction that stops at the probed layer, against running the whole model (same process).

For each packaged decoder (its registry layer and pooling), ``extract`` embeds the same texts
twice: once with the model run whole and ``hidden_states[layer]`` read (what w2sgen did before
:mod:`w2sgen.models.truncate`), once stopping at the layer. Rounds alternate, and the best round
of each counts (load comes and goes on a shared machine). It prints one row per model with the
texts/s of both, their ratio, and the largest difference between the two feature matrices.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/truncate.py [--n 384] [--rounds 3] [--models smollm2-135m,gemma-3-270m]
"""

from __future__ import annotations

import argparse
import os
import time
from contextlib import nullcontext
from pathlib import Path
from unittest import mock

import numpy as np


def texts(n: int) -> list[str]:
    """n cities statements (generated offline by the package)."""
    from w2sgen.tasks import load_task

    return load_task("cities").frame["text"].tolist()[:n]


def run(names: list[str], n: int, rounds: int) -> None:
    import torch

    from w2sgen.models import resolve_model
    from w2sgen.models import truncate as trunc
    from w2sgen.models.backbone import load_backbone
    from w2sgen.train.activations import extract
    from w2sgen.train.dtype_probe import device_model

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    sample = texts(n)
    load = os.getloadavg()
    print(f"bench/truncate.py: {device_model('cpu')}, {os.cpu_count()} cores, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, fp32; {n} cities statements, "
          f"best of {rounds} alternating rounds; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    head = f"{'model':<14} {'layer':>5} {'blocks run':>10} {'whole t/s':>10} {'stopped t/s':>11} {'ratio':>6} {'max|diff|':>10}"
    print(head)
    print("-" * len(head))
    for name in names:
        model = resolve_model(name)
        bb = load_backbone(model)
        L = bb.model.config.num_hidden_layers
        stop = trunc.stop_block(bb.model, model.layer)
        kw = dict(layer=model.layer, pooling=model.pooling, max_length=128, batch_size=64, dtype="fp32", desc=name)
        best = {"whole": np.inf, "stopped": np.inf}
        feats = {}
        for _ in range(rounds):
            for how in ("whole", "stopped"):
                ctx = mock.patch.object(trunc, "stop_block", lambda *a: None) if how == "whole" else nullcontext()
                with ctx:
                    t = time.perf_counter()
                    feats[how] = extract(bb, sample, **kw)
                    best[how] = min(best[how], time.perf_counter() - t)
        diff = float(np.abs(feats["whole"] - feats["stopped"]).max())
        run_blocks = f"{stop}/{L}" if stop is not None else f"{L}/{L}"
        print(f"{name:<14} {model.layer:>5} {run_blocks:>10} {n / best['whole']:10.1f} {n / best['stopped']:11.1f} "
              f"{best['whole'] / best['stopped']:5.2f}x {diff:10.2e}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=384)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--models", default="smollm2-135m,gemma-3-270m")
    a = ap.parse_args()
    os.environ.setdefault("W2S_PROGRESS", "0")
    os.environ.setdefault("W2S_DATA_DIR", str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    run([m.strip() for m in a.models.split(",") if m.strip()], a.n, a.rounds)


if __name__ == "__main__":
    main()
