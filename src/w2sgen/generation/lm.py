"""Causal LMs for generation tasks: supervised finetuning on answers, and batched greedy decoding.

SFT. An example is prompt_ids + answer_ids + [EOS], where prompt_ids are the templated prompt's
tokens (with the tokenizer's leading special tokens) and answer_ids those of " " + answer. The
loss is on the answer's tokens and the EOS only:

    L_m = (1/|A_m|) Σ_{(i, t) ∈ A_m} −log P(x_{i,t} | x_{i,<t})     A_m = answer and EOS positions of micro-batch m

(the default; a method may give its own ``loss(logits (B, T, V), labels (B, T), step, total)``,
applied per micro-batch). An optimizer step of micro-batches m = 1..M with n_m rows each (gradient
accumulation) minimises the row-weighted mean L = Σ_m (n_m / Σ_m' n_m') L_m: each micro-batch's
token mean weighted by its rows, not one token mean over the whole step (the two differ when
micro-batches hold different numbers of answer tokens).
Batches are left-padded, so the answers end every row at the same position and the LM head runs on
the last positions only (``logits_to_keep``); position ids count real tokens. AdamW with linear
warmup then cosine decay, gradient accumulation to ``finetune.batch_size``, clipping, LoRA
(peft) or all weights; LoRA adapters are merged into the returned model.

Decoding. Greedy, batched with left padding and a KV cache (``transformers`` ``generate``), stopping
at EOS or at any token containing a newline; the answer is the text before the first newline. The
checkpoint's generation_config.json is ignored (no repetition penalty, n-gram ban, minimum length
or other logits processing it may set): each token is the argmax of the model's raw logits. The
sequence log-probability of each answer (its tokens and the stop token) under the model is
recorded: the chosen token is the argmax, so log p = max(logits) − logsumexp(logits) per step.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import W2SError

log = logging.getLogger("w2sgen")
IGNORE = -100
"""Label of a position without loss (prompt, padding)."""

# loss(logits (B, T, V) fp32, labels (B, T) with IGNORE, step, total_steps) -> scalar
SeqLoss = Callable[..., Any]
"""``loss(logits (B, A, V), labels (B, A), step, total) -> scalar``: the SFT objective over the batch's last A
(answer) positions, labels −100 where a shorter answer is padded. A loss with ``wants_batch = True`` is
also given ``model`` (the model being trained), ``input_ids``, ``attention_mask``, ``position_ids``
(B, T; left-padded prompt + answer) and ``n_answer`` = A, e.g. to decode the student's own answer."""


def answer_xent(logits, labels, step: int = 0, total: int = 1):
    """Mean token cross-entropy over labelled positions: (1/|A|) Σ_{labels ≠ −100} −log softmax(logits)[label]."""
    import torch

    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1),
                                             ignore_index=IGNORE)


@dataclass
class LM:
    """A causal LM ready to train or decode: model, tokenizer, device and compute dtype."""

    model: Any
    tokenizer: Any
    device: str
    dtype: str = "fp32"
    family: str = ""
    load_s: float = 0.0


def load_lm(path: str, *, device: str, dtype: str, weights_dtype: str = "fp32", dropout: bool = False,
            trust_remote_code: bool = False, name: str = "") -> LM:
    """Tokenizer + causal LM from a local directory or hub id (dropout off unless asked)."""
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ..models.classifier import no_dropout_config

    t0 = time.time()
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    try:
        tok = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
        kw = {} if dropout else {"config": no_dropout_config(path, trust_remote_code)}
        with torch.random.fork_rng(devices=[]):  # weights a checkpoint lacks start from a fixed seed
            torch.manual_seed(0)
            model = AutoModelForCausalLM.from_pretrained(
                path, trust_remote_code=trust_remote_code,
                dtype=torch.bfloat16 if weights_dtype == "bf16" else torch.float32, **kw)
    except (OSError, ValueError) as e:
        raise W2SError(f"model {name or path!r}: cannot load as a causal LM ({str(e).splitlines()[0]}); "
                       "generation tasks need decoders, e.g. smollm2-135m") from None
    if tok.eos_token is None and tok.sep_token is not None:  # a word-level tokenizer's [SEP] ends answers
        tok.eos_token = tok.sep_token
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token or tok.unk_token
    if tok.eos_token_id is None:
        raise W2SError(f"model {name or path!r}: its tokenizer has no end-of-sequence token; answers could not end")
    model.eval().to(device)
    return LM(model, tok, device, dtype, model.config.model_type, time.time() - t0)


def render(template: str, prompt: str) -> str:
    """The text a model sees before its answer: ``template`` with ``{prompt}`` filled in."""
    return template.replace("{prompt}", prompt)


