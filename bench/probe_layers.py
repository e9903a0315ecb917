"""Choose the probed layer and pooling of each packaged decoder, once, on a task outside the
reproduction set (`w2s reproduce`): the evidence behind ``ModelSpec.layer`` / ``pooling`` /
``probe_choice`` of smollm2-135m and gemma-3-270m.

For each model: one forward pass per batch (fp32, all hidden states) over a few hundred examples
of the selection task (default twitter_sentiment: a sentiment task whose weak-to-strong gap on this
ladder is too small to be in the reproduction set), each candidate layer pooled two ways (last
non-pad token, mean over tokens), a standardized logistic-regression probe (scikit-learn, C=1)
fitted on the train examples and scored on the val examples. It prints one row per (model, layer,
pooling) with the val accuracy and its binomial standard error; the chosen row is the best val
accuracy (ties: the shallower layer). A logistic regression stands in for w2sgen's linear head
(AdamW on the same features): both are linear probes, this one is deterministic and quick.

    PYTHONPATH=src .venv/bin/python bench/probe_layers.py [--task twitter_sentiment] [--n-train 400]
        [--n-val 300] [--models smollm2-135m,gemma-3-270m]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np

FRACTIONS = (0.25, 0.5, 0.67, 0.83, 1.0)
"""Candidate depths, as fractions of the model's layers (1.0: the top layer)."""


def data_dir(task: str) -> str | None:
    root = Path(os.environ.get("W2S_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))
    return str(root / task) if (root / task).is_dir() else None


def sample(task: str, n_train: int, n_val: int, seed: int = 0):
    """(train texts, train labels, val texts, val labels) from the task's train pool, whole groups apart."""
    from w2sgen.tasks import load_task

    frame = load_task(task, data_dir(task)).frame
    frame = frame[frame["pool"] == "train"]
    groups = np.asarray(frame["group"].astype(str).unique(), dtype=object)
    groups = groups[np.random.default_rng(seed).permutation(len(groups))]
    rows = frame.set_index(frame["group"].astype(str)).loc[groups].reset_index(drop=True)
    rows = rows.iloc[: n_train + n_val]
    tr, va = rows.iloc[:n_train], rows.iloc[n_train:]
    return tr["text"].tolist(), tr["label"].to_numpy(), va["text"].tolist(), va["label"].to_numpy()


def features(name: str, texts: list[str], layers: list[int], batch_size: int = 32) -> dict[tuple[int, str], np.ndarray]:
    """{(layer, pooling): (N, C)} for every candidate layer, from one forward pass per batch."""
    import torch

    from w2sgen.models import resolve_model
    from w2sgen.models.backbone import load_backbone
    from w2sgen.models.pooling import pool

    bb = load_backbone(resolve_model(name))
    enc = bb.tokenizer(texts, truncation=True, max_length=256, padding=False)["input_ids"]
    out = {(layer, how): np.empty((len(texts), bb.hidden_size), np.float32) for layer in layers
           for how in ("last", "mean")}
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            rows = list(range(start, min(start + batch_size, len(texts))))
            batch = bb.tokenizer.pad({"input_ids": [enc[i] for i in rows]}, return_tensors="pt")
            hs = bb.model(**batch, output_hidden_states=True).hidden_states
            for layer in layers:
                for how in ("last", "mean"):
                    out[(layer, how)][rows] = pool(hs[layer].float(), batch["attention_mask"], how).numpy()
    return out


def probe_acc(x_tr: np.ndarray, y_tr: np.ndarray, x_va: np.ndarray, y_va: np.ndarray) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
    clf.fit(x_tr, y_tr)
    return float((clf.predict(x_va) == y_va).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", default="twitter_sentiment")
    ap.add_argument("--n-train", type=int, default=400)
    ap.add_argument("--n-val", type=int, default=300)
    ap.add_argument("--models", default="smollm2-135m,gemma-3-270m")
    a = ap.parse_args()
    tr, y_tr, va, y_va = sample(a.task, a.n_train, a.n_val)
    print(f"selection task {a.task}: {len(tr)} train / {len(va)} val examples (train pool, whole groups); "
          f"CPU {platform.processor() or platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    print(f"{'model':<14} {'layer':>5} {'depth':>5} {'pooling':<7} {'val acc':>8} {'± se':>6}")
    for name in a.models.split(","):
        from w2sgen.models import resolve_model
        from w2sgen.models.backbone import load_backbone

        n_layers = load_backbone(resolve_model(name)).num_layers
        layers = sorted({max(1, round(f * n_layers)) - (n_layers + 1) for f in FRACTIONS})  # hidden_states[-1] is the top
        t0 = time.time()
        feats = features(name, tr + va, layers)
        best = None
        for (layer, how), x in sorted(feats.items(), key=lambda kv: (-kv[0][0], kv[0][1])):
            acc = probe_acc(x[: len(tr)], y_tr, x[len(tr):], y_va)
            se = np.sqrt(acc * (1 - acc) / len(va))
            depth = (n_layers + 1 + layer) / n_layers  # hidden_states[0] is the embeddings
            print(f"{name:<14} {layer:>5} {depth:>5.2f} {how:<7} {100 * acc:>7.1f}% {100 * se:>5.1f}")
            if best is None or acc > best[0] or (acc == best[0] and layer < best[1]):
                best = (acc, layer, how)
        print(f"  -> {name}: layer {best[1]}, pooling {best[2]} (val {100 * best[0]:.1f}%); "
              f"{n_layers} layers; {time.time() - t0:.0f}s")


if __name__ == "__main__":
    main()
