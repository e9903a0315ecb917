"""``w2s cache info`` and ``w2s cache prune``: what the cache holds, and freeing it safely.

The cache (``$W2S_CACHE_DIR``, default ``~/.cache/w2sgen``) holds two kinds of entries:

* stage entries ``stages/<stage>/<key>/`` (predictions + head of one trained stage); their
  ``inputs.json`` names the features entry they were trained on;
* features entries ``features/<key>/`` (float16 activations of one model/layer/pooling/...),
  with a ``meta.json`` that a run record's ``weak``/``strong`` block repeats.

An entry's *last use* is the newest modification time of its files (a stage-cache hit touches the
entry's manifest); a features entry counts as used whenever a stage entry trained on it was.
Pruning never touches an entry used within the last hour (``grace``): another process may be
building it, or a run in progress may not have written its run.json yet. Hidden temporary
directories (``.<name>.*``) younger than that are skipped; older ones are crash leftovers and go.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import W2SError

GRACE_S = 3600.0
"""Entries (and temporary directories) used within this many seconds are never pruned."""

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_SPANS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


@dataclass
class Entry:
    """One cache entry (or leftover temporary directory)."""

    path: Path
    kind: str
    """'stage', 'features' or 'temp' (a leftover temporary directory)."""
    key: str
    size: int
    last_used: float
    group: str = ""
    """The stage name for stage entries."""
    features: str | None = None
    """For stage entries: the features key they were trained on."""
    meta: dict[str, Any] = field(default_factory=dict)
    """For features entries: their meta.json."""


def parse_size(text: str) -> int:
    """``10G``, ``500M``, ``1.5T``, ``1024`` (bytes; K/M/G/T are powers of 1024) -> bytes."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*", str(text), re.IGNORECASE)
    if not m:
        raise W2SError(f"--max-size {text!r}: expected a size such as 10G, 500M or 2T")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def parse_age(text: str) -> float:
    """``30d``, ``12h``, ``2w``, ``90m``, ``45s`` -> seconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", str(text), re.IGNORECASE)
    if not m:
        raise W2SError(f"--older-than {text!r}: expected an age such as 30d, 12h, 2w or 90m")
    return float(m.group(1)) * _SPANS[m.group(2).lower()]


def format_size(n: float) -> str:
    for unit in ("B", "K", "M", "G", "T"):
        if abs(n) < 1024 or unit == "T":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1024
    return f"{n:.1f}T"


def _walk(path: Path) -> tuple[int, float]:
    """(total bytes, newest mtime) of the files under ``path`` (the directory's own mtime included)."""
    size, newest = 0, 0.0
    try:
        newest = path.stat().st_mtime
    except OSError:
        return 0, 0.0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                st = os.stat(os.path.join(root, f))
            except OSError:
                continue
            size += st.st_size
            newest = max(newest, st.st_mtime)
    return size, newest


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def scan(root: str | Path) -> list[Entry]:
    """Every entry of the cache at ``root`` (an absent cache has none)."""
    root = Path(root)
    out: list[Entry] = []
    stages = root / "stages"
    for stage_dir in sorted(stages.iterdir()) if stages.is_dir() else []:
        if not stage_dir.is_dir():
            continue
        for d in sorted(stage_dir.iterdir()):
            if not d.is_dir():
                continue
            size, used = _walk(d)
            if d.name.startswith("."):
                out.append(Entry(d, "temp", d.name, size, used, stage_dir.name))
                continue
            inputs = _read_json(d / "inputs.json")
            feats = inputs.get("features") if isinstance(inputs, dict) else None
            out.append(Entry(d, "stage", d.name, size, used, stage_dir.name, str(feats) if feats else None))
    feats_dir = root / "features"
    for d in sorted(feats_dir.iterdir()) if feats_dir.is_dir() else []:
        if not d.is_dir():
            continue
        size, used = _walk(d)
        if d.name.startswith("."):
            out.append(Entry(d, "temp", d.name, size, used, "features"))
            continue
        meta = _read_json(d / "meta.json")
        out.append(Entry(d, "features", d.name, size, used, "features", meta=meta if isinstance(meta, dict) else {}))
    # a features entry is in use whenever a stage trained on it is
    by_key = {e.key: e for e in out if e.kind == "features"}
    for e in out:
        if e.kind == "stage" and e.features in by_key:
            f = by_key[e.features]
            f.last_used = max(f.last_used, e.last_used)
    return out


# --------------------------------------------------------------------------- results references


def referenced(results_dirs: Iterable[str | Path]) -> tuple[set[str], list[dict[str, Any]]]:
    """(stage keys, model-side blocks) named by every run.json under each results directory."""
    keys: set[str] = set()
    sides: list[dict[str, Any]] = []
    for rd in results_dirs:
        rd = Path(rd)
        if not rd.is_dir():
            raise W2SError(f"--unused-by {rd}: no such results directory")
        for f in sorted(rd.glob("*/run.json")):
            rec = _read_json(f)
            if not isinstance(rec, dict):
                raise W2SError(f"{f}: unreadable run record; fix or delete that run folder before pruning "
                               "by it (pruning would otherwise delete what it uses)")
            stages = rec.get("stages") or {}
            blocks = [stages.get("weak"), stages.get("ceiling"), *(stages.get("students") or {}).values()]
            for b in blocks:
                if isinstance(b, dict) and isinstance(b.get("key"), str):
                    keys.add(b["key"])
                if isinstance(b, dict) and isinstance(b.get("features"), str):
                    keys.add(b["features"])
            for side in ("weak", "strong"):
                if isinstance(rec.get(side), dict):
                    sides.append(rec[side])
    return keys, sides


def _features_used(e: Entry, keys: set[str], sides: list[dict[str, Any]]) -> bool:
    if e.key in keys:
        return True
    return bool(e.meta) and any(all(s.get(k) == v for k, v in e.meta.items()) for s in sides)


# --------------------------------------------------------------------------- prune


@dataclass
class PrunePlan:
    delete: list[Entry]
    keep: list[Entry]
    skipped_recent: list[Entry]
    """Entries a criterion selected but that were used within the grace period."""

    @property
    def freed(self) -> int:
        return sum(e.size for e in self.delete)


def plan_prune(root: str | Path, *, older_than: float | None = None, max_size: int | None = None,
               unused_by: Iterable[str | Path] = (), now: float | None = None,
               grace: float = GRACE_S) -> PrunePlan:
    """Decide what to delete (nothing is deleted here). Criteria combine: an entry goes if any
    selects it; ``max_size`` then removes least recently used entries until the rest fits."""
    unused_by = list(unused_by)
    if older_than is None and max_size is None and not unused_by:
        raise W2SError("cache prune: give --older-than AGE (e.g. 30d), --max-size SIZE (e.g. 10G) "
                       "or --unused-by RESULTS_DIR")
    now = time.time() if now is None else now
    entries = scan(root)
    keys, sides = referenced(unused_by) if unused_by else (set(), [])
    recent = [e for e in entries if now - e.last_used < grace]
    candidates = [e for e in entries if now - e.last_used >= grace]
    chosen: dict[Path, Entry] = {}
    for e in candidates:
        if e.kind == "temp":  # a crash leftover: an hour old and never renamed into place
            chosen[e.path] = e
        elif older_than is not None and now - e.last_used >= older_than:
            chosen[e.path] = e
        elif unused_by and e.kind == "stage" and e.key not in keys:
            chosen[e.path] = e
        elif unused_by and e.kind == "features" and not _features_used(e, keys, sides):
            chosen[e.path] = e
    selected_recent = []
    if older_than is not None or unused_by:
        for e in recent:
            if e.kind != "temp" and (
                (older_than is not None and now - e.last_used >= older_than)
                or (unused_by and e.kind == "stage" and e.key not in keys)
                or (unused_by and e.kind == "features" and not _features_used(e, keys, sides))
            ):
                selected_recent.append(e)
    if max_size is not None:
        total = sum(e.size for e in entries if e.path not in chosen)
        for e in sorted((e for e in candidates if e.path not in chosen), key=lambda e: e.last_used):
            if total <= max_size:
                break
            chosen[e.path] = e
            total -= e.size
    delete = sorted(chosen.values(), key=lambda e: str(e.path))
    keep = [e for e in entries if e.path not in chosen]
    return PrunePlan(delete, keep, selected_recent)


def delete_entries(entries: Iterable[Entry]) -> int:
    """Delete entries (each first renamed to a hidden name, so no reader sees half of one); bytes freed."""
    freed = 0
    for e in entries:
        if not e.path.exists():
            continue
        gone = e.path.with_name(f".{e.path.name.lstrip('.')}.pruning-{uuid.uuid4().hex[:8]}")
        try:
            os.replace(e.path, gone)
        except OSError as err:
            raise W2SError(f"{e.path}: cannot delete ({err.strerror}); check the cache's permissions") from None
        shutil.rmtree(gone, ignore_errors=True)
        freed += e.size
    return freed


# --------------------------------------------------------------------------- info


def info(root: str | Path) -> dict[str, Any]:
    """Location, totals per kind (stage name / features / temp), oldest and newest use, free disk."""
    root = Path(root)
    entries = scan(root)
    groups: dict[str, dict[str, Any]] = {}
    for e in entries:
        name = f"stages/{e.group}" if e.kind == "stage" else ("temp" if e.kind == "temp" else "features")
        g = groups.setdefault(name, {"entries": 0, "bytes": 0})
        g["entries"] += 1
        g["bytes"] += e.size
    probe = root
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        free = shutil.disk_usage(probe).free
    except OSError:
        free = None
    used = [e.last_used for e in entries if e.kind != "temp"]
    return {
        "location": str(root), "exists": root.is_dir(), "entries": sum(1 for e in entries if e.kind != "temp"),
        "bytes": sum(e.size for e in entries), "groups": dict(sorted(groups.items())),
        "oldest_use": min(used) if used else None, "newest_use": max(used) if used else None,
        "disk_free": free,
    }


def format_info(data: dict[str, Any]) -> str:
    def when(t: float | None) -> str:
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(t)) if t else "-"

    lines = [f"cache: {data['location']}" + ("" if data["exists"] else " (does not exist yet)"),
             f"total: {format_size(data['bytes'])} in {data['entries']} entries"]
    for name, g in data["groups"].items():
        lines.append(f"  {name:<20} {g['entries']:>6} entries  {format_size(g['bytes']):>8}")
    lines.append(f"last used: oldest {when(data['oldest_use'])}, newest {when(data['newest_use'])}")
    if data["disk_free"] is not None:
        lines.append(f"disk free: {format_size(data['disk_free'])}")
    return "\n".join(lines)
