"""Finetuning: every family through pooling, head, a LoRA step and a full step; LoRA, checkpointing, bf16."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import FAMILIES, build_tiny_model, tiny_config

from w2sgen.config import FinetuneConfig
from w2sgen.models.classifier import Classifier, enable_checkpointing, lora_wrap
from w2sgen.models.pooling import last_token_index


def batch(vocab: int = 60):
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, vocab, (3, 7), generator=g)
    mask = torch.tensor([[1] * 7, [1] * 5 + [0] * 2, [1] * 3 + [0] * 4])
    ids = ids * mask  # pad id 0
    return ids, mask


def make(family: str, lora: bool = False) -> Classifier:
    from transformers import AutoModel

    torch.manual_seed(0)
    cfg = tiny_config(family, 60)
    for key, value in list(cfg.to_dict().items()):  # dropout off, as finetuning does by default
        if isinstance(value, float) and ("dropout" in key or "pdrop" in key):
            setattr(cfg, key, 0.0)
    backbone = AutoModel.from_config(cfg)
    if lora:
        backbone = lora_wrap(backbone, family, rank=4, alpha=8, targets=None)
    pooling = "mean" if family == "bert" else "last"
    return Classifier(backbone, 2, pooling)


def one_step(clf: Classifier) -> float:
    ids, mask = batch()
    opt = torch.optim.AdamW([p for p in clf.parameters() if p.requires_grad], lr=1e-2)
    logits = clf(ids, mask)
    assert logits.shape == (3, 2) and logits.dtype == torch.float32
    loss = torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1, 1]))
    loss.backward()
    opt.step()
    return loss.item()


@pytest.mark.parametrize("family", FAMILIES)
def test_family_full_step_changes_backbone(family):
    clf = make(family)
    before = {k: v.clone() for k, v in clf.backbone.named_parameters()}
    one_step(clf)
    changed = [k for k, v in clf.backbone.named_parameters() if not torch.equal(v, before[k])]
    assert len(changed) > len(before) // 2, f"{family}: only {len(changed)} of {len(before)} tensors moved"


@pytest.mark.parametrize("family", FAMILIES)
def test_family_lora_step_leaves_base_weights_byte_identical(family):
    clf = make(family, lora=True)
    base = {k: v.clone() for k, v in clf.backbone.named_parameters() if "lora_" not in k}
    lora = {k: v.clone() for k, v in clf.backbone.named_parameters() if "lora_B" in k}
    assert lora, f"{family}: no LoRA adapters were attached"
    one_step(clf)
    for k, v in clf.backbone.named_parameters():
        if k in base:
            assert torch.equal(v, base[k]), f"{family}: base weight {k} changed under LoRA"
    moved = [k for k, v in clf.backbone.named_parameters() if k in lora and not torch.equal(v, lora[k])]
    assert moved, f"{family}: LoRA weights did not train"


def test_lora_wrap_keeps_peft_deprecation_noise_out_of_the_user_log():
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        make("llama", lora=True)
    assert not [w for w in caught if "is_gradient_checkpointing" in str(w.message)]


@pytest.mark.parametrize("family", ["gpt2", "llama", "bert"])
def test_gradient_checkpointing_gives_equal_gradients(family):
    grads = []
    for ckpt in (False, True):
        clf = make(family)
        clf.train()
        if ckpt:
            enable_checkpointing(clf.backbone)
        ids, mask = batch()
        loss = torch.nn.functional.cross_entropy(clf(ids, mask), torch.tensor([0, 1, 1]))
        loss.backward()
        grads.append({k: v.grad.clone() for k, v in clf.named_parameters() if v.grad is not None})
    assert grads[0].keys() == grads[1].keys()
    for k in grads[0]:
        torch.testing.assert_close(grads[0][k], grads[1][k], atol=1e-5, rtol=1e-4)


def test_bf16_autocast_runs():
    if not (torch.cuda.is_available() or torch.backends.mkldnn.is_available()):
        pytest.skip("no bf16-capable backend")
    clf = make("llama")
    ids, mask = batch()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = clf(ids, mask)
    assert logits.dtype == torch.float32 and torch.isfinite(logits).all()
    logits.sum().backward()


def test_last_token_pooling_in_classifier_uses_mask():
    clf = make("gpt2")
    ids, mask = batch()
    out = clf.backbone(input_ids=ids, attention_mask=mask).last_hidden_state
    idx = last_token_index(mask)
    want = clf.head(out[torch.arange(3), idx].float())
    torch.testing.assert_close(clf(ids, mask), want)


@pytest.mark.parametrize("family,lora", [("bert", False), ("llama", True)])
def test_tiny_model_learns_a_trivial_task(tmp_path, family, lora):
    from w2sgen.models.registry import resolve_model
    from w2sgen.train.finetune import finetune
    from w2sgen.train.losses import xent

    path = build_tiny_model(tmp_path / family, family)
    rng = np.random.default_rng(0)
    fillers = ["the", "a", "movie", "film", "city", "of", "paris", "rome"]

    def make_set(n):
        texts, labels = [], []
        for _ in range(n):
            y = int(rng.integers(2))
            word = rng.choice(["good", "great"] if y else ["bad", "awful"])
            words = list(rng.choice(fillers, 4)) + [word]
            rng.shuffle(words)
            texts.append(" ".join(words))
            labels.append(y)
        return texts, np.array(labels)

    tr_x, tr_y = make_set(256)
    te_x, te_y = make_set(100)
    cfg = FinetuneConfig(lr=3e-3, epochs=6, batch_size=16, micro_batch_size=8, lora=lora, lora_rank=8)
    res = finetune(resolve_model(str(path)), tr_x, np.eye(2, dtype=np.float32)[tr_y],
                   lambda lg, t, s, T, window=None: xent(lg, t), cfg, seed=0, num_classes=2,
                   pooling="mean" if family == "bert" else "last", layer=-1, eval_sets={"test": te_x})
    acc = float((res.probs["test"].argmax(1) == te_y).mean())
    assert acc >= 0.95, (family, lora, acc, res.losses[-5:])
    assert res.info["steps"] == 6 * 16  # 256 / 16 per epoch
    assert res.info["effective_batch"] == 16
    assert all(k.startswith("head.") or "lora_" in k for k in res.trainable)