def encode(tok: Any, prompt: str, answer: str | None, max_length: int) -> tuple[list[int], int]:
    """(token ids, number of prompt tokens) of ``prompt`` (+ " " + ``answer`` + EOS when given).

    The prompt keeps the tokenizer's leading special tokens (BOS); a sequence over ``max_length``
    loses prompt tokens from the left (after those), never answer tokens.
    """
    ids, n, _ = _encode(tok, prompt, answer, max_length)
    return ids, n


def _encode(tok: Any, prompt: str, answer: str | None, max_length: int) -> tuple[list[int], int, int]:
    """:func:`encode` and the number of prompt tokens cut (0: the sequence fits)."""
    from ..models.lm import prompt_ids

    p = prompt_ids(tok, prompt)
    a = [] if answer is None else list(tok(" " + answer.strip(), add_special_tokens=False)["input_ids"]) + [
        tok.eos_token_id]
    over = len(p) + len(a) - max_length
    if over > 0:
        lead = len(p) - len(tok(prompt, add_special_tokens=False)["input_ids"])  # leading special tokens
        if len(p) - lead - over < 1:
            raise W2SError(f"finetune.max_length {max_length}: too short for an answer of {len(a)} tokens; raise it")
        p = p[:lead] + p[lead + over:]
    return p + a, len(p), max(over, 0)


def left_pad(seqs: list[list[int]], pad_id: int, labels: list[list[int]] | None = None):
    """(input_ids (B, T), attention_mask (B, T), position_ids (B, T)[, labels (B, T)]) of left-padded rows."""
    import torch

    T = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), T), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), T), dtype=torch.long)
    lab = torch.full((len(seqs), T), IGNORE, dtype=torch.long)
    for r, s in enumerate(seqs):
        ids[r, T - len(s):] = torch.tensor(s)
        mask[r, T - len(s):] = 1
        if labels is not None:
            lab[r, T - len(s):] = torch.tensor(labels[r])
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    return (ids, mask, pos, lab) if labels is not None else (ids, mask, pos)


# --------------------------------------------------------------------------- SFT


@dataclass
class SFTResult:
    lm: LM
    """The trained model (LoRA merged), in eval mode."""
    adapters: dict[str, Any] = field(default_factory=dict)
    """The LoRA adapter weights (empty under full finetuning: base weights are never stored)."""
    losses: list[float] = field(default_factory=list)
    """Loss of every optimizer step."""
    info: dict[str, Any] = field(default_factory=dict)
    """steps, lr, lora, n_train, n_truncated (examples whose prompt lost tokens to finetune.max_length)
    and truncated_share, train_tokens (real tokens the model ran on: prompt, answer and EOS tokens
    of every micro-batch, padding excluded, summed over all steps, so an example counts once per
    epoch), train_wall_s and train_tokens_per_s (train_tokens over train_wall_s: the training loop,
    model loading excluded), train_load_1min ([start, end] 1-minute load average around the loop),
    s_per_step, effective_batch."""


def load_1min() -> float | None:
    """The 1-minute load average now (None where the OS has none): timings under load vary ~10x."""
    import os

    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def _keeps_logits(model: Any) -> bool:
    import inspect

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "logits_to_keep" in inspect.signature(base.forward).parameters


