"""Decoders as language models: label-word scoring (zero-/few-shot prompting) and LM finetuning.

Shared by the prompting baselines (``zero_shot``, ``few_shot``) and ``generative`` finetuning
(Burns et al. 2023, §5.2). Nothing here imports torch or transformers at module import time.

Scoring. For a prompt x and K label words w_1..w_K (each one or more tokens t_1..t_m):

    log P(w_k | x) = Σ_j log softmax(logits(x, t_<j))[t_j]
    p(k | x)       = softmax_k(log P(w_k | x))

Prompt and word are tokenized separately (the word without special tokens, the prompt with the
tokenizer's leading special tokens, e.g. BOS, but none of its trailing ones, e.g. EOS/SEP) and
concatenated, so a word scores the same after every prompt. Batches are right-padded with an
attention mask: real tokens keep positions 0..L-1, so a padded batch gives each row's unpadded
logits.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import W2SError
from .registry import ResolvedModel, detect_kind

DEFAULT_TEMPLATE = "{text}\nAnswer:"
"""The default prompt: the example's text, a new line, ``Answer:``; the label word follows."""
BINARY_WORDS = [" false", " true"]
"""Label words of a binary task whose label names are not words (e.g. "0", "1")."""
WORD = re.compile(r"[^\W\d_][\w'\- ]*")


def model_kind(model: ResolvedModel) -> str:
    """encoder or decoder (the registered kind, else read from config.json)."""
    if model.kind in ("encoder", "decoder"):
        return model.kind
    from .backbone import local_dir

    return detect_kind(local_dir(model))


def require_decoder(model: ResolvedModel, method: str) -> None:
    """Raise a W2SError naming the fix when ``model`` is not a causal LM."""
    if model_kind(model) != "decoder":
        raise W2SError(f"{method} needs a decoder (causal LM), e.g. --strong smollm2-135m or "
                       f"--set {method}.model=smollm2-135m; {model.name!r} is an encoder")


def label_words(label_names: list[str], given: list[str] | None) -> list[str]:
    """The K label words: ``given``, else the task's label names with a leading space when every
    name is a word (``["false", "true"]`` -> ``[" false", " true"]``), else :data:`BINARY_WORDS`
    for a binary task; a task of more classes with non-word names needs ``given``."""
    k = len(label_names)
    if given is not None:
        if len(given) != k:
            raise W2SError(f"label_words: {len(given)} words for a task of {k} classes ({label_names}); "
                           f"give one word per class in label order")
        return [str(w) for w in given]
    if all(WORD.fullmatch(str(n).strip()) for n in label_names):
        return [" " + str(n).strip() for n in label_names]
    if k == 2:
        return list(BINARY_WORDS)
    raise W2SError(f"the task's label names {label_names} are not words; set label_words=[...] "
                   f"(one word per class, e.g. ' yes')")


def render(template: str, text: str, words: list[str]) -> str:
    """``template`` with ``{text}`` and (optional) ``{choices}`` (the words joined by " or ") filled in."""
    return template.replace("{choices}", " or ".join(w.strip() for w in words)).replace("{text}", text)


def few_shot_prompt(template: str, shots: list[tuple[str, int]], text: str, words: list[str]) -> str:
    """Demonstrations then the query: for each (text_i, label_i) ``render(template, text_i) +
    words[label_i]`` followed by a blank line, then ``render(template, text)``."""
    demo = "".join(render(template, t, words) + words[y] + "\n\n" for t, y in shots)
    return demo + render(template, text, words)


# --------------------------------------------------------------------------- loading


@dataclass
class CausalLM:
    model: Any
    tokenizer: Any
    device: str


