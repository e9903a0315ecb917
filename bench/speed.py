#!/usr/bin/env python
"""Speed bench: our finetune loop, batched extraction and probe-mode training against naive baselines.

Plain Python, one process, one run, so every ratio compares two measurements taken side by side on
the same (possibly noisy) machine. Prints a table; the last line is machine-readable::

    summary: train_speedup=X extract_speedup=X probe_speedup=X extract_mfu=X train_mfu=X

* train: examples/s and tokens/s of ``w2sgen.train.finetune.train_steps`` (the loop ``finetune()``
  runs) vs a naive loop carried here: each batch processed one example at a time at its own length
  (no padding), fp32, the same optimiser and schedule, all logits of the batch kept before one
  backward. Same initial weights, data, batches, batch size and steps; dropout off in both. Their
  final losses are compared in fp32 (``loss_diff``); the speedup uses our default compute dtype
  (bf16 autocast where the hardware has it). MiniLM-L6 and a GPT-2-shaped decoder (6 layers,
  n_embd 512, 18.9M non-embedding parameters, random weights).
* extract: examples/s of ``w2sgen.train.activations.extract`` at the pipeline's batch size and
  default dtype vs batch size 1 in fp32.
* probe: ``w2sgen.train.probe.train_heads`` (one head, minibatch Adam) on cached activations (read
  back from a ``FeatureStore``) vs recomputing the backbone forward pass every step (OpenAI's
  ``linear_probe``), the same number of steps.
* MFU: 2 x non-embedding parameters x real (non-pad) tokens per second (x 3 for training) over the
  peak of a large matmul in the same dtype, measured in this run (the higher of two measurements).
* Timings: the best of ``rounds`` interleaved repetitions of each measurement (2 in the full size),
  so a burst of load from other processes does not land on one side of a ratio only.
* peak_MB: the largest increase of resident memory (CPU, sampled by a thread) or of allocated GPU
  memory during each measurement, over its level at the start.

Usage: ``.venv/bin/python bench/speed.py [--quick] [--device cpu|cuda]``. Runs on a CUDA GPU unchanged.
"""

from __future__ import annotations

import argparse
import copy
import csv
import math
import os
import platform
import random
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("W2S_PROGRESS", "0")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from w2sgen.config import FinetuneConfig, ProbeConfig  # noqa: E402
from w2sgen.models.classifier import Classifier  # noqa: E402
from w2sgen.train.finetune import length_grouped_batches, make_optimizer, micro_accum, train_steps  # noqa: E402
from w2sgen.train.losses import xent  # noqa: E402

# Sizes: "full" fits < 10 min on a 2-core CPU, "quick" ~1 min, "smoke" is for the test suite.
SIZES = {
    "full": dict(train_steps=8, batch=32, extract_n=1024, extract_base_n=128, probe_n=640,
                 probe_epochs=2, probe_reps=5, decoder=True, peak_n=2048, rounds=2),
    "quick": dict(train_steps=3, batch=32, extract_n=256, extract_base_n=64, probe_n=256,
                  probe_epochs=2, probe_reps=3, decoder=True, peak_n=1536, rounds=1),
    "smoke": dict(train_steps=2, batch=8, extract_n=32, extract_base_n=8, probe_n=32,
                  probe_epochs=1, probe_reps=2, decoder=False, peak_n=512, rounds=1),
}
MAX_LENGTH = 128
SEED = 0


# ---------------------------------------------------------------- measurement helpers

class PeakMemory:
    """Peak increase of resident memory (CPU, sampled) or allocated memory (CUDA) inside ``with``."""

    def __init__(self, device: str):
        self.device = device
        self.mb = 0.0

    def __enter__(self):
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
            return self
        try:
            import psutil

            proc = psutil.Process()
            self._rss = lambda: proc.memory_info().rss
        except ImportError:  # fall back to /proc
            page = os.sysconf("SC_PAGE_SIZE")
            self._rss = lambda: int(Path("/proc/self/statm").read_text().split()[1]) * page
        self.base = self.peak = self._rss()
        self._stop = threading.Event()

        def sample():
            while not self._stop.wait(0.002):
                self.peak = max(self.peak, self._rss())

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
            self.mb = (torch.cuda.max_memory_allocated() - self.base) / 2**20
        else:
            self._stop.set()
            self._thread.join()
            self.peak = max(self.peak, self._rss())
            self.mb = (self.peak - self.base) / 2**20
        return False


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def matmul_peak(dtype: torch.dtype, device: str, n: int, reps: int = 5) -> float:
    """Best FLOP/s of an (n, n) @ (n, n) matmul in ``dtype``."""
    if device.startswith("cuda"):
        n, reps = max(n, 8192), 20
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    a @ b
    sync(device)
    best = math.inf
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        sync(device)
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best


