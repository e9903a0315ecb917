"""The loop's window for batch-level losses: each step's logconf threshold is computed over exactly
that step's effective batch, scored by that step's weights (with and without gradient accumulation)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from conftest import build_tiny_model, toy_texts

from w2sgen.config import FinetuneConfig
from w2sgen.train.finetune import (
    build_model,
    length_grouped_batches,
    micro_accum,
    total_steps,
    train_steps,
)
from w2sgen.train.losses import logconf

N = 20
SEED = 3


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from w2sgen.models.registry import resolve_model

    return resolve_model(str(build_tiny_model(tmp_path_factory.mktemp("m") / "llama", "llama")))


def _targets() -> np.ndarray:
    """Soft labels (N, 2) with a distinct positive probability per example: a target names its row."""
    p1 = 0.1 + 0.8 * np.arange(N) / (N - 1)
    return np.stack([1 - p1, p1], 1).astype(np.float32)


def _rows_of(t: torch.Tensor, target: np.ndarray) -> list[int]:
    d = np.abs(t[:, 1].numpy()[:, None] - target[None, :, 1])  # (m, N)
    assert d.min(1).max() < 1e-6
    return d.argmin(1).tolist()


def _expected_groups(tok, texts, cfg: FinetuneConfig, steps: int) -> list[list[int]]:
    """The effective batch of every step, as the loop draws them (same generator and grouping)."""
    micro, accum = micro_accum(cfg)
    lengths = np.array([len(x) for x in tok(texts, truncation=True, max_length=cfg.max_length)["input_ids"]])
    gen = torch.Generator().manual_seed(SEED)
    batches: list[np.ndarray] = []
    out = []
    for _ in range(steps):
        if not batches:
            batches = length_grouped_batches(lengths, micro, gen)
        group = [batches.pop() for _ in range(min(accum, len(batches)))]
        out.append(sorted(np.concatenate(group).tolist()))
    return out


def _threshold(probs: torch.Tensor, weak: torch.Tensor) -> float:
    """logconf's τ: the (1 − positive rate) quantile of p_1 over the batch."""
    return float(torch.quantile(probs[:, 1], 1.0 - weak[:, 1].mean().clamp(0, 1)))


@pytest.mark.parametrize("micro", [3, None], ids=["accumulated", "one-micro-batch"])
def test_threshold_is_over_exactly_the_step_batch(tiny, micro):
    texts, _ = toy_texts(N)
    target = _targets()
    cfg = FinetuneConfig(lr=3e-2, head_lr=3e-2, epochs=2, batch_size=8, micro_batch_size=micro, max_length=32)
    torch.manual_seed(0)
    clf, tok, _ = build_model(tiny, 2, "last", -1, cfg, False, "cpu")
    ref = copy.deepcopy(clf)
    steps: list[dict] = []

    def loss(lg, t, s, T, window=None):
        if not steps or steps[-1]["step"] != s:  # first micro-batch of step s: the weights it trains from
            steps.append({"step": s, "state": copy.deepcopy(clf.state_dict()), "calls": []})
        own = torch.softmax(lg.detach().float(), -1)
        probs = own if window is None else torch.cat([window[0], own])
        weak = t if window is None else torch.cat([window[1], t])
        steps[-1]["calls"].append((probs, weak, len(t)))
        return logconf(lg, t, alpha=0.5, window=window)

    loss.needs_window = True
    run = train_steps(clf, tok, texts, target, loss, cfg, lr=3e-2, head_lr=3e-2, gen=torch.Generator().manual_seed(SEED))
    micro_n, _ = micro_accum(cfg)
    # 20 examples, 2 epochs: 8 per step (3 steps an epoch), or 2 x 3 accumulated (4 steps, the last of one micro-batch)
    assert len(run.losses) == len(steps) == total_steps(N, cfg) == (8 if micro else 6)
    expected = _expected_groups(tok, texts, cfg, len(steps))
    for rec, rows in zip(steps, expected):
        ref.load_state_dict(rec["state"])
        ref.train()
        with torch.no_grad():  # each row alone, unpadded: no batch effects in the recomputation
            fresh = torch.cat([torch.softmax(ref(torch.tensor([ids]), torch.ones(1, len(ids), dtype=torch.long)), -1)
                               for ids in tok([texts[i] for i in rows])["input_ids"]])
        want = _threshold(fresh, torch.from_numpy(target[rows]))
        assert len(rec["calls"]) == -(-len(rows) // micro_n)  # one loss call per micro-batch
        assert sum(c[2] for c in rec["calls"]) == len(rows)
        for probs, weak, _ in rec["calls"]:
            seen = _rows_of(weak, target)
            assert sorted(seen) == rows  # exactly this step's effective batch: nothing stale, nothing missing
            np.testing.assert_allclose(probs.numpy(), fresh[[rows.index(i) for i in seen]].numpy(), atol=1e-5)
            assert abs(_threshold(probs, weak) - want) < 1e-5
    # the weights moved, so a stale window (the previous step's predictions) would have been caught above
    assert not torch.allclose(steps[0]["state"]["head.weight"], steps[-1]["state"]["head.weight"])


def test_losses_without_the_declaration_get_no_window(tiny):
    texts, y = toy_texts(12)
    cfg = FinetuneConfig(lr=1e-3, max_steps=2, batch_size=6, micro_batch_size=2)
    clf, tok, _ = build_model(tiny, 2, "last", -1, cfg, False, "cpu")
    seen = []

    def loss(lg, t, s, T, window=None):
        seen.append(window)
        return logconf(lg, t, alpha=0.5, window=window)

    train_steps(clf, tok, texts, np.eye(2, dtype=np.float32)[y], loss, cfg, lr=1e-3, head_lr=1e-3,
                gen=torch.Generator().manual_seed(0))
    assert len(seen) == 6 and all(w is None for w in seen)