def load_causal_lm(model: ResolvedModel, *, device: str = "cpu", trust_remote_code: bool = False) -> CausalLM:
    """Tokenizer + causal LM in eval mode, fp32 weights on ``device``.

    Weights a directory lacks (an LM head of a base-model checkpoint) are initialised from a fixed
    seed, so two loads give the same model.
    """
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .backbone import local_dir

    path = local_dir(model)
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    try:
        tok = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            net = AutoModelForCausalLM.from_pretrained(path, trust_remote_code=trust_remote_code,
                                                       dtype=torch.float32)
    except (OSError, ValueError) as e:
        raise W2SError(f"model {model.name!r} at {path}: cannot load as a causal LM "
                       f"({str(e).splitlines()[0]})") from None
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token or tok.unk_token
    tok.padding_side = "right"
    net.eval().to(device)
    return CausalLM(net, tok, device)


# --------------------------------------------------------------------------- scoring


def prompt_ids(tok: Any, prompt: str) -> list[int]:
    """Token ids of ``prompt``: the tokenizer's leading special tokens (BOS, CLS) and the text's tokens."""
    full = tok(prompt, add_special_tokens=True)["input_ids"]
    plain = tok(prompt, add_special_tokens=False)["input_ids"]
    n = len(plain)
    for k in range(len(full) - n + 1):
        if full[k:k + n] == plain:
            return list(full[:k]) + list(plain)
    return list(plain)


def word_ids(tok: Any, words: list[str]) -> list[list[int]]:
    """Token ids of each label word (no special tokens); a word that tokenizes to nothing is an error."""
    out = [list(tok(w, add_special_tokens=False)["input_ids"]) for w in words]
    for w, ids in zip(words, out, strict=True):
        if not ids:
            raise W2SError(f"label word {w!r} tokenizes to nothing; choose other label_words")
    if len({tuple(i) for i in out}) < len(out):
        raise W2SError(f"label words {words} tokenize alike ({out}); choose distinct label_words")
    return out


MIN_SHARED = 16
"""Leading tokens shared by every sequence from which their keys and values are computed once."""


def shared_prefix(seqs: list[list[int]], limit: int) -> int:
    """Length of the longest token prefix common to all ``seqs``, at most ``limit``."""
    if not seqs:
        return 0
    n = min(limit, *(len(s) for s in seqs))
    first = seqs[0]
    for i in range(n):
        t = first[i]
        if any(s[i] != t for s in seqs):
            return i
    return n


def _batches(model: Any, seqs: list[list[int]], *, pad_id: int, device: str, batch_size: int, dtype: str,
             reuse: int = 0):
    """Yield (positions into ``seqs``, log-softmax (B, L − shift, V) float32, shift) of length-sorted,
    right-padded batches; row r's position j is the token at j + shift of its sequence (shift =
    ``reuse`` when the cache was used, else 0).

    ``reuse``: leading tokens common to every sequence (a few-shot prompt's demonstrations): their
    keys and values are computed once and each batch runs only the rest (exact: the same causal
    attention over the same tokens; used when ``reuse`` >= MIN_SHARED and the model has a cache).
    """
    import copy

    import torch

    order = np.argsort([len(s) for s in seqs], kind="stable")
    autocast = torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=dtype == "bf16")
    with torch.inference_mode(), autocast:
        cache = None
        if reuse >= MIN_SHARED:
            prefix = torch.tensor([seqs[0][:reuse]], device=device)  # (1, P)
            out = model(input_ids=prefix, use_cache=True)
            cache = getattr(out, "cache", None) or getattr(out, "past_key_values", None)  # transformers 5 / 4
            if cache is None or not hasattr(cache, "batch_repeat_interleave"):
                cache = None
            import inspect

            cache_arg = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
        if cache is None:
            reuse = 0
        for b in range(0, len(order), batch_size):
            idx = order[b:b + batch_size]
            L = max(len(seqs[i]) for i in idx) - reuse
            ids = torch.full((len(idx), L), pad_id, dtype=torch.long)
            mask = torch.zeros((len(idx), reuse + L), dtype=torch.long)
            mask[:, :reuse] = 1
            for r, i in enumerate(idx):
                tail = seqs[i][reuse:]
                ids[r, :len(tail)] = torch.tensor(tail)
                mask[r, reuse:reuse + len(tail)] = 1
            kw: dict[str, Any] = {}
            if cache is not None:
                past = copy.deepcopy(cache)
                past.batch_repeat_interleave(len(idx))
                pos = torch.arange(reuse, reuse + L).unsqueeze(0).expand(len(idx), L)  # (B, L)
                kw = {cache_arg: past, "position_ids": pos.to(device), "use_cache": True}
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device), **kw).logits  # (B, L, V)
            yield idx, torch.log_softmax(logits.float(), dim=-1), reuse