def nonembedding_params(model: torch.nn.Module) -> int:
    """Parameters outside token/position embeddings and BERT's pooler (it runs once per sequence)."""
    skip = ("embeddings.", "wte.", "wpe.", "pooler.")
    return sum(p.numel() for n, p in model.named_parameters() if not any(s in n for s in skip))


# ---------------------------------------------------------------- data and models

def load_texts(n: int, seed: int = SEED) -> tuple[list[str], np.ndarray, str]:
    """n SST-2 training sentences and labels (random, seeded); generated sentences if the data is absent."""
    root = Path(os.environ.get("W2S_DATA_DIR") or "/work/shared/data")
    path = root / "sst2" / "data" / "SST-2" / "train.tsv"
    rng = random.Random(seed)
    if path.is_file():
        with path.open(newline="") as f:
            rows = [(r["sentence"].strip(), int(r["label"])) for r in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)]
        rows = [r for r in rows if r[0]]
        pick = rng.sample(rows, min(n, len(rows)))
        while len(pick) < n:
            pick.append(rng.choice(rows))
        return [t for t, _ in pick], np.array([y for _, y in pick]), f"SST-2 ({path})"
    words = ("the film movie story actors plot is was a an not very quite truly good bad great awful dull "
             "funny moving boring brilliant mess charming slow and but with its").split()
    texts, labels = [], []
    for _ in range(n):
        k = min(60, max(2, int(rng.lognormvariate(2.3, 0.7))))
        texts.append(" ".join(rng.choice(words) for _ in range(k)))
        labels.append(rng.randint(0, 1))
    return texts, np.array(labels), "generated sentences (SST-2 not found)"


