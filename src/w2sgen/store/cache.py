"""The stage cache: each stage's output under a key made from everything it depends on.

``CACHE/stages/<stage>/<key>/`` holds the stage's files and a ``manifest.json`` (sha256 of each
file) written last. An entry is built in a temporary sibling directory and renamed into place,
so a crash leaves no entry that a later run would trust; an entry whose files do not match its
manifest is treated as absent and rebuilt.

The cache root may also be an fsspec URL (``s3://bucket/w2s``, ``gs://...``, ``memory://...``;
``file://PATH`` is just the local PATH): ``root`` is then a local working copy and entries are
mirrored to and from the remote store (see :mod:`w2sgen.store.remote`).
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


def default_cache_location() -> str:
    """``$W2S_CACHE_DIR`` as given (a directory or an fsspec URL), else ``~/.cache/w2sgen``."""
    return os.environ.get("W2S_CACHE_DIR") or str(Path.home() / ".cache" / "w2sgen")


def local_cache_dir(root: str | Path | None = None) -> Path:
    """The local directory of a cache root: the directory itself, the path of a ``file://`` URL, or
    the local working copy of a remote URL (see :func:`w2sgen.store.remote.local_dir_for`)."""
    from .remote import file_url_path, is_remote, local_dir_for

    loc = default_cache_location() if root is None or root == "" else root
    if isinstance(loc, Path):
        return loc
    if is_remote(loc):
        return local_dir_for(loc)
    return Path(file_url_path(loc))


def default_cache_dir() -> Path:
    """The local directory of the default cache (the working copy when W2S_CACHE_DIR is a URL)."""
    return local_cache_dir(None)


def stage_key(inputs: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of a stage's inputs (first 24 hex digits)."""
    blob = json.dumps(inputs, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes (read in 1 MiB chunks)."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class StageCache:
    """Stage entries under ``root`` (always a local directory), mirrored to ``remote`` when the
    cache was given as a remote fsspec URL.

    ``StageCache("s3://bucket/w2s")`` keeps its entries in ``root`` = ``$W2S_LOCAL_CACHE`` (default
    ``~/.cache/w2sgen/remote/<sha of url>``; ``local`` overrides both) and the remote: a local miss
    downloads a complete remote entry (verified against its manifest), a local build is uploaded
    (manifest last). An fsspec protocol that is not installed fails here, before any training.
    """

    def __init__(self, root: str | Path | None = None, *, local: str | Path | None = None):
        from .remote import RemoteStore, is_remote

        loc = default_cache_location() if root is None or root == "" else root
        self.remote: str | None = None
        """The remote fsspec URL, or None for a plain local cache."""
        self._store: RemoteStore | None = None
        if is_remote(loc):
            self._store = RemoteStore(str(loc))
            self.remote = self._store.url
            self.root = Path(local).expanduser() if local else local_cache_dir(loc)
        else:
            self.root = local_cache_dir(loc)

    @property
    def location(self) -> str:
        """What to give another StageCache (e.g. a sweep worker's) to open this same cache."""
        return self.remote or str(self.root)

    def path(self, stage: str, key: str) -> Path:
        return self.root / "stages" / stage / key

    def get(self, stage: str, key: str) -> Path | None:
        """The entry's directory if it exists and matches its manifest, else None.

        With a remote, a local miss downloads the remote entry if it is complete and verified.
        """
        hit = self._get_local(stage, key)
        if hit is None and self._store is not None:
            hit = self._fetch(stage, key, replace_damaged=False)
        return hit

    def _get_local(self, stage: str, key: str) -> Path | None:
        d = self.path(stage, key)
        m = d / MANIFEST
        if not m.is_file():
            return None
        try:
            manifest = json.loads(m.read_text())
            ok = all(sha256_file(d / name) == digest for name, digest in manifest["files"].items())
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
        from .. import reads

        final = self.path(stage, key)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{key}."))
        try:
            # the build reads the config only through its key's covers (reads.py); every open stage
            # (e.g. the student whose pipeline trains this entry) is checked before anything is committed
            with reads.scope(f"{stage}/{key}", getattr(inputs, "covers", ())):
                write(tmp)
            reads.verify_open()
            files = {p.name: sha256_file(p) for p in sorted(tmp.iterdir()) if p.is_file()}
            atomic_write_json(tmp / "inputs.json", inputs)
            files["inputs.json"] = sha256_file(tmp / "inputs.json")
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
        hit = self._get_local(stage, key)
        if hit is not None:
            if self._store is not None and self.upload_marker(stage, key).exists():
                with self.lock(stage, key):  # a previous upload failed or was interrupted: retry it
                    if self.upload_marker(stage, key).exists():
                        self._upload(stage, key)
            return hit, True
        with self.lock(stage, key):  # another process may be building it: wait, then read its entry
            hit = self._get_local(stage, key)
            if hit is None and self._store is not None:
                hit = self._fetch(stage, key, replace_damaged=True)
            if hit is not None:
                return hit, True
            if self._store is not None:  # marked before the entry exists: a crash after the build retries
                from ..safety import writing

                with writing("cache directory", self.root):
                    marker = self.upload_marker(stage, key)
                    marker.parent.mkdir(parents=True, exist_ok=True)
                    marker.touch()
            try:
                path = self.put(stage, key, inputs, build)
            except BaseException:
                if self._store is not None:
                    self.upload_marker(stage, key).unlink(missing_ok=True)
                raise
            if self._store is not None:
                self._upload(stage, key)
            return path, False

    # ------------------------------------------------------------------ remote mirror

    def upload_marker(self, stage: str, key: str) -> Path:
        """``CACHE/uploads/<stage>/<key>.pending``: present while an entry built here is not yet
        uploaded to the remote (outside ``stages/``, like the locks); a later hit retries the upload."""
        return self.root / "uploads" / stage / f"{key}.pending"

    def _fetch(self, stage: str, key: str, replace_damaged: bool) -> Path | None:
        """Download a complete remote entry into place; None when the remote has none (or a damaged
        one, or cannot be reached: then the stage is built here)."""
        from .remote import fetch_into

        assert self._store is not None
        try:
            hit = fetch_into(self._store, stage, key, self.path(stage, key), replace_damaged, self._get_local)
        except Exception as e:  # noqa: BLE001 - any backend error (network, credentials) means "build here"
            log.warning("cannot download cache entry %s (%s: %s); building it here",
                        self._store.entry_url(stage, key), type(e).__name__, e)
            return None
        if hit is not None:
            log.info("cache entry %s downloaded from %s", key, self.remote)
        return hit

    def _upload(self, stage: str, key: str) -> bool:
        """Upload a local entry (files first, manifest last) and clear its upload marker. A failure
        is a warning, not an error: the entry is valid here, and the next hit retries the upload."""
        assert self._store is not None
        try:
            self._store.upload(stage, key, self.path(stage, key))
        except Exception as e:  # noqa: BLE001 - any backend error (network, credentials, quota)
            log.warning("cannot upload cache entry %s (%s: %s); other nodes will rebuild it, and the next "
                        "run here retries the upload", self._store.entry_url(stage, key), type(e).__name__, e)
            return False
        self.upload_marker(stage, key).unlink(missing_ok=True)
        return True

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
