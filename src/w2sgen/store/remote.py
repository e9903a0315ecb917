"""A stage cache on a remote fsspec store (``s3://``, ``gs://``, ``memory://``, ...), mirrored locally.

When the cache root (``W2S_CACHE_DIR`` / ``--cache-dir``) is a URL, :class:`~.cache.StageCache`
keeps a local working copy (``$W2S_LOCAL_CACHE``, default ``~/.cache/w2sgen/remote/<sha of url>``)
and this module mirrors stage entries between it and the remote store:

* **download**: a remote entry counts only if its ``manifest.json`` exists. Its files are
  downloaded into a hidden temporary directory next to the local entry, each is checked against
  the manifest's sha256, the manifest is written last, and the directory is renamed into place.
  A file that does not match means a damaged (or half-overwritten) remote entry: it is ignored,
  and the stage is rebuilt locally and uploaded again, which repairs the remote entry.
* **upload**: after a stage is built locally, any old remote manifest is deleted, the files are
  uploaded, and the manifest goes last. Object stores have no atomic rename; the manifest-last
  rule is what makes a half-finished upload (a killed node, a network error) invisible.

Locking: the local flock (``CACHE/locks``) still serialises processes of one node, but nothing
locks across nodes. Two nodes may occasionally build the same stage at the same time; both
upload it and the last writer wins. That is harmless: the key determines the content (up to
floating-point nondeterminism), and a reader verifies every file against the manifest it reads,
so it never uses a mix of the two uploads.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import posixpath
import shutil
import tempfile
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Any

from ..errors import W2SError

log = logging.getLogger("w2sgen")
MANIFEST = "manifest.json"

PACKAGES = {
    "s3": "s3fs", "s3a": "s3fs", "gs": "gcsfs", "gcs": "gcsfs", "abfs": "adlfs", "abfss": "adlfs",
    "az": "adlfs", "adl": "adlfs", "oci": "ocifs", "hf": "huggingface_hub", "sftp": "paramiko",
    "ssh": "paramiko", "webdav": "webdav4", "dropbox": "dropboxdrivefs", "oss": "ossfs",
    "http": "aiohttp", "https": "aiohttp", "hdfs": "pyarrow", "webhdfs": "requests",
}
"""The package that provides each common fsspec protocol (for the "pip install ..." hint)."""


def is_remote(root: str | os.PathLike[str] | None) -> bool:
    """Whether a cache root is a remote fsspec URL (``://`` in it, other than ``file://``)."""
    return isinstance(root, str) and "://" in root and not root.startswith("file://")


def file_url_path(root: str) -> str:
    """``file:///a/b`` -> ``/a/b`` (``file://localhost/a/b`` too); other strings unchanged."""
    if not root.startswith("file://"):
        return root
    rest = root[len("file://"):]
    if rest.startswith("localhost/"):
        rest = rest[len("localhost"):]
    return rest


def local_dir_for(url: str) -> Path:
    """The local working copy of a remote cache: ``$W2S_LOCAL_CACHE``, else
    ``~/.cache/w2sgen/remote/<first 16 hex digits of sha256(url)>``."""
    env = os.environ.get("W2S_LOCAL_CACHE")
    if env:
        return Path(env).expanduser()
    digest = hashlib.sha256(url.rstrip("/").encode()).hexdigest()[:16]
    return Path.home() / ".cache" / "w2sgen" / "remote" / digest


def open_filesystem(url: str) -> tuple[Any, str]:
    """``(fsspec filesystem, path inside it)`` for ``url``; a W2SError naming the URL and the
    package to install when its protocol is unknown or not installed."""
    try:
        import fsspec.core
    except ImportError:  # pragma: no cover - fsspec comes with datasets and torch
        raise W2SError(f"cache {url}: remote caches need fsspec: pip install fsspec") from None
    protocol = url.split("://", 1)[0].split("::")[-1].lower()
    try:
        fs, path = fsspec.core.url_to_fs(url)
    except ImportError as e:
        # a chained URL (simplecache::s3://...) names its inner protocol last
        inner = [p.split("://", 1)[0].lower() for p in url.split("::")]
        missing = next((PACKAGES[p] for p in reversed(inner) if p in PACKAGES), None)
        hint = f"pip install {missing}" if missing else f"install the fsspec backend it names ({e})"
        raise W2SError(f"cache {url}: the {protocol!r} filesystem is not installed; {hint}") from None
    except ValueError as e:
        raise W2SError(f"cache {url}: unknown filesystem protocol {protocol!r} ({e}); use a local "
                       "directory or an fsspec URL such as s3://bucket/path or gs://bucket/path") from None
    return fs, path.rstrip("/")


def _safe_name(name: Any) -> bool:
    """A manifest file name must be a plain name: never a path out of the entry."""
    return isinstance(name, str) and name not in ("", ".", "..") and "/" not in name and "\\" not in name


class Fetch(Enum):
    """What :meth:`RemoteStore.download` found."""

    MISSING = "missing"
    """No manifest: no entry, or one whose upload has not finished."""
    DAMAGED = "damaged"
    """A manifest whose files are absent or do not match it."""
    OK = "ok"


class RemoteStore:
    """The stage entries of a cache on an fsspec store: ``<url>/stages/<stage>/<key>/``, laid out
    as in a local cache (the files plus ``manifest.json``)."""

    def __init__(self, url: str):
        stripped = url.rstrip("/")
        self.url = stripped if "://" in stripped else url  # keep "memory://" whole
        self.fs, self.base = open_filesystem(self.url)

    def entry(self, stage: str, key: str) -> str:
        """The entry's path inside the filesystem (no protocol)."""
        return posixpath.join(self.base, "stages", stage, key)

    def entry_url(self, stage: str, key: str) -> str:
        return f"{self.url}/stages/{stage}/{key}"

    def has(self, stage: str, key: str) -> bool:
        """Whether the remote holds a complete entry (its manifest exists; files are not checked)."""
        return bool(self.fs.exists(posixpath.join(self.entry(stage, key), MANIFEST)))

    def download(self, stage: str, key: str, dest: Path) -> Fetch:
        """Download the entry into the (empty) directory ``dest``, verifying each file's sha256
        against the remote manifest, which is written last. On DAMAGED or MISSING ``dest`` may hold
        part of the files: the caller deletes it."""
        from .cache import sha256_file

        remote = self.entry(stage, key)
        try:
            raw = self.fs.cat_file(posixpath.join(remote, MANIFEST))
        except FileNotFoundError:
            return Fetch.MISSING
        try:
            manifest = json.loads(raw)
            files = manifest["files"]
            if not isinstance(files, dict) or not all(_safe_name(n) and isinstance(d, str) for n, d in files.items()):
                raise ValueError("bad file list")
        except (ValueError, KeyError, TypeError):
            log.warning("remote cache entry %s has an unreadable manifest; rebuilding it", self.entry_url(stage, key))
            return Fetch.DAMAGED
        for name, digest in files.items():
            target = dest / name
            try:
                self.fs.get_file(posixpath.join(remote, name), str(target))
            except FileNotFoundError:
                log.warning("remote cache entry %s lacks %s; rebuilding it", self.entry_url(stage, key), name)
                return Fetch.DAMAGED
            if sha256_file(target) != digest:
                log.warning("remote cache entry %s: %s does not match its manifest (damaged, or overwritten "
                            "by another node); rebuilding it", self.entry_url(stage, key), name)
                return Fetch.DAMAGED
        (dest / MANIFEST).write_bytes(raw)
        return Fetch.OK

    def upload(self, stage: str, key: str, local: Path) -> None:
        """Upload a complete local entry: delete any old remote manifest, upload the files the local
        manifest lists, then the manifest last (so no reader trusts a half-finished upload)."""
        manifest = json.loads((local / MANIFEST).read_text())
        remote = self.entry(stage, key)
        try:
            self.fs.rm_file(posixpath.join(remote, MANIFEST))
        except FileNotFoundError:
            pass
        for name in sorted(manifest["files"]):
            self._put(local / name, posixpath.join(remote, name))
        self._put(local / MANIFEST, posixpath.join(remote, MANIFEST))

    def _put(self, src: Path, dst: str) -> None:
        try:
            self.fs.put_file(str(src), dst)
        except FileNotFoundError:
            if not src.is_file():
                raise
            self.fs.makedirs(posixpath.dirname(dst), exist_ok=True)  # directory filesystems (local://, sftp)
            self.fs.put_file(str(src), dst)


def fetch_into(store: RemoteStore, stage: str, key: str, final: Path, replace_damaged: bool,
               valid: Callable[[str, str], Path | None]) -> Path | None:
    """Download the remote entry into a hidden temporary sibling of ``final`` and rename it into
    place; the local entry directory, or None when the remote has no usable entry.

    ``valid(stage, key)`` re-checks the local entry (another process of this node may have put one
    there meanwhile). An existing, damaged local entry is replaced only when ``replace_damaged``
    (the caller holds the entry's lock); otherwise the download is discarded.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{key}."))
    try:
        try:
            got = store.download(stage, key, tmp)
        except FileNotFoundError:
            got = Fetch.MISSING
        if got is not Fetch.OK:
            return None
        try:
            os.replace(tmp, final)
        except OSError:
            hit = valid(stage, key)
            if hit is not None:
                return hit  # another process of this node got there first
            if not replace_damaged:
                return None
            shutil.rmtree(final, ignore_errors=True)
            os.replace(tmp, final)
        return final
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