def word_tokenizer(texts: list[str]):
    """A word-level tokenizer over ``texts`` (only when MiniLM's tokenizer is not installed)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"[PAD]": 0, "[UNK]": 1}
    for t in texts:
        for w in t.lower().split():
            vocab.setdefault(w, len(vocab))
    tk = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tk, pad_token="[PAD]", unk_token="[UNK]")


def load_minilm(texts: list[str]):
    """(backbone, tokenizer, source) for MiniLM-L6: the packaged weights, or its shape with random weights."""
    import transformers
    from transformers import AutoModel, AutoTokenizer, BertConfig, BertModel

    from w2sgen.models import resolve_model
    from w2sgen.models.classifier import no_dropout_config

    transformers.logging.set_verbosity_error()
    try:
        path = resolve_model("minilm-l6").path
        tok = AutoTokenizer.from_pretrained(path)
        model = AutoModel.from_pretrained(path, config=no_dropout_config(path))
        return model, tok, "packaged weights"
    except Exception:  # noqa: BLE001 - any failure: build the same shape from its config
        tok = word_tokenizer(texts)
        cfg = BertConfig(vocab_size=30522, hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
                         intermediate_size=1536, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
        torch.manual_seed(SEED)
        return BertModel(cfg), tok, "random weights (MiniLM-L6 shape)"


def build_decoder(tok):
    """A GPT-2-shaped decoder (6 layers, n_embd 512, 8 heads) with random weights and dropout off."""
    from transformers import GPT2Config, GPT2Model

    tid = tok.pad_token_id or 0
    cfg = GPT2Config(n_layer=6, n_embd=512, n_head=8, vocab_size=max(len(tok), 1024), n_positions=512,
                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=tid, eos_token_id=tid,
                     pad_token_id=tid)
    torch.manual_seed(SEED)
    return GPT2Model(cfg)


# ---------------------------------------------------------------- rows of the table

@dataclass
class Row:
    section: str
    model: str
    what: str
    batch: str
    dtype: str
    seconds: float
    examples: int = 0
    tokens: int = 0
    mfu: float | None = None
    peak_mb: float = 0.0
    extra: dict = field(default_factory=dict)

    @property
    def ex_s(self) -> float:
        return self.examples / self.seconds if self.seconds > 0 else 0.0

    @property
    def tok_s(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0


def print_table(rows: list[Row], ratios: dict[int, tuple[str, float]]) -> None:
    head = (f"{'section':<8} {'model':<10} {'what':<34} {'batch':>6} {'dtype':>5} {'time_s':>8} "
            f"{'ex/s':>8} {'tok/s':>9} {'ratio':>8} {'MFU':>6} {'peak_MB':>8}  notes")
    print(head)
    print("-" * len(head))
    for i, r in enumerate(rows):
        ratio = f"{ratios[i][1]:.1f}x" if i in ratios else ""
        mfu = f"{100 * r.mfu:.1f}%" if r.mfu is not None else ""
        notes = " ".join(f"{k}={v}" for k, v in r.extra.items())
        print(f"{r.section:<8} {r.model:<10} {r.what:<34} {r.batch:>6} {r.dtype:>5} {r.seconds:8.2f} "
              f"{r.ex_s:8.1f} {r.tok_s:9.0f} {ratio:>8} {mfu:>6} {r.peak_mb:8.0f}  {notes}")


# ---------------------------------------------------------------- train

def loss_fn(logits, target, step, total, window=None):
    return xent(logits, target)


def naive_train(clf, tok, texts, target, cfg: FinetuneConfig, *, lr: float, head_lr: float, total: int,
                device: str) -> tuple[list[float], int]:
    """The reference loop: each example alone at its own length (no padding), fp32, all logits of
    the batch kept, one backward per batch. Same batches, optimiser, schedule and clipping as ours."""
    clf.train()
    micro, accum = micro_accum(cfg)
    enc = tok(texts, truncation=True, max_length=cfg.max_length, padding=False)["input_ids"]
    lengths = np.array([len(x) for x in enc])
    params, opt, sched = make_optimizer(clf, cfg, lr, head_lr, total)
    y = torch.from_numpy(np.asarray(target, dtype=np.float32))
    gen = torch.Generator().manual_seed(SEED)
    batches: list[np.ndarray] = []
    losses, tokens = [], 0
    for step in range(total):
        if not batches:
            batches = length_grouped_batches(lengths, micro, gen)
        group = [batches.pop() for _ in range(min(accum, len(batches)))]
        rows = np.concatenate(group)
        opt.zero_grad(set_to_none=True)
        logits = []
        for i in rows:
            ids = torch.tensor([enc[i]], device=device)
            logits.append(clf(ids, torch.ones_like(ids)))  # (1, K)
            tokens += ids.shape[1]
        loss = loss_fn(torch.cat(logits), y[rows].to(device), step, total)
        loss.backward()
        if cfg.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
        opt.step()
        sched.step()
        losses.append(loss.item())
    return losses, tokens


def bench_train(name, backbone, tok, pooling, texts, labels, sizes, device, dtype, peaks, rows, ratios) -> dict:
    steps, batch = sizes["train_steps"], sizes["batch"]
    n = steps * batch
    texts, target = texts[:n], np.eye(2, dtype=np.float32)[labels[:n]]
    cfg = FinetuneConfig(batch_size=batch, micro_batch_size=FinetuneConfig().micro_batch_size, max_steps=steps,
                         lr=5e-5, max_length=MAX_LENGTH)
    micro, _ = micro_accum(cfg)
    lr, head_lr = cfg.lr, max(10 * cfg.lr, 1e-3)
    torch.manual_seed(SEED)
    clf = Classifier(backbone, 2, pooling, -1).to(device)
    init = copy.deepcopy(clf.state_dict())
    flops_per_token = 6 * nonembedding_params(clf)

    def ours(dt, n_texts=n, warm=False):
        clf.load_state_dict(init)
        gen = torch.Generator().manual_seed(SEED)
        c = copy.copy(cfg)
        if warm:
            c.max_steps = 2
        run = train_steps(clf, tok, texts[:n_texts], target[:n_texts], loss_fn, c, lr=lr, head_lr=head_lr,
                          gen=gen, device=device, compute_dtype=dt, desc=f"train {name}")
        return run.losses, run.tokens

    def naive(warm=False):
        clf.load_state_dict(init)
        return naive_train(clf, tok, texts, target, cfg, lr=lr, head_lr=head_lr,
                           total=2 if warm else steps, device=device)

    # warm-up (allocator, kernels), not timed
    ours("fp32", warm=True)
    if dtype != "fp32":
        ours(dtype, warm=True)
    naive(warm=True)

    out, mems = {}, {}
    runs = [("naive", "fp32")] + [("ours", "fp32")] + ([("ours", dtype)] if dtype != "fp32" else [])
    for _ in range(sizes["rounds"]):  # interleaved rounds, best time of each: robust to load that comes and goes
        for kind, dt in runs:
            with PeakMemory(device) as mem:
                sync(device)
                t0 = time.perf_counter()
                losses, tokens = naive() if kind == "naive" else ours(dt)
                sync(device)
                secs = time.perf_counter() - t0
            if (kind, dt) not in out or secs < out[(kind, dt)][2]:
                out[(kind, dt)] = (losses, tokens, secs)
            mems[(kind, dt)] = max(mems.get((kind, dt), 0.0), mem.mb)
    for kind, dt in runs:
        losses, tokens, secs = out[(kind, dt)]
        what = "naive: 1 example at a time" if kind == "naive" else "ours: train_steps"
        bs = f"{batch}" if kind == "naive" else f"{batch}/{micro}"
        mfu = flops_per_token * tokens / secs / peaks[dt]
        rows.append(Row("train", name, what, bs, dt, secs, steps * batch, tokens, mfu, mems[(kind, dt)],
                        {"final_loss": f"{losses[-1]:.6f}"}))
        if kind == "naive":
            base_i = len(rows) - 1
        else:
            ratios[len(rows) - 1] = ("naive", rows[base_i].seconds / secs)
    l_naive, l_ours = out[("naive", "fp32")][0][-1], out[("ours", "fp32")][0][-1]
    diff = abs(l_naive - l_ours)
    rows[base_i].extra["loss_diff_vs_ours_fp32"] = f"{diff:.2e}"
    best = out[("ours", dtype)]
    return {"speedup": out[("naive", "fp32")][2] / best[2], "loss_diff": diff,
            "mfu": flops_per_token * best[1] / best[2] / peaks[dtype], "losses": (l_naive, l_ours)}


# ---------------------------------------------------------------- extraction and probe

def bench_extract(name, backbone, tok, texts, sizes, device, dtype, batch_size, peaks, rows, ratios):
    from w2sgen.models.backbone import Backbone
    from w2sgen.train.activations import extract

    backbone.eval().requires_grad_(False)
    cfg = backbone.config
    bb = Backbone(name, Path("."), "encoder", backbone, tok, cfg.num_hidden_layers, cfg.hidden_size)
    flops_per_token = 2 * nonembedding_params(backbone)
    kw = dict(layer=-1, pooling="mean", max_length=MAX_LENGTH)
    ours_texts, base_texts = texts[: sizes["extract_n"]], texts[: sizes["extract_base_n"]]
    extract(bb, ours_texts[:batch_size], batch_size=batch_size, dtype=dtype, **kw)  # warm-up
    extract(bb, base_texts[:4], batch_size=1, dtype="fp32", **kw)
    res = {}
    best: dict[str, tuple[float, float, np.ndarray]] = {}
    runs = (("batch 1", base_texts, 1, "fp32"), ("ours: extract", ours_texts, batch_size, dtype))
    for _ in range(sizes["rounds"]):  # interleaved rounds, best time of each
        for label, tx, bs, dt in runs:
            with PeakMemory(device) as mem:
                sync(device)
                t0 = time.perf_counter()
                feats = extract(bb, tx, batch_size=bs, dtype=dt, **kw)
                sync(device)
                secs = time.perf_counter() - t0
            if label not in best or secs < best[label][0]:
                best[label] = (secs, max(mem.mb, best.get(label, (0, 0))[1]), feats)
    for label, tx, bs, dt in runs:
        secs, mb, feats = best[label]
        ntok = sum(len(x) for x in tok(tx, truncation=True, max_length=MAX_LENGTH)["input_ids"])
        mfu = flops_per_token * ntok / secs / peaks[dt]
        rows.append(Row("extract", name, label, str(bs), dt, secs, len(tx), ntok, mfu, mb))
        res[label] = (secs / len(tx), mfu, feats)
    ratios[len(rows) - 1] = ("batch 1", res["batch 1"][0] / res["ours: extract"][0])
    return {"speedup": res["batch 1"][0] / res["ours: extract"][0], "mfu": res["ours: extract"][1],
            "features": res["ours: extract"][2]}


def recompute_probe(backbone, tok, texts, target, steps: int, batch: int, lr: float, device: str) -> float:
    """OpenAI's linear_probe: the backbone forward pass (fp32, batched, padded) runs every step; only
    the linear head on the detached pooled state trains. Returns seconds for ``steps`` steps."""
    from w2sgen.models.pooling import pool

    torch.manual_seed(SEED)
    head = torch.nn.Linear(backbone.config.hidden_size, target.shape[1]).to(device)
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=0.01)
    enc = tok(texts, truncation=True, max_length=MAX_LENGTH, padding=False)["input_ids"]
    y = torch.from_numpy(target)
    g = torch.Generator().manual_seed(SEED)
    n = len(texts)
    bs = max(1, min(batch, n))  # batches as train_heads cuts them (the last one may be short)
    sync(device)
    t0 = time.perf_counter()
    step = 0
    while step < steps:
        perm = torch.randperm(n, generator=g)
        for b in range(0, n, bs):
            if step == steps:
                break
            idx = perm[b : b + bs]
            enc_b = tok.pad({"input_ids": [enc[i] for i in idx]}, return_tensors="pt").to(device)
            with torch.no_grad():
                h = backbone(**enc_b).last_hidden_state
                x = pool(h, enc_b["attention_mask"], "mean")
            loss = xent(head(x), y[idx].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
    sync(device)
    return time.perf_counter() - t0


def bench_probe(name, backbone, tok, texts, labels, feats, sizes, device, rows, ratios):
    from w2sgen.train.activations import FeatureStore
    from w2sgen.train.probe import train_heads

    n = min(sizes["probe_n"], len(feats))
    texts, target = texts[:n], np.eye(2, dtype=np.float32)[labels[:n]]
    pcfg = ProbeConfig(epochs=sizes["probe_epochs"], weight_decay=[0.01], solver="adam")  # one minibatch head
    bs = max(1, min(pcfg.batch_size, n))
    steps = math.ceil(n / bs) * pcfg.epochs  # as train_heads counts them
    with tempfile.TemporaryDirectory() as d:
        store = FeatureStore(Path(d), {"model": name, "bench": True})
        store.add(texts, feats[:n])
        store = FeatureStore(Path(d), {"model": name, "bench": True})  # fresh: read back from disk

        def cached():
            x = store.get(texts)
            res = train_heads(x, target, lambda lg, t, s, tot: xent(lg, t), pcfg, seed=SEED)
            assert res.steps == steps
            return res

        cached()  # warm-up
        times = []
        with PeakMemory(device) as mem_c:
            for _ in range(sizes["probe_reps"]):
                t0 = time.perf_counter()
                cached()
                times.append(time.perf_counter() - t0)
        t_cached = statistics.median(times)
    with PeakMemory(device) as mem_r:
        t_re = min(recompute_probe(backbone, tok, texts, target, steps, pcfg.batch_size, pcfg.lr, device)
                   for _ in range(sizes["rounds"]))
    rows.append(Row("probe", name, "recompute forward every step", str(bs), "fp32", t_re,
                    n * pcfg.epochs, 0, None, mem_r.mb, {"steps": steps}))
    rows.append(Row("probe", name, "ours: train_head on cache", str(bs), "fp32", t_cached,
                    n * pcfg.epochs, 0, None, mem_c.mb,
                    {"steps": steps, "median_of": sizes["probe_reps"]}))
    ratios[len(rows) - 1] = ("recompute", t_re / t_cached)
    return {"speedup": t_re / t_cached}


# ---------------------------------------------------------------- main

def machine(device: str) -> str:
    if device.startswith("cuda"):
        return f"{torch.cuda.get_device_name()} (CUDA {torch.version.cuda})"
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"


def run(size: str = "full", device: str = "auto", dtype: str = "auto") -> dict:
    """Run the bench, print the table and the summary line; return the summary numbers."""
    from w2sgen.config import EmbedConfig
    from w2sgen.train.activations import resolve_device, resolve_dtype

    sizes = SIZES[size]
    device = resolve_device(device)
    dtype = resolve_dtype(dtype, device)
    t_start = time.perf_counter()
    n_texts = max(sizes["train_steps"] * sizes["batch"], sizes["extract_n"], sizes["probe_n"])
    texts, labels, source = load_texts(n_texts)
    minilm, tok, minilm_src = load_minilm(texts)
    minilm.to(device)
    peaks = {"fp32": matmul_peak(torch.float32, device, sizes["peak_n"]),
             "bf16": matmul_peak(torch.bfloat16, device, sizes["peak_n"])}
    rows: list[Row] = []
    ratios: dict[int, tuple[str, float]] = {}
    res = {"train": bench_train("minilm-l6", minilm, tok, "mean", texts, labels, sizes, device, dtype, peaks,
                                rows, ratios)}
    if sizes["decoder"]:
        decoder = build_decoder(tok).to(device)
        res["train_decoder"] = bench_train("gpt2-6L", decoder, tok, "last", texts, labels, sizes, device, dtype,
                                           peaks, rows, ratios)
        del decoder
    batch_size = EmbedConfig().batch_size
    res["extract"] = bench_extract("minilm-l6", minilm, tok, texts, sizes, device, dtype, batch_size, peaks,
                                   rows, ratios)
    res["probe"] = bench_probe("minilm-l6", minilm, tok, texts, labels, res["extract"]["features"], sizes,
                               device, rows, ratios)
    # a second peak measurement; the higher one counts (MFU is never flattered by a slow first try)
    for dt, tdt in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        new = matmul_peak(tdt, device, sizes["peak_n"])
        if new > peaks[dt]:
            for r in rows:
                if r.mfu is not None and r.dtype == dt:
                    r.mfu *= peaks[dt] / new
            res["extract"]["mfu"] *= peaks[dt] / new if dt == dtype else 1.0
            res["train"]["mfu"] *= peaks[dt] / new if dt == dtype else 1.0
            peaks[dt] = new
    load = " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    print(f"w2sgen speed bench ({size}): {machine(device)}; torch {torch.__version__}; device {device}; "
          f"default compute dtype {dtype}")
    print(f"data: {source}; MiniLM-L6: {minilm_src}; decoder: GPT-2 shape, 6 layers, n_embd 512, random weights")
    print(f"matmul peak: fp32 {peaks['fp32'] / 1e9:.1f} GFLOP/s, bf16 {peaks['bf16'] / 1e9:.1f} GFLOP/s; "
          f"load average {load}")
    print()
    print_table(rows, ratios)
    print()
    for key in ("train", "train_decoder"):
        if key in res:
            a, b = res[key]["losses"]
            ok = "equal" if res[key]["loss_diff"] <= 1e-3 else "NOT EQUAL"
            print(f"{key}: final loss naive {a:.6f} vs ours (fp32) {b:.6f}, |diff| {res[key]['loss_diff']:.2e} "
                  f"({ok} within 1e-3); speedup {res[key]['speedup']:.2f}x with ours in {dtype}")
    print(f"extract batch size {batch_size} ({dtype}); train batch {sizes['batch']} "
          f"(micro {micro_accum(FinetuneConfig(batch_size=sizes['batch']))[0]}); wall {time.perf_counter() - t_start:.0f} s")
    summary = {"train_speedup": res["train"]["speedup"], "extract_speedup": res["extract"]["speedup"],
               "probe_speedup": res["probe"]["speedup"], "extract_mfu": res["extract"]["mfu"],
               "train_mfu": res["train"]["mfu"]}
    print("summary: " + " ".join(f"{k}={v:.4f}" if "mfu" in k else f"{k}={v:.2f}" for k, v in summary.items()))
    summary["loss_diff"] = max(res[k]["loss_diff"] for k in ("train", "train_decoder") if k in res)
    return summary


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (~1 minute on a 2-core CPU)")
    ap.add_argument("--size", choices=sorted(SIZES), default=None, help="full (default), quick or smoke")
    ap.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda")
    ap.add_argument("--dtype", default="auto", help="our compute dtype: auto (bf16 where supported), fp32, bf16")
    args = ap.parse_args(argv)
    run(args.size or ("quick" if args.quick else "full"), args.device, args.dtype)


if __name__ == "__main__":
    main()