def _clip_left(seqs: list[list[int]], starts: list[int], max_length: int | None) -> tuple[list[list[int]], list[int]]:
    seqs, starts = list(seqs), list(starts)
    if max_length is not None:
        for i, s in enumerate(seqs):
            if len(s) > max_length:
                cut = len(s) - max_length
                if starts[i] - cut < 1:
                    raise W2SError(f"max_length {max_length}: too short for the label word ({len(s) - starts[i]} tokens)")
                seqs[i], starts[i] = s[cut:], starts[i] - cut
    return seqs, starts


def sequence_logprobs(model: Any, seqs: list[list[int]], starts: list[int], *, pad_id: int, device: str = "cpu",
                      batch_size: int = 16, dtype: str = "fp32", max_length: int | None = None) -> np.ndarray:
    """Σ_{t >= start_i} log P(seq_i[t] | seq_i[:t]) for each sequence (n,) float64.

    Sequences longer than ``max_length`` lose tokens from the left (the scored tail is kept).
    Batches are sorted by length and right-padded with an attention mask.
    """
    import torch

    seqs, starts = _clip_left(seqs, starts, max_length)
    out = np.zeros(len(seqs), dtype=np.float64)
    reuse = shared_prefix(seqs, min(starts) - 1) if seqs else 0
    for idx, logp, shift in _batches(model, seqs, pad_id=pad_id, device=device, batch_size=batch_size,
                                     dtype=dtype, reuse=reuse):
        for r, i in enumerate(idx):
            n = len(seqs[i])
            tgt = torch.tensor(seqs[i][starts[i]:], device=logp.device)  # the scored tokens
            out[i] = logp[r, starts[i] - 1 - shift:n - 1 - shift].gather(-1, tgt.unsqueeze(-1)).sum().item()
    return out


def next_token_logprobs(model: Any, seqs: list[list[int]], targets: list[int], *, pad_id: int, device: str = "cpu",
                        batch_size: int = 16, dtype: str = "fp32", max_length: int | None = None) -> np.ndarray:
    """log P(t_k | seq_i) (n, K) of each single token ``targets[k]`` right after each whole sequence.

    Equal to :func:`sequence_logprobs` of ``seq_i + [t_k]`` scored on its last token, in one pass per prompt.
    """
    if max_length is not None:
        seqs = [s[-(max_length - 1):] if len(s) > max_length - 1 else s for s in seqs]
    out = np.zeros((len(seqs), len(targets)), dtype=np.float64)
    reuse = shared_prefix(seqs, min(len(s) for s in seqs) - 1) if seqs else 0
    for idx, logp, shift in _batches(model, seqs, pad_id=pad_id, device=device, batch_size=batch_size,
                                     dtype=dtype, reuse=reuse):
        for r, i in enumerate(idx):
            out[i] = logp[r, len(seqs[i]) - 1 - shift, targets].double().cpu().numpy()
    return out


def score_label_words(lm: CausalLM, prompts: list[str], words: list[str], *, batch_size: int = 16,
                      dtype: str = "fp32", max_length: int | None = None) -> np.ndarray:
    """Log-probabilities log P(w_k | prompt_i) (n, K) of each label word after each prompt.

    Each (prompt, word) pair is one sequence prompt_ids + word_ids, scored on the word's tokens;
    when every word is one token, one pass per prompt reads all K from its last position.
    """
    tok = lm.tokenizer
    w_ids = word_ids(tok, words)
    p_all = [prompt_ids(tok, p) for p in prompts]
    if any(not p for p in p_all):
        raise W2SError("an empty prompt gives the label word no context; check the prompt template")
    kw = dict(pad_id=tok.pad_token_id, device=lm.device, batch_size=batch_size, dtype=dtype, max_length=max_length)
    if all(len(w) == 1 for w in w_ids):  # one forward pass per prompt
        return next_token_logprobs(lm.model, p_all, [w[0] for w in w_ids], **kw)
    seqs, starts = [], []
    for p_ids in p_all:
        for w in w_ids:
            seqs.append(p_ids + w)
            starts.append(len(p_ids))
    return sequence_logprobs(lm.model, seqs, starts, **kw).reshape(len(prompts), len(words))


