"""Pooling: last non-pad token from the attention mask, even when token id 0 occurs in the text."""

import pytest
import torch

from w2sgen.models.pooling import last_token_index, pool


@pytest.fixture(scope="module")
def tiny_decoder():
    from transformers import GPT2Config, GPT2Model

    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=50, n_positions=32, n_embd=16, n_layer=2, n_head=2, pad_token_id=0)
    return GPT2Model(cfg).eval()


def test_last_token_index_right_and_left_padding():
    right = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]])
    assert last_token_index(right).tolist() == [2, 4, 0]
    left = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    assert last_token_index(left).tolist() == [4, 4]


@pytest.mark.parametrize("side", ["right", "left"])
def test_last_pooling_with_token_zero_in_text(tiny_decoder, side):
    # token id 0 occurs inside the first text; counting input_ids != 0 would pick the wrong position
    texts = [[5, 0, 7, 0, 9], [3, 4, 0, 6, 2, 8, 1]]
    T = max(map(len, texts))
    ids = torch.zeros(2, T, dtype=torch.long)
    mask = torch.zeros(2, T, dtype=torch.long)
    for i, t in enumerate(texts):
        sl = slice(0, len(t)) if side == "right" else slice(T - len(t), T)
        ids[i, sl] = torch.tensor(t)
        mask[i, sl] = 1
    pos = None
    if side == "left":
        pos = (mask.cumsum(1) - 1).clamp_min(0)
    with torch.no_grad():
        hidden = tiny_decoder(input_ids=ids, attention_mask=mask, position_ids=pos).last_hidden_state
        pooled = pool(hidden, mask, "last")  # (B, C)
        for i, t in enumerate(texts):
            alone = tiny_decoder(input_ids=torch.tensor([t])).last_hidden_state[0, -1]
            torch.testing.assert_close(pooled[i], alone, atol=1e-5, rtol=1e-5)
    # the naive count of non-zero ids lands elsewhere for the first text
    naive = (ids != 0).sum(1) - 1
    assert naive[0].item() != last_token_index(mask)[0].item() or side == "left"


def test_mean_and_cls_pooling():
    hidden = torch.arange(2 * 3 * 2, dtype=torch.float).reshape(2, 3, 2)
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    torch.testing.assert_close(pool(hidden, mask, "mean")[0], hidden[0, :2].mean(0))
    torch.testing.assert_close(pool(hidden, mask, "mean")[1], hidden[1].mean(0))
    torch.testing.assert_close(pool(hidden, mask, "cls"), hidden[:, 0])
    with pytest.raises(ValueError):
        pool(hidden, mask, "max")
