"""The activation cache: pooled hidden states per text, stored once, reused by every split and seed.

Layout: ``CACHE/features/<key>/`` with ``meta.json`` and shards ``<uuid>.npy`` (float16, (N, C),
memory-mappable) + ``<uuid>.keys.json`` (the sha1 of each row's text). ``key`` hashes (model
fingerprint, layer, pooling, max length, compute dtype), never splits or seeds, so a new seed or
split embeds nothing that was embedded before. Shards are written to a temporary name and
renamed; the keys file is renamed last, so a shard without keys is never read.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from ..store.atomic import atomic_write_bytes, atomic_write_json

log = logging.getLogger("w2sgen")


def text_key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


class FeatureStore:
    """Float16 features of one (model, layer, pooling, max_length, dtype), keyed by text hash."""

    def __init__(self, root: Path, meta: dict[str, Any]):
        self.meta = meta
        key = hashlib.sha256(json.dumps(meta, sort_keys=True).encode()).hexdigest()[:20]
        self.dir = Path(root) / "features" / key
        self.dir.mkdir(parents=True, exist_ok=True)
        if not (self.dir / "meta.json").exists():
            atomic_write_json(self.dir / "meta.json", meta)
        self.key = key
        self._index: dict[str, tuple[str, int]] | None = None
        self._arrays: dict[str, np.ndarray] = {}

    def _load_index(self) -> dict[str, tuple[str, int]]:
        index: dict[str, tuple[str, int]] = {}
        for kf in sorted(self.dir.glob("*.keys.json")):
            shard = kf.name[: -len(".keys.json")]
            try:
                keys = json.loads(kf.read_text())
                arr = np.load(self.dir / f"{shard}.npy", mmap_mode="r")
            except (OSError, ValueError) as e:
                log.warning("feature shard %s is unreadable (%s); ignoring it", kf, e)
                continue
            if arr.shape[0] != len(keys):
                log.warning("feature shard %s has %d rows for %d keys; ignoring it", kf, arr.shape[0], len(keys))
                continue
            self._arrays[shard] = arr
            for i, k in enumerate(keys):
                index.setdefault(k, (shard, i))
        return index

    @property
    def index(self) -> dict[str, tuple[str, int]]:
        if self._index is None:
            self._index = self._load_index()
        return self._index

    def missing(self, texts: list[str]) -> list[str]:
        """Distinct texts not in the store yet (in first-seen order)."""
        seen: set[str] = set()
        out = []
        for t in texts:
            k = text_key(t)
            if k not in self.index and k not in seen:
                seen.add(k)
                out.append(t)
        return out

    def add(self, texts: list[str], feats: np.ndarray) -> None:
        """Append one shard (atomic: data first, then its keys)."""
        assert feats.shape[0] == len(texts)
        shard = uuid.uuid4().hex
        arr = np.ascontiguousarray(feats.astype(np.float16))
        import io

        buf = io.BytesIO()
        np.save(buf, arr)
        atomic_write_bytes(self.dir / f"{shard}.npy", buf.getvalue())
        keys = [text_key(t) for t in texts]
        atomic_write_json(self.dir / f"{shard}.keys.json", keys)
        self._arrays[shard] = np.load(self.dir / f"{shard}.npy", mmap_mode="r")
        for i, k in enumerate(keys):
            self.index.setdefault(k, (shard, i))

    def get(self, texts: list[str]) -> np.ndarray:
        """(N, C) float32 features for ``texts`` (all must be stored)."""
        locs = [self.index[text_key(t)] for t in texts]
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        by_shard: dict[str, list[tuple[int, int]]] = {}
        for i, (shard, row) in enumerate(locs):
            by_shard.setdefault(shard, []).append((i, row))
        for shard, pairs in by_shard.items():
            dst, src = map(np.asarray, zip(*pairs))
            out[dst] = self._arrays[shard][src]
        return out

    @property
    def dim(self) -> int:
        return int(next(iter(self._arrays.values())).shape[1]) if self._arrays else 0


def resolve_dtype(dtype: str, device: str, width: int | None = None) -> str:
    """auto -> bf16 where a probe measured bf16 matmuls of the model's width ≥ 1.2× faster than fp32
    on this device (:mod:`w2sgen.train.dtype_probe`, cached per device model), else fp32; an explicit
    fp32 or bf16 is kept."""
    if dtype != "auto":
        if dtype not in ("fp32", "bf16"):
            from ..errors import W2SError

            raise W2SError(f"config field 'embed.dtype': {dtype!r}; use auto, fp32 or bf16")
        return dtype
    from .dtype_probe import auto_dtype

    return auto_dtype(device, width)


def cpu_has_bf16() -> bool:
    """Whether the CPU lists native bf16 instructions (which does not make bf16 faster: see resolve_dtype)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def extract(backbone, texts: list[str], *, layer: int, pooling: str, max_length: int,
            batch_size: int, dtype: str, desc: str = "embed") -> np.ndarray:
    """Pooled hidden states (N, C) float32 of ``layer`` for ``texts``.

    Texts are tokenized once, sorted by length and batched with dynamic padding, so a batch
    pads only to its own longest text; forward passes run under ``torch.inference_mode`` and,
    for bf16, autocast, and stop at ``layer`` (:mod:`w2sgen.models.truncate`).
    """
    import torch

    from ..log import progress
    from ..models.pooling import pool
    from ..models.truncate import blocks_path, layer_hidden, stop_block

    tok = backbone.tokenizer
    model = backbone.model
    stop = stop_block(model, layer)  # the blocks above the probed layer are not run
    path = blocks_path(model) if stop is not None else None
    device = next(model.parameters()).device
    enc = tok(texts, truncation=True, max_length=max_length, padding=False)
    ids = enc["input_ids"]
    order = np.argsort([len(x) for x in ids], kind="stable")[::-1]  # longest first: OOM shows early
    out = np.empty((len(texts), backbone.hidden_size), dtype=np.float32)
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=dtype == "bf16"), \
            progress(total=len(texts), desc=desc, unit="text") as bar:
        for start in range(0, len(texts), batch_size):
            rows = order[start : start + batch_size]
            batch = tok.pad({"input_ids": [ids[i] for i in rows]}, return_tensors="pt")
            batch = {k: v.to(device) for k, v in batch.items()}
            hidden = layer_hidden(model, layer, stop, path, **batch)  # (B, T, C)
            out[rows] = pool(hidden.float(), batch["attention_mask"], pooling).cpu().numpy()
            bar.update(len(rows))
    if not np.isfinite(out).all():
        from ..errors import W2SError

        raise W2SError(f"model {backbone.name!r} produced non-finite activations; try --set embed.dtype=fp32")
    return out


def cached_features(store: FeatureStore, texts: list[str], load_backbone, **extract_kw) -> np.ndarray:
    """Features for ``texts``, embedding only those the store lacks (``load_backbone`` is called lazily)."""
    todo = store.missing(texts)
    if todo:
        backbone = load_backbone()
        store.add(todo, extract(backbone, todo, **extract_kw))
    else:
        log.info("features: all %d texts cached (%s)", len(set(texts)), store.key)
    return store.get(texts)