def label_probs(logprobs: np.ndarray) -> np.ndarray:
    """p(k | x) = softmax_k log P(w_k | x): (n, K) log-probabilities -> (n, K) probabilities (float32)."""
    z = logprobs - logprobs.max(axis=1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


# --------------------------------------------------------------------------- LM finetuning


def texts_hash(texts: list[str]) -> str:
    h = hashlib.sha256()
    for t in texts:
        h.update(t.encode("utf-8", "surrogatepass") + b"\x00")
    return h.hexdigest()[:24]


def lm_batch(tok: Any, texts: list[str], max_length: int, device: str):
    """(input_ids, attention_mask, labels) of right-padded ``texts``; pads are ignored (-100) in labels."""
    enc = tok(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    labels = enc["input_ids"].clone()
    labels[enc["attention_mask"] == 0] = -100
    return enc["input_ids"].to(device), enc["attention_mask"].to(device), labels.to(device)


def lm_loss(lm: CausalLM, texts: list[str], max_length: int = 128) -> float:
    """Mean next-token cross-entropy of the model on ``texts`` (one batch, no gradient)."""
    import torch

    ids, mask, labels = lm_batch(lm.tokenizer, texts, max_length, lm.device)
    with torch.inference_mode():
        return float(lm.model(input_ids=ids, attention_mask=mask, labels=labels).loss)


def lm_finetune(lm: CausalLM, texts: list[str], *, steps: int, lr: float, batch_size: int, max_length: int,
                lora: bool, lora_rank: int = 8, seed: int = 0, dtype: str = "fp32") -> tuple[Any, list[float]]:
    """Finetune ``lm`` on ``texts`` with the language-modelling objective; returns (model, losses).

    Loss: mean over non-pad tokens of −log P(t_j | t_<j). AdamW at constant ``lr``; batches of
    ``batch_size`` texts drawn from seeded permutations of ``texts``. With ``lora`` the base weights
    stay frozen, LoRA adapters (rank ``lora_rank``) train and are merged into the returned model.
    """
    import torch

    from .classifier import lora_wrap

    if not texts:
        raise W2SError("generative: no texts to finetune the language model on")
    model = lm.model
    torch.manual_seed(seed)
    if lora:
        model = lora_wrap(model, model.config.model_type, lora_rank, 2 * lora_rank, None)
    else:
        model.requires_grad_(True)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(seed)
    order: list[int] = []
    losses = []
    autocast = torch.autocast(torch.device(lm.device).type, dtype=torch.bfloat16, enabled=dtype == "bf16")
    for _ in range(steps):
        while len(order) < batch_size:
            order.extend(torch.randperm(len(texts), generator=gen).tolist())
        batch, order = [texts[i] for i in order[:batch_size]], order[batch_size:]
        ids, mask, labels = lm_batch(lm.tokenizer, batch, max_length, lm.device)
        with autocast:
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        if not torch.isfinite(loss):
            raise W2SError(f"generative: the LM loss is {loss.item()} at step {len(losses) + 1}; lower generative.lr")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    if lora:
        model = model.merge_and_unload()
    model.eval().requires_grad_(False)
    return model, losses


def save_causal_lm(model: Any, tok: Any, path: Path) -> None:
    """Save weights (safetensors), config and tokenizer so ``path`` loads as a local model directory."""
    model.save_pretrained(path, safe_serialization=True)
    tok.save_pretrained(path)
