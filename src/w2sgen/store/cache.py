"""The stage cache: each stage's output under a key made from everything it depends on.

``CACHE/stages/<stage>/<key>/`` holds the stage's files and a ``manifest.json`` (sha256 of each
file) written last. An entry is built in a temporary sibling directory and renamed into place,
so a crash leaves no entry that a later run would trust; an entry whose files do not match its
manifest is treated as absent and rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .atomic import atomic_write_json

log = logging.getLogger("w2sgen")
MANIFEST = "manifest.json"


def default_cache_dir() -> Path:
    return Path(os.environ.get("W2S_CACHE_DIR") or Path.home() / ".cache" / "w2sgen")


def stage_key(inputs: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of a stage's inputs (first 24 hex digits)."""
    blob = json.dumps(inputs, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class StageCache:
    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root else default_cache_dir()

    def path(self, stage: str, key: str) -> Path:
        return self.root / "stages" / stage / key

    def get(self, stage: str, key: str) -> Path | None:
        """The entry's directory if it exists and matches its manifest, else None."""
        d = self.path(stage, key)
        m = d / MANIFEST
        if not m.is_file():
            return None
        try:
            manifest = json.loads(m.read_text())
            ok = all(_sha256(d / name) == digest for name, digest in manifest["files"].items())
        except (OSError, ValueError, KeyError):
            ok = False
        if not ok:
            log.warning("cache entry %s is damaged; rebuilding it", d)
            return None
        try:  # mark the entry as used (w2s cache prune --older-than goes by last use)
            os.utime(m)
        except OSError:
            pass
        return d

    def put(self, stage: str, key: str, inputs: dict[str, Any], write: Callable[[Path], None]) -> Path:
        """Build an entry with ``write(tmpdir)`` and move it into place atomically.

        A failed write (full disk, unwritable cache) raises a W2SError and leaves no entry and no
        temporary directory; so does an interrupt.
        """
        from ..safety import writing

        with writing("cache directory", self.root):
            return self._put(stage, key, inputs, write)

    def _put(self, stage: str, key: str, inputs: dict[str, Any], write: Callable[[Path], None]) -> Path:
        final = self.path(stage, key)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{key}."))
        try:
            write(tmp)
            files = {p.name: _sha256(p) for p in sorted(tmp.iterdir()) if p.is_file()}
            atomic_write_json(tmp / "inputs.json", inputs)
            files["inputs.json"] = _sha256(tmp / "inputs.json")
            atomic_write_json(tmp / MANIFEST, {"stage": stage, "key": key, "files": files})
            if final.exists():  # damaged or concurrent: replace
                shutil.rmtree(final, ignore_errors=True)
            try:
                os.replace(tmp, final)
            except OSError:
                if self.get(stage, key) is None:
                    raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return final

    def get_or_build(self, stage: str, inputs: dict[str, Any], build: Callable[[Path], None]) -> tuple[Path, bool]:
        """(entry dir, hit?) — builds on a miss."""
        from ..safety import check_interrupt

        check_interrupt(f"before stage {stage}")
        key = stage_key(inputs)
        hit = self.get(stage, key)
        if hit is not None:
            return hit, True
        with self.lock(stage, key):  # another process may be building it: wait, then read its entry
            hit = self.get(stage, key)
            if hit is not None:
                return hit, True
            return self.put(stage, key, inputs, build), False

    def lock_path(self, stage: str, key: str) -> Path:
        """The lock file of an entry: outside ``stages/``, so a stage folder holds only entries.
        It holds the JSON ``{"stage", "key", "pid"}`` of its last holder, and is never deleted
        (deleting one while another process waits on it would let a third take a second lock)."""
        return self.root / "locks" / stage / f"{key}.lock.json"

    @contextmanager
    def lock(self, stage: str, key: str) -> Iterator[None]:
        """An exclusive lock on one entry (``fcntl.flock`` on ``CACHE/locks/<stage>/<key>.lock.json``).

        Two processes never build the same entry twice: the second waits for the first. The kernel
        drops the lock when its holder dies (even by SIGKILL), so a crash never leaves it held.
        Where flock is unavailable (Windows) this is a no-op and concurrent builds stay safe, only
        duplicated.
        """
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX
            yield
            return
        from ..safety import writing

        path = self.lock_path(stage, key)
        with writing("cache directory", self.root):
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            with writing("cache directory", self.root):
                os.ftruncate(fd, 0)
                os.write(fd, json.dumps({"stage": stage, "key": key, "pid": os.getpid()}).encode())
            yield
        finally:
            os.close(fd)  # closing releases the lock
