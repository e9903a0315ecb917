"""Stopping at the probed layer: the same hidden states as the whole model's, without the blocks above."""

from __future__ import annotations

import pytest
import torch
from conftest import FAMILIES, tiny_config

from w2sgen.models.classifier import Classifier
from w2sgen.models.truncate import TRUNCATE_FAMILIES, blocks_of, hidden_at, stop_block

LAYERS = 4


def tiny(family: str):
    import transformers as tf

    torch.manual_seed(0)
    if family == "gemma3_text":
        cfg = tf.Gemma3TextConfig(vocab_size=60, hidden_size=16, intermediate_size=32, num_hidden_layers=LAYERS,
                                  num_attention_heads=2, num_key_value_heads=1, head_dim=8, max_position_embeddings=64,
                                  sliding_window=4, layer_types=["sliding_attention", "full_attention"] * (LAYERS // 2))
    elif family == "mpnet":
        cfg = tf.MPNetConfig(vocab_size=60, hidden_size=16, intermediate_size=32, num_hidden_layers=LAYERS,
                             num_attention_heads=2, max_position_embeddings=64)
    else:
        cfg = tiny_config(family, 60, layers=LAYERS)
    for key, value in list(cfg.to_dict().items()):
        if isinstance(value, float) and ("dropout" in key or "pdrop" in key):
            setattr(cfg, key, 0.0)
    return tf.AutoModel.from_config(cfg).eval()


def batch():
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(5, 60, (3, 9), generator=g)
    mask = torch.tensor([[1] * 9, [1] * 6 + [0] * 3, [1] * 2 + [0] * 7])
    return ids * mask, mask


FAMILIES_HERE = sorted(set(FAMILIES) | {"bert", "mpnet", "gemma3_text"})


@pytest.mark.parametrize("family", FAMILIES_HERE)
def test_hidden_at_equals_hidden_states_and_skips_the_blocks_above(family):
    model = tiny(family)
    ids, mask = batch()
    with torch.no_grad():
        ref = model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
    assert len(ref) == LAYERS + 1
    ran = []
    for i, block in enumerate(blocks_of(model)):
        block.register_forward_hook(lambda *_a, i=i: ran.append(i))
    for k in range(LAYERS):
        ran.clear()
        with torch.no_grad():
            h = hidden_at(model, k, input_ids=ids, attention_mask=mask)
        torch.testing.assert_close(h, ref[k], rtol=0, atol=1e-6, msg=f"{family}: layer {k}")
        assert ran == list(range(k)), f"{family}: stopping at block {k} ran blocks {ran}"


@pytest.mark.parametrize("family", FAMILIES_HERE)
def test_every_tested_family_is_listed_and_the_top_layer_is_never_cut(family):
    model = tiny(family)
    assert family in TRUNCATE_FAMILIES
    assert stop_block(model, -1) is None and stop_block(model, LAYERS) is None
    assert stop_block(model, -2) == LAYERS - 1 and stop_block(model, 0) == 0 and stop_block(model, 2) == 2


def test_an_unlisted_family_runs_whole():
    model = tiny("gpt2")
    model.config.model_type = "something_new"
    assert stop_block(model, 1) is None


@pytest.mark.parametrize("family", ["llama", "gpt2", "bert"])
def test_classifier_at_a_middle_layer_has_the_same_logits_and_gradients(family):
    ids, mask = batch()
    pooling = "mean" if family == "bert" else "last"
    grads, ran = [], []
    for shortcuts in (False, True):
        torch.manual_seed(3)
        clf = Classifier(tiny(family), 2, pooling, layer=-3, shortcuts=shortcuts)
        ran.append(set())
        for i, block in enumerate(blocks_of(clf.backbone)):
            block.register_forward_hook(lambda *_a, i=i, seen=ran[-1]: seen.add(i))
        loss = torch.nn.functional.cross_entropy(clf(ids, mask), torch.tensor([0, 1, 1]))
        loss.backward()
        grads.append({k: p.grad for k, p in clf.named_parameters()})
    assert stop_block(clf.backbone, -3) == LAYERS - 2
    assert ran == [set(range(LAYERS)), set(range(LAYERS - 2))], ran  # the shortcut skipped the top two blocks
    assert grads[0].keys() == grads[1].keys()
    for k, g in grads[0].items():
        if g is None:
            assert grads[1][k] is None, k
        else:
            torch.testing.assert_close(grads[1][k], g, rtol=1e-5, atol=1e-7, msg=k)


def test_no_shortcut_while_dropout_is_active_in_training():
    """Skipped blocks would not draw their dropout masks: the run's random stream would change."""
    import transformers as tf

    cfg = tiny_config("llama", 60, layers=LAYERS)
    cfg.attention_dropout = 0.1
    clf = Classifier(tf.AutoModel.from_config(cfg), 2, "last", layer=-3, shortcuts=True)
    ran = set()
    for i, block in enumerate(blocks_of(clf.backbone)):
        block.register_forward_hook(lambda *_a, i=i: ran.add(i))
    ids, mask = batch()
    clf.train()(ids, mask)
    assert ran == set(range(LAYERS))
    ran.clear()
    with torch.no_grad():
        clf.eval()(ids, mask)
    assert ran == set(range(LAYERS - 2))


def test_remote_code_is_not_cut():
    model = tiny("llama")

    class Remote(type(model)):  # a subclass defined outside transformers, as trust_remote_code loads one
        pass

    Remote.__module__ = "transformers_modules.someone.model"
    model.__class__ = Remote
    assert stop_block(model, 1) is None


def test_shortcuts_default_to_one_process_only(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert Classifier(tiny("llama"), 2, "last", layer=-3).shortcuts
    monkeypatch.setenv("WORLD_SIZE", "2")  # several processes: FSDP shards each block to its own forward
    clf = Classifier(tiny("llama"), 2, "last", layer=-3)
    assert not clf.shortcuts and clf._stop is None
