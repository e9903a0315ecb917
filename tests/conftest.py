"""Shared fixtures. Tests never touch the network: HF_HUB_OFFLINE=1 is forced here."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("W2S_PROGRESS", "0")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]


def data_root() -> Path:
    return Path(os.environ.get("W2S_DATA_DIR") or REPO.parent / "shared" / "data")


def require_data(name: str) -> Path:
    """``$W2S_DATA_DIR/name``; skip when absent, unless W2S_REQUIRE_DATA=1 (CI), then fail."""
    p = data_root() / name
    if not p.is_dir():
        msg = f"real data {p} is absent (set W2S_DATA_DIR)"
        if os.environ.get("W2S_REQUIRE_DATA") == "1":
            pytest.fail(msg + " and W2S_REQUIRE_DATA=1")
        pytest.skip(msg)
    return p


@pytest.fixture
def cache_dir(tmp_path, monkeypatch) -> Path:
    """A private stage cache for the test (models stay in the shared models directory)."""
    d = tmp_path / "cache"
    monkeypatch.setenv("W2S_CACHE_DIR", str(d))
    return d


WORDS = ("the city of is in a an and not true false good bad movie film great awful paris france berlin "
         "germany rome italy madrid spain tokyo japan lima peru oslo norway cairo egypt q : ? . ,").split()


def tiny_config(family: str, vocab_size: int, layers: int = 2):
    """A tiny random config of a registered family (``layers`` layers, width 16)."""
    import transformers as tf

    common = dict(vocab_size=vocab_size, hidden_size=16, intermediate_size=32, num_hidden_layers=layers,
                  num_attention_heads=2, max_position_embeddings=64)
    if family == "bert":
        return tf.BertConfig(**common)
    if family == "gpt2":
        return tf.GPT2Config(vocab_size=vocab_size, n_positions=64, n_embd=16, n_layer=layers, n_head=2)
    if family == "gpt_neox":
        return tf.GPTNeoXConfig(**common)
    if family in ("llama", "mistral", "qwen2"):
        cls = {"llama": tf.LlamaConfig, "mistral": tf.MistralConfig, "qwen2": tf.Qwen2Config}[family]
        return cls(**common, num_key_value_heads=1)
    if family == "gemma":
        return tf.GemmaConfig(**common, num_key_value_heads=1, head_dim=8)
    raise ValueError(family)


FAMILIES = ["gpt2", "qwen2", "llama", "mistral", "gpt_neox", "gemma"]


def build_tiny_model(path: Path, family: str, seed: int = 0) -> Path:
    """A tiny random model of ``family`` and a word-level tokenizer, saved like a hub model directory."""
    import torch
    from transformers import AutoModel

    tok = _tiny_tokenizer(path)
    torch.manual_seed(seed)
    cfg = tiny_config(family, len(tok))
    cfg.pad_token_id = tok.pad_token_id
    AutoModel.from_config(cfg).save_pretrained(path)
    return path


def _tiny_tokenizer(path: Path):
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    path.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, *map(str, range(10))]
    core = Tokenizer(models.WordLevel({w: i for i, w in enumerate(vocab)}, unk_token="[UNK]"))
    core.normalizer = normalizers.Lowercase()
    core.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Whitespace(), pre_tokenizers.Digits(individual_digits=True)])
    core.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    tok = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]",
                                  sep_token="[SEP]", mask_token="[MASK]")
    tok.save_pretrained(path)
    return tok


def build_tiny_encoder(path: Path, seed: int = 0) -> Path:
    """A tiny random BERT and a word-level tokenizer, saved like a hub model directory."""
    return build_tiny_model(path, "bert", seed)


@pytest.fixture(scope="session")
def tiny_encoders(tmp_path_factory) -> tuple[Path, Path]:
    """(weak, strong) tiny random encoders (different seeds and sizes are not needed for plumbing)."""
    root = tmp_path_factory.mktemp("models")
    return build_tiny_encoder(root / "weak", 0), build_tiny_encoder(root / "strong", 1)


@pytest.fixture(scope="session")
def tiny_decoders(tmp_path_factory) -> tuple[Path, Path]:
    """(weak, strong) tiny random causal LMs (llama, width 16; seeds 0 and 1), e.g. for generation tasks."""
    root = tmp_path_factory.mktemp("decoders")
    return build_tiny_lm(root / "weak", seed=0), build_tiny_lm(root / "strong", seed=1)


def write_toy_task(path: Path, n: int = 120) -> Path:
    """A jsonl task, linearly learnable from word identity: label 1 iff the review word is good/great.

    Rows come in pairs sharing a group (the same city), one of each label.
    """
    import json
    import random

    rng = random.Random(0)
    cities = ["paris", "berlin", "rome", "madrid", "tokyo", "lima", "oslo", "cairo"]
    rows = []
    for i in range(n // 2):
        city = cities[i % len(cities)]
        filler = " ".join(rng.choice(["the", "a", "an", "movie", "film", "city", "of"]) for _ in range(3))
        pos, neg = rng.choice(["good", "great"]), rng.choice(["bad", "awful"])
        rows.append({"text": f"{city} {filler} {pos} {i}", "label": 1, "group": f"g{i}"})
        rows.append({"text": f"{city} {filler} {neg} {i}", "label": 0, "group": f"g{i}"})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def toy_config(task, weak, strong, out, **kw):
    """A one-seed probe-mode RunConfig on the toy task's tiny splits (40/40/20/20), heads trained briefly.

    The val and test minimums are lowered explicitly to the tiny sizes (the defaults refuse them)."""
    from w2sgen.config import RunConfig, SplitConfig

    cfg = RunConfig(task=str(task), weak=str(weak), strong=str(strong), out=str(out), seeds=[0],
                    splits=SplitConfig(n_weak_train=40, n_transfer=40, n_val=20, n_test=20, min_val=20, min_test=20),
                    **kw)
    cfg.probe.epochs = 5
    cfg.probe.lr = 1e-2
    return cfg


def build_tiny_lm(path: Path, family: str = "llama", seed: int = 0) -> Path:
    """A tiny random causal LM (with its LM head) and the word-level tokenizer of the tiny models."""
    import torch
    from transformers import AutoModelForCausalLM

    tok = _tiny_tokenizer(path)
    torch.manual_seed(seed)
    cfg = tiny_config(family, len(tok))
    cfg.pad_token_id = tok.pad_token_id
    AutoModelForCausalLM.from_config(cfg).save_pretrained(path)
    return path


def toy_texts(n: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """Texts and labels (n,) of a word-identity task (good/great vs bad/awful among filler words)."""
    rng = np.random.default_rng(seed)
    fillers = ["the", "a", "movie", "film", "city", "of", "paris", "rome"]
    texts, labels = [], []
    for _ in range(n):
        y = int(rng.integers(2))
        words = list(rng.choice(fillers, int(rng.integers(2, 6)))) + [rng.choice(["good", "great"] if y else ["bad", "awful"])]
        rng.shuffle(words)
        texts.append(" ".join(words))
        labels.append(y)
    return texts, np.array(labels)
