"""Multi-process helpers for ``accelerate launch`` / ``torchrun``: rank checks, barriers, exact sharding.

A process group exists when ``torch.distributed`` is initialised or the launcher set
``WORLD_SIZE`` > 1 (then :func:`ensure_process_group` initialises it through accelerate's
``PartialState``: gloo on CPU, NCCL on GPUs). Single-process runs never create one.

Sharding is explicit and exact: every rank builds the same global micro-batches (same seed),
and rank ``r`` of ``P`` takes rows ``r, r + P, ...`` of each. Their union is the global
micro-batch, with no example twice and none dropped, also for uneven last batches.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch


def world_size() -> int:
    """Processes of this job (1 when not launched as several)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_world_size()
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    """This process's global rank (0 when single-process)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank()
    return int(os.environ.get("RANK", "0"))


def is_distributed() -> bool:
    """True under a multi-process launch (``torch.distributed`` initialised or WORLD_SIZE > 1)."""
    return world_size() > 1


def is_main_process() -> bool:
    """True on rank 0, and in every single-process run: the only process that writes files."""
    return rank() == 0


def ensure_process_group() -> None:
    """Initialise the process group from the launcher's environment (no-op when single-process)."""
    if is_distributed() and not torch.distributed.is_initialized():
        from accelerate import PartialState

        # cpu=True where there is no GPU: without it accelerate 1.x joins the group but reports one process
        PartialState(cpu=not torch.cuda.is_available())


def shutdown() -> None:
    """Leave the process group cleanly: every rank meets, then the group is destroyed (else a rank
    may abort at exit while the backend's threads still run). No-op without a group."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        try:
            dist.barrier()
        finally:
            dist.destroy_process_group()


def barrier() -> None:
    """Wait for every process (no-op when single-process)."""
    if is_distributed():
        ensure_process_group()
        torch.distributed.barrier()


def broadcast_from_main(value: Any) -> Any:
    """Rank 0's ``value`` (a picklable object) on every rank; ``value`` itself when single-process."""
    if not is_distributed():
        return value
    ensure_process_group()
    box = [value if is_main_process() else None]
    torch.distributed.broadcast_object_list(box, src=0)
    return box[0]


def shard(rows: np.ndarray, r: int, p: int) -> np.ndarray:
    """Rank ``r``'s part of ``rows`` among ``p`` processes (strided; possibly empty)."""
    return rows[r::p]


def gather_shards(local: torch.Tensor, sizes: list[int], device: torch.device | str) -> torch.Tensor:
    """Every rank's ``local`` (sizes[r], ...) rows, concatenated in rank order -> (sum(sizes), ...).

    Pads each to max(sizes) rows for ``all_gather`` and trims back with the true counts, so no
    row is duplicated or invented.
    """
    p = len(sizes)
    m = max(max(sizes), 1)
    pad = torch.zeros((m, *local.shape[1:]), dtype=local.dtype, device=device)
    pad[: local.shape[0]] = local.to(device)
    parts = [torch.empty_like(pad) for _ in range(p)]
    torch.distributed.all_gather(parts, pad)
    return torch.cat([parts[r][: sizes[r]] for r in range(p)])


def unshard(gathered: torch.Tensor, rows_len: int, p: int) -> torch.Tensor:
    """Undo :func:`shard` + :func:`gather_shards`: rows back in their original order (rows_len, ...)."""
    out = torch.empty((rows_len, *gathered.shape[1:]), dtype=gathered.dtype, device=gathered.device)
    start = 0
    for r in range(p):
        idx = torch.arange(r, rows_len, p, device=gathered.device)
        out[idx] = gathered[start : start + len(idx)]
        start += len(idx)
    return out


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum of ``t`` over ranks (in place; returned); ``t`` when single-process."""
    if is_distributed():
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.SUM)
    return t


def get_or_build_shared(cache, stage: str, inputs: dict[str, Any], build: Callable[[Path], None],
                        participate: Callable[[], Any], cleanup: Path | None = None) -> tuple[Path, bool]:
    """``cache.get_or_build`` where only rank 0 writes: (entry dir, hit?) on every rank.

    Rank 0 decides hit or miss (under the entry's lock) and tells the others; on a miss it runs
    ``build`` (whose training is collective) while every other rank runs ``participate()`` (the
    same training, its result discarded); then all wait and read rank 0's entry. ``cleanup`` (the
    stage's checkpoint directory) is deleted by rank 0 once the entry exists.
    """
    from ..errors import W2SError
    from ..store.cache import stage_key

    if not is_distributed():
        entry, hit = cache.get_or_build(stage, inputs, build)
    else:
        key = stage_key(inputs)
        if is_main_process():
            found = cache.get(stage, key)
            if found is not None:
                broadcast_from_main(True)
                entry, hit = found, True
            else:
                with cache.lock(stage, key):  # another job may be building it: wait, then decide
                    found = cache.get(stage, key)
                    broadcast_from_main(found is not None)
                    entry, hit = (found, True) if found is not None else (cache.put(stage, key, inputs, build), False)
        else:
            hit = bool(broadcast_from_main(None))
            if not hit:
                participate()
        barrier()
        if not is_main_process():
            found = cache.get(stage, key)
            if found is None:
                raise W2SError(f"rank {rank()}: stage {stage} entry {key} is missing after rank 0 built it; "
                               "every process needs the same cache directory (a shared file system)")
            entry = found
    if cleanup is not None and is_main_process():
        shutil.rmtree(cleanup, ignore_errors=True)
    return entry, hit
