"""A method as one Python file: ``METHOD = Method(...)``, loaded from its path and registered.

The benchmark driver loads the file, and so does every worker process or Ray task before its run
(``w2sgen.sweep``'s executors take the files as ``method_files``), checking that the file still
has the content the driver loaded. The registered method carries the file's sha256 in its
settings, hence in its student's cache key: an edited file trains a new student, never reuses the
old one's.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import W2SError
from ..methods import METHODS, register_method
from ..methods.base import Method
from ..registry import normalize_name

_LOADED: dict[str, str] = {}
"""Registered name -> sha256 of the method file it was loaded from (in this process)."""


@dataclass
class FileMethod(Method):
    """A method loaded from a file: the file's path and content hash travel with it."""

    source_file: str = ""
    """The file's absolute path."""
    source_sha256: str = ""
    """sha256 of the file's bytes (part of the student's key, through :meth:`settings`)."""

    def settings(self, cfg: Any) -> dict[str, Any]:
        return {**dataclasses.asdict(cfg), "method_file_sha256": self.source_sha256}


@dataclass(frozen=True)
class MethodFile:
    """A loaded method file: where it is, its content hash and the name it registered."""

    path: str
    sha256: str
    name: str


def is_method_file(spec: str) -> bool:
    """Whether a ``--methods`` entry is a file path rather than a registered name."""
    return spec.strip().lower().endswith(".py")


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_method_file(path: str | Path, expect_sha256: str | None = None) -> MethodFile:
    """Import ``path``, check that it defines ``METHOD`` (a Method) and register it under its name.

    ``expect_sha256``: the content the driver loaded (a worker's check). Loading the same content
    again is a no-op; a name that a built-in method or another file already holds is refused.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise W2SError(f"method file {path}: no such file (a --methods entry ending in .py is a method file)")
    p = p.resolve()
    sha = file_sha256(p)
    if expect_sha256 is not None and sha != expect_sha256:
        raise W2SError(f"method file {p}: its content changed while the benchmark ran (sha256 {sha[:12]}…, "
                       f"the driver loaded {expect_sha256[:12]}…); rerun the command once the file is final")
    for n, s in _LOADED.items():
        if s == sha and n in METHODS:  # this content is loaded already
            return MethodFile(str(p), sha, METHODS.get(n).name)
    module = f"w2sgen_method_file_{sha[:16]}"
    spec = importlib.util.spec_from_file_location(module, p)
    if spec is None or spec.loader is None:
        raise W2SError(f"method file {p}: not importable as a Python module")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[module] = mod  # dataclasses resolve the module's annotations through sys.modules
    try:
        spec.loader.exec_module(mod)
    except W2SError:
        sys.modules.pop(module, None)
        raise
    except Exception as e:
        sys.modules.pop(module, None)
        raise W2SError(f"method file {p}: importing it failed: {type(e).__name__}: {e}") from None
    method = getattr(mod, "METHOD", None)
    if not isinstance(method, Method):
        raise W2SError(f"method file {p}: defines no METHOD = Method(...) (got {type(method).__name__}); see "
                       "src/w2sgen/methods/xent.py for the shape of a method file")
    name = normalize_name(method.name)
    if method.name in METHODS and _LOADED.get(name) is None:
        raise W2SError(f"method file {p}: its METHOD is named {method.name!r}, the name of a registered method; "
                       "give it a name of its own")
    if _LOADED.get(name) not in (None, sha):
        raise W2SError(f"method file {p}: its METHOD is named {method.name!r}, as a method loaded from another "
                       "file (or another version of this one); give each method file its own name")
    if method.analyze_fn is not None and not method.uses_ground_truth:
        sys.modules.pop(module, None)
        raise W2SError(f"method file {p}: its METHOD has an analyze_fn, which the protocol calls with the "
                       "ground truth of transfer, val and test; a method file that is ranked may not see it. "
                       "Drop analyze_fn (the protocol's own analyses still run), or declare "
                       "uses_ground_truth=True to run it unranked")
    fields = {f.name: getattr(method, f.name) for f in dataclasses.fields(Method)}
    register_method(FileMethod(**fields, source_file=str(p), source_sha256=sha), overwrite=True)
    _LOADED[name] = sha
    return MethodFile(str(p), sha, method.name)


def load_method_files(files: Iterable[tuple[str, str]]) -> None:
    """Load ``(path, sha256)`` pairs (a worker, before its run): each must have the driver's content."""
    for path, sha in files:
        load_method_file(path, sha)


def unload(name: str) -> None:
    """Remove a method loaded from a file from the registry (tests; a later load registers it again)."""
    if _LOADED.pop(normalize_name(name), None) is not None:
        METHODS.unregister(name)