def sft(lm: LM, prompts: list[str], answers: list[str], *, lr: float, lora: bool, cfg: Any, seed: int,
        loss_fn: SeqLoss | None = None, desc: str = "sft") -> SFTResult:
    """Finetune ``lm`` on (prompt, answer) pairs with the loss on answer tokens (see the module docstring).

    ``cfg``: the run's FinetuneConfig (epochs, max_steps, batch_size, micro_batch_size, warmup_frac,
    weight_decay, max_grad_norm, lora_rank, lora_alpha, lora_targets, grad_checkpointing, max_length).
    """
    import torch

    from ..log import progress
    from ..models.classifier import enable_checkpointing, lora_wrap
    from ..train.finetune import length_grouped_batches, micro_accum, total_steps

    if not prompts:
        raise W2SError(f"{desc}: no examples to finetune on")
    loss_fn = loss_fn or answer_xent
    tok, device = lm.tokenizer, lm.device
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = lm.model
    if cfg.grad_checkpointing:
        enable_checkpointing(model)
        model.config.use_cache = False
    if lora:
        model = lora_wrap(model, lm.family, cfg.lora_rank, cfg.lora_alpha, cfg.lora_targets)
        if cfg.grad_checkpointing:
            model.enable_input_require_grads()
    else:
        model.requires_grad_(True)
    model.train()
    cut = [_encode(tok, p, a, cfg.max_length) for p, a in zip(prompts, answers, strict=True)]
    enc = [(ids, n) for ids, n, _ in cut]
    n_truncated = sum(c > 0 for *_, c in cut)
    if n_truncated:
        log.warning("%s: %d of %d prompts cut from the left to finetune.max_length %d", desc, n_truncated,
                    len(cut), cfg.max_length)
    labels = [[IGNORE] * n + ids[n:] for ids, n in enc]
    lengths = np.array([len(ids) for ids, _ in enc])
    micro, accum = micro_accum(cfg)
    total = total_steps(len(enc), cfg)
    params = [p for p in model.parameters() if p.requires_grad]
    fused = all(p.device.type in ("cpu", "cuda") for p in params) or None
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=cfg.weight_decay, fused=fused)
    warm = int(cfg.warmup_frac * total)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: (s + 1) / max(1, warm) if s < warm else
                                              0.5 * (1 + math.cos(math.pi * (s - warm) / max(1, total - warm))))
    keep = _keeps_logits(model)
    autocast = dict(device_type=torch.device(device).type, dtype=torch.bfloat16, enabled=lm.dtype == "bf16")
    losses: list[float] = []
    tokens = 0
    batches: list[np.ndarray] = []
    load0 = load_1min()
    t0 = time.time()
    with progress(total=total, desc=desc, unit="step") as bar:
        for step in range(total):
            if not batches:
                batches = length_grouped_batches(lengths, micro, gen)
            group = [batches.pop() for _ in range(min(accum, len(batches)))]
            n_group = sum(len(b) for b in group)
            opt.zero_grad(set_to_none=True)
            step_loss = 0.0
            for rows in group:
                ids, mask, pos, lab = left_pad([enc[i][0] for i in rows], tok.pad_token_id, [labels[i] for i in rows])
                n_ans = int(max(len(enc[i][0]) - enc[i][1] for i in rows))  # answer positions at the end
                kw = {"logits_to_keep": n_ans + 1} if keep else {}
                with torch.autocast(**autocast):
                    logits = model(input_ids=ids.to(device), attention_mask=mask.to(device),
                                   position_ids=pos.to(device), **kw).logits  # (b, n_ans + 1 | T, V)
                logits = logits[:, -(n_ans + 1):-1].float()  # position t predicts token t + 1
                more = ({"model": model, "input_ids": ids.to(device), "attention_mask": mask.to(device),
                         "position_ids": pos.to(device), "n_answer": n_ans} if getattr(loss_fn, "wants_batch", False)
                        else {})  # e.g. a sequence-level loss that decodes the student's own answer
                loss = loss_fn(logits, lab[:, -n_ans:].to(device), step, total, **more)
                if not torch.isfinite(loss):
                    raise W2SError(f"{desc}: loss is {loss.item()} at step {step}; lower finetune.lr")
                (loss * (len(rows) / n_group)).backward()
                step_loss += loss.item() * len(rows) / n_group
                tokens += int(mask.sum())
            if cfg.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
            opt.step()
            sched.step()
            losses.append(step_loss)
            bar.update(1)
    train_s = time.time() - t0
    load1 = load_1min()
    adapters = {}
    if lora:
        adapters = {k: v.detach().cpu().contiguous() for k, v in model.named_parameters() if v.requires_grad}
        model = model.merge_and_unload()
    if cfg.grad_checkpointing:
        model.config.use_cache = True
    model.eval().requires_grad_(False)
    info = {"steps": total, "lr": lr, "lora": lora, "n_train": len(enc), "n_truncated": n_truncated,
            "truncated_share": round(n_truncated / len(enc), 4), "train_tokens": tokens,
            "train_wall_s": round(train_s, 3), "train_tokens_per_s": round(tokens / max(train_s, 1e-9), 1),
            "train_load_1min": [load0, load1], "s_per_step": round(train_s / max(total, 1), 4),
            "effective_batch": micro * accum}
    return SFTResult(LM(model, tok, device, lm.dtype, lm.family, lm.load_s), adapters, losses, info)


# --------------------------------------------------------------------------- decoding


@dataclass
class Generations:
    """Greedy answers of a list of prompts, in the prompts' order."""

    texts: list[str]
    """Each answer: the decoded text before the first newline, stripped."""
    n_tokens: np.ndarray
    """(n,) generated tokens of each answer, the stop token excluded."""
    logprob: np.ndarray
    """(n,) log-probability of each answer's tokens and its stop token (the cut-off answers: of all
    max_new_tokens tokens)."""
    stopped: np.ndarray
    """(n,) bool: the answer ended at EOS or a newline (False: cut at max_new_tokens)."""
    seconds: float = 0.0
    """Wall time of decoding all batches (prompt prefill included; tokenizing and loading excluded)."""
    tokens: int = 0
    """Generated tokens in all: each answer's tokens plus its stop token (EOS or newline) when it
    stopped (a cut answer: max_new_tokens). Steps a finished row idles through while the rest of
    its batch decodes are not counted."""
    load_1min: tuple[float | None, float | None] = (None, None)
    """1-minute load average at the start and the end of decoding."""

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else float("nan")


