"""Faults during a run: Ctrl-C that stops after the current step, and write failures as user errors.

* :func:`interrupt_guard` (used by the CLI) turns the first SIGINT into a request: training stops
  at the next :func:`check_interrupt` (after the current optimizer step, or between stages), the
  stage being built is discarded, and every completed stage stays cached, so rerunning the same
  command resumes there. A second SIGINT stops at once.
* :func:`writing` turns a failed write (full disk, read-only or unwritable directory) into a
  :class:`~w2sgen.errors.W2SError` that names the path and the fix.
* :func:`check_writable` fails fast, before any compute, when a directory cannot be written.
"""

from __future__ import annotations

import errno
import logging
import os
import signal
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import W2SError

log = logging.getLogger("w2sgen")

_requested = threading.Event()

WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}
"""errno values that mean "this location cannot be written" (reported as user errors)."""


def interrupt_requested() -> bool:
    """True once a SIGINT arrived under :func:`interrupt_guard`."""
    return _requested.is_set()


def check_interrupt(where: str = "") -> None:
    """Raise KeyboardInterrupt if a stop was requested (call between steps and stages)."""
    if _requested.is_set():
        log.warning("stopped%s; completed stages are cached, rerun the same command to resume",
                    f" {where}" if where else "")
        raise KeyboardInterrupt


@contextmanager
def interrupt_guard() -> Iterator[None]:
    """First SIGINT: stop at the next :func:`check_interrupt`; second SIGINT: stop now.

    Only active in the main thread (signal handlers cannot be set elsewhere); restores the
    previous handler on exit.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _requested.clear()

    def handler(signum, frame):  # noqa: ARG001 - signal handler signature
        if _requested.is_set():
            raise KeyboardInterrupt
        _requested.set()
        log.warning("interrupt: stopping after the current step (press Ctrl-C again to stop now)")

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        _requested.clear()


def write_error(e: OSError, what: str, path: str | Path | None = None) -> W2SError:
    """The user-facing error for a failed write into ``what`` (e.g. 'results directory')."""
    where = path if path is not None else (e.filename or what)
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        fix = "free some space (w2s cache prune --max-size 10G frees cache space) or choose another location"
        reason = "the disk is full"
    elif e.errno == errno.EROFS:
        fix, reason = "choose a writable location", "the file system is read-only"
    else:
        fix, reason = "fix its permissions or choose another location", "permission denied"
    flag = {"results directory": " (--out)", "cache directory": " (--cache-dir or W2S_CACHE_DIR)"}.get(what, "")
    return W2SError(f"{where}: cannot write the {what}: {reason} ({e.strerror or e}); {fix}{flag}")


@contextmanager
def writing(what: str, path: str | Path | None = None) -> Iterator[None]:
    """Re-raise OSErrors that mean "cannot write here" as a W2SError naming ``path`` and the fix."""
    try:
        yield
    except OSError as e:
        if e.errno in WRITE_ERRNOS:
            raise write_error(e, what, path) from None
        raise


def check_writable(path: str | Path, what: str) -> None:
    """Fail fast when ``path`` (or, if it does not exist yet, its nearest existing parent) is not a
    writable directory. Writes and removes one temporary file; creates nothing else."""
    p = Path(path).expanduser().absolute()
    probe = p
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise W2SError(f"{path}: the {what} must be a directory, but {probe} is a file; choose another location")
    try:
        with tempfile.TemporaryFile(dir=probe, prefix=".w2s-write-test-"):
            pass
    except OSError as e:
        if e.errno in WRITE_ERRNOS:
            raise write_error(e, what, path) from None
        raise W2SError(f"{path}: cannot write the {what} ({e.strerror or e}); choose another location") from None
    if not os.access(probe, os.W_OK):  # e.g. a directory whose mode forbids writes to non-root users
        raise W2SError(f"{path}: the {what} is not writable; fix its permissions or choose another location")
