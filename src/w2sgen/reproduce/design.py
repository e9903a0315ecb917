"""What ``w2s reproduce`` runs: the grid of a model ladder (every weak model supervising every
stronger one) as sweep RunConfigs, and the parameter counts the claims regress on.

Blocks of a reproduction:

* the ladder in the chosen mode: every pair i < j of ``ladder``, methods xent, logconf and
  early_stop (claim 5's oracle vs last), ``bootstrap`` through every intermediate rung added to the
  weakest → strongest pair (claim 6), and the smallest model's own ceiling (one self pair with
  xent) so every rung's ceiling is reported;
* in the default invocation, also the paper's main setting: the encoder pair minilm-l6 →
  mpnet-base finetuned on SST-2 (xent and logconf; early_stop's ~10 evaluations of every split
  would double its CPU time, so claim 5 is left to the probe grid there).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import RunConfig
from ..errors import W2SError

OFFLINE_LADDER = ["minilm-l6", "mpnet-base", "smollm2-135m", "gemma-3-270m"]
"""The packaged ladder, smallest first: 22.7M, 110M, 135M, 268M parameters."""
DEFAULT_TASKS = ["cities", "sst2"]
"""Tasks with a clear gap on the offline ladder (README: how they were chosen)."""
METHODS = ["xent", "logconf", "early_stop"]
FINETUNE_PAIR = ("minilm-l6", "mpnet-base")
FINETUNE_TASK = "sst2"
SEEDS = [0, 1, 2]


@dataclass
class Budget:
    """The sizes of one block (full or --quick)."""

    max_examples: int
    """Examples drawn per task (whole groups, the same subsample for every seed: pool_seed 0), so each
    model embeds at most this many texts per task whatever the seeds."""
    n_test: int
    n_val: int
    tasks: list[str] | None = None
    """Tasks (None: the block's default)."""
    seeds: list[int] | None = None


PROBE = Budget(max_examples=3000, n_test=600, n_val=200)
PROBE_QUICK = Budget(max_examples=1000, n_test=300, n_val=100, tasks=["cities", "sst2"])
FINETUNE = {"n_weak_train": 1000, "n_transfer": 1500, "n_val": 200, "n_test": 600}
FINETUNE_QUICK = {"n_weak_train": 1000, "n_transfer": 400, "n_val": 100, "n_test": 200}
"""The --quick finetune sizes (the encoder pair's, and the ladder's under ``--mode finetune --quick``):
weak_train as in the full block, since on 300 examples (10 steps) minilm-l6 predicted one class for every
test example (and minilm-l6 finetunes in ~0.5 s a step); the costly strong stages keep the small transfer set."""


@dataclass
class Block:
    """One part of a reproduction: a mode, its ladder and its runs."""

    name: str
    mode: str
    ladder: list[str]
    runs: list[RunConfig] = field(default_factory=list)
    note: str = ""
    params: dict[str, float] = field(default_factory=dict)
    """Model name -> parameter count (filled before the runs start)."""


def data_dir(task: str) -> str | None:
    """``$W2S_DATA_DIR/<task>`` (default ``../shared/data``) when it exists, else None (generated or hub)."""
    root = Path(os.environ.get("W2S_DATA_DIR") or Path.cwd().parent / "shared" / "data")
    d = root / task
    return str(d) if d.is_dir() else None


def _task_entry(task: str) -> dict[str, Any]:
    d = data_dir(task)
    return {"task": task, **({"data_dir": d} if d else {})}


def ladder_block(ladder: list[str], tasks: list[str], mode: str, seeds: list[int], out: str,
                 splits: dict[str, Any], extra: dict[str, Any] | None = None) -> Block:
    """Every pair i < j of ``ladder`` with :data:`METHODS`; bootstrap on the end pair; the smallest
    model's ceiling. ``extra``: more shared RunConfig fields (probe, finetune, embed settings)."""
    from ..sweep.grid import expand, parse_sweep

    if len(ladder) < 2:
        raise W2SError(f"--ladder {','.join(ladder)}: give at least two models, smallest first")
    if len(set(ladder)) != len(ladder):
        raise W2SError(f"--ladder {','.join(ladder)}: a model is named twice")
    base = {"tasks": [_task_entry(t) for t in tasks], "mode": mode, "seeds": seeds, "splits": splits, **(extra or {})}
    runs = expand(parse_sweep({**base, "models": ladder, "exclude_self": True, "methods": METHODS},
                              "w2s reproduce"), out=out)
    if len(ladder) >= 3:
        for cfg in runs:
            if (cfg.weak, cfg.strong) == (ladder[0], ladder[-1]):
                cfg.methods = [*cfg.methods, "bootstrap"]
                cfg.method_args = {**cfg.method_args, "bootstrap": {"models": ladder[1:-1]}}
    runs += expand(parse_sweep({**base, "pairs": [[ladder[0], ladder[0]]], "methods": ["xent"]},
                               "w2s reproduce"), out=out)
    return Block(f"{mode} ladder", mode, list(ladder), runs)


def blocks(ladder: list[str] | None, tasks: list[str] | None, mode: str | None, seeds: list[int] | None,
           quick: bool, out: str, overrides: list[str] | None = None) -> list[Block]:
    """The blocks of ``w2s reproduce`` for its arguments (None: the default); ``overrides``
    (``--set KEY=VALUE``) apply to every run of every block."""
    default = ladder is None and mode is None
    mode = mode or "probe"
    ladder = list(ladder or OFFLINE_LADDER)
    seeds = list(seeds or SEEDS)
    if mode == "probe":
        b = PROBE_QUICK if quick else PROBE
        splits = {"max_examples": b.max_examples, "pool_seed": 0, "n_test": b.n_test, "n_val": b.n_val}
        tasks = list(tasks or b.tasks or DEFAULT_TASKS)
        out_blocks = [ladder_block(ladder, tasks, mode, seeds, out, splits)]
    else:
        sizes = FINETUNE_QUICK if quick else FINETUNE
        tasks = list(tasks or ([FINETUNE_TASK] if quick else DEFAULT_TASKS))
        out_blocks = [ladder_block(ladder, tasks, mode, seeds, out, dict(sizes))]
    if default:
        out_blocks.append(finetune_pair(seeds[:1] if quick else seeds, quick, out))
    if overrides:
        from ..config import apply_overrides

        for b in out_blocks:
            b.runs = [apply_overrides(cfg, list(overrides)).validate() for cfg in b.runs]
    return out_blocks


def finetune_pair(seeds: list[int], quick: bool, out: str) -> Block:
    """minilm-l6 → mpnet-base finetuned on SST-2, xent and logconf (the paper's main setting)."""
    from ..sweep.grid import expand, parse_sweep

    sizes = FINETUNE_QUICK if quick else FINETUNE
    spec = parse_sweep({"tasks": [_task_entry(FINETUNE_TASK)], "pairs": [list(FINETUNE_PAIR)],
                        "methods": ["xent", "logconf"], "mode": "finetune", "seeds": seeds, "splits": dict(sizes)},
                       "w2s reproduce")
    sz = "/".join(f"{v:,}" for v in sizes.values())
    return Block("finetune encoder pair", "finetune", list(FINETUNE_PAIR), expand(spec, out=out),
                 note=f"{FINETUNE_PAIR[0]} -> {FINETUNE_PAIR[1]} finetuned on {FINETUNE_TASK}, {len(seeds)} seed(s), "
                      f"weak_train/transfer/val/test {sz}; xent and logconf only (early_stop's evaluations "
                      "would double the CPU time)")


# --------------------------------------------------------------------------- parameter counts

_SIZE = re.compile(r"^\s*([0-9.]+)\s*([KMB])\s*$", re.I)


def parse_params(text: str) -> float | None:
    """'22.7M' -> 2.27e7, '1.5B' -> 1.5e9; None when unparseable."""
    m = _SIZE.match(text or "")
    if not m:
        return None
    return float(m.group(1)) * {"K": 1e3, "M": 1e6, "B": 1e9}[m.group(2).upper()]


def safetensors_params(path: Path) -> int:
    """Parameters of the model in directory ``path``, from its safetensors headers (nothing loaded)."""
    import json
    import struct

    total = 0
    files = sorted(path.glob("*.safetensors"))
    if not files:
        raise W2SError(f"model directory {path}: no *.safetensors file to count parameters from; "
                       "re-save the model with save_pretrained(safe_serialization=True)")
    for f in files:
        with f.open("rb") as fh:
            n = struct.unpack("<Q", fh.read(8))[0]
            header = json.loads(fh.read(n))
        total += sum(math.prod(v["shape"]) for k, v in header.items() if k != "__metadata__")
    return total


def param_count(name: str) -> float:
    """A model's parameter count: the registry's ``params`` for a short name, else counted from its
    safetensors files (local directories and hub ids, fetched as any run would)."""
    from ..models import MODELS, resolve_model

    if name in MODELS:
        n = parse_params(MODELS.get(name).params)
        if n is not None:
            return n
    from ..models.backbone import local_dir

    return float(safetensors_params(local_dir(resolve_model(name))))