_STOPS: dict[tuple[str, int], list[int]] = {}


def stop_ids(tok: Any) -> list[int]:
    """EOS and every token whose text contains a newline (answers are one line)."""
    key = (getattr(tok, "name_or_path", ""), len(tok))
    if key not in _STOPS:
        texts = tok.batch_decode([[i] for i in range(len(tok))])
        _STOPS[key] = sorted({tok.eos_token_id, *(i for i, t in enumerate(texts) if "\n" in t)})
    return _STOPS[key]


class _GreedyLogprob:
    """A logits processor that records max − logsumexp of each step's scores: the chosen token's
    log-probability under greedy decoding. Leaves the scores unchanged. Under
    :func:`_plain_generation_config` it is the only processor, so the scores are the raw logits."""

    def __init__(self) -> None:
        self.steps: list[Any] = []

    def __call__(self, input_ids, scores):
        s = scores.float()
        self.steps.append((s.max(-1).values - s.logsumexp(-1)).cpu())  # (B,)
        return scores


@contextmanager
def _plain_generation_config(model: Any) -> Iterator[None]:
    """Within: ``model.generation_config`` is a fresh ``GenerationConfig`` (restored after).

    ``generate`` fills every field the passed config leaves unset from ``model.generation_config``
    (a checkpoint's generation_config.json: repetition_penalty, no_repeat_ngram_size, bad_words_ids,
    min_new_tokens, ...), which would turn greedy decoding into penalised decoding; with a fresh one
    only transformers' global defaults (no logits processing) fill them.
    """
    from transformers import GenerationConfig

    saved = model.generation_config
    model.generation_config = GenerationConfig()
    try:
        yield
    finally:
        model.generation_config = saved


def generate(lm: LM, prompts: list[str], *, max_new_tokens: int, batch_size: int, desc: str = "generate"
             ) -> Generations:
    """Greedy answers to ``prompts`` (already templated): batches of similar length, left-padded, KV cache."""
    import torch
    from transformers import GenerationConfig, LogitsProcessorList

    from ..log import progress

    n = len(prompts)
    texts: list[str] = [""] * n
    n_tok, lp, stopped = np.zeros(n, np.int64), np.zeros(n, np.float64), np.zeros(n, bool)
    if not n:
        return Generations(texts, n_tok, lp, stopped)
    if max_new_tokens < 1 or batch_size < 1:
        raise W2SError(f"gen.max_new_tokens ({max_new_tokens}) and gen.batch_size ({batch_size}) must be >= 1")
    tok, model = lm.tokenizer, lm.model
    stops = stop_ids(tok)
    stop_set = set(stops)
    from ..models.lm import prompt_ids

    enc = [prompt_ids(tok, p) for p in prompts]
    order = np.argsort([-len(e) for e in enc], kind="stable")
    gcfg = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=False, num_beams=1, eos_token_id=stops,
                            pad_token_id=tok.pad_token_id)
    autocast = torch.autocast(torch.device(lm.device).type, dtype=torch.bfloat16, enabled=lm.dtype == "bf16")
    total = 0
    load0 = load_1min()
    t0 = time.time()
    with torch.inference_mode(), autocast, _plain_generation_config(model), \
            progress(total=n, desc=desc, unit="ex") as bar:
        for b in range(0, n, batch_size):
            rows = order[b:b + batch_size]
            ids, mask, _ = left_pad([enc[i] for i in rows], tok.pad_token_id)
            rec = _GreedyLogprob()
            out = model.generate(input_ids=ids.to(lm.device), attention_mask=mask.to(lm.device),
                                 generation_config=gcfg, logits_processor=LogitsProcessorList([rec]))
            new = out[:, ids.shape[1]:].cpu().numpy()  # (b, steps)
            step_lp = torch.stack(rec.steps, 1).double().numpy() if rec.steps else np.zeros((len(rows), 0))
            for r, i in enumerate(rows):
                seq = new[r].tolist()
                end = next((j for j, t in enumerate(seq) if t in stop_set), None)
                k = len(seq) if end is None else end
                stopped[i] = end is not None
                n_tok[i] = k
                used = k + (end is not None)
                lp[i] = float(step_lp[r, :used].sum())
                total += used
                texts[i] = tok.decode(seq[:k], skip_special_tokens=True).split("\n")[0].strip()
            bar.update(len(rows))
    seconds = time.time() - t0
    return Generations(texts, n_tok, lp, stopped, seconds, total, (load0, load_1min()))
