"""``dtype: auto`` by measurement: bf16 only where it computes a model's matmuls ≥ 1.2× faster than fp32.

Whether a CPU "has bf16" says little about speed: a CPU that lists ``avx512_bf16`` may still run
bf16 matmuls at half its fp32 rate, and one without native bf16 emulates it at a fraction. So the
first time ``auto`` is resolved on a machine, a short probe times the matmuls of a transformer
layer of the model's width C (``(M, C) @ (C, C)``, ``(M, C) @ (C, 4C)``, ``(M, 4C) @ (4C, C)``, M
tokens) in fp32 and in bf16 (well under a second; a bf16 that is far slower is stopped early), and
picks bf16 only when it was at least :data:`MIN_SPEEDUP` times faster. The answer is kept in
``dtype-probe.json`` in the models directory, per device model (CPU name and instruction-set flags,
or GPU name), torch version and width, so later runs (and their cache keys, which hold the
resolved dtype) do not depend on a new measurement. bf16's accuracy parity is a test, not part of
the probe.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger("w2sgen")

MIN_SPEEDUP = 1.2
"""bf16 is chosen only where it ran the probe's matmuls at least this many times faster than fp32."""
DEFAULT_WIDTH = 768
"""Width C probed when the model's is unknown."""
BF16_BUDGET_S = 0.3
"""Seconds the bf16 half of the probe may take: a bf16 that needs longer is many times slower than fp32."""
CACHE_FILE = "dtype-probe.json"
PROBE_VERSION = 2
"""Part of the stored answer's key: a change to how the probe measures invalidates old answers (2: tiny
widths repeat their matmuls)."""
MIN_ROUND_FLOPS = 5e7
"""Work per timed round at least (the layer's matmuls repeated): at small widths one pass takes
microseconds, and its timing is the clock's and the scheduler's noise, not the dtype's speed."""


@dataclass
class ProbeResult:
    """One probe: matmul rates in fp32 and bf16 at one width, and the dtype ``auto`` resolves to."""

    device: str
    """Device model the figures hold for (CPU name and flags digest, or GPU name)."""
    torch: str
    """torch version."""
    width: int
    """Model width C of the probed matmuls."""
    tokens: int
    """Rows M of the probed matmuls."""
    fp32_gflops: float
    """fp32 rate over the probe's matmuls (best of its rounds)."""
    bf16_gflops: float
    """bf16 rate; when ``bf16_stopped``, the rate of the work done before the budget ran out (warm-up included)."""
    bf16_stopped: bool
    """The bf16 measurement was cut at :data:`BF16_BUDGET_S` (bf16 far slower than fp32)."""
    choice: str
    """fp32 or bf16."""
    seconds: float
    """Wall time of the probe."""

    @property
    def speedup(self) -> float:
        """bf16 rate over fp32 rate."""
        return self.bf16_gflops / self.fp32_gflops if self.fp32_gflops > 0 else 0.0

    def describe(self) -> str:
        bf16 = f"{'≤ ' if self.bf16_stopped else ''}{self.bf16_gflops:.1f}"
        return (f"{self.choice} (fp32 {self.fp32_gflops:.1f} GFLOP/s, bf16 {bf16} GFLOP/s: bf16 {self.speedup:.2f}x "
                f"fp32, needs >= {MIN_SPEEDUP}x; matmuls of width {self.width}, {self.tokens} tokens; "
                f"probe {self.seconds:.2f} s)")


def device_model(device: str) -> str:
    """What the probe's answer holds for: the GPU's name, or the CPU's name and a digest of its flags."""
    import torch

    if device.startswith("cuda"):
        idx = torch.device(device).index or 0
        return f"cuda:{torch.cuda.get_device_name(idx)}"
    name, flags = platform.processor() or platform.machine(), ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and name in ("", platform.machine(), platform.processor()):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = line.split(":", 1)[1].strip()
    except OSError:
        pass
    digest = hashlib.sha1(" ".join(sorted(flags.split())).encode()).hexdigest()[:8] if flags else "noflags"
    return f"cpu:{name} [{digest}]"


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def probe(device: str = "cpu", width: int = DEFAULT_WIDTH, tokens: int | None = None, rounds: int = 3) -> ProbeResult:
    """Time a transformer layer's matmuls at ``width`` in fp32 and bf16; choose (see the module docstring)."""
    import torch

    t_start = time.perf_counter()
    M = tokens or (4096 if device.startswith("cuda") else 128)
    shapes = [(M, width, width), (M, width, 4 * width), (M, 4 * width, width)]
    reps = max(1, math.ceil(MIN_ROUND_FLOPS / sum(2 * m * k * n for m, k, n in shapes)))  # tiny widths: repeat
    shapes = shapes * reps
    flops = sum(2 * m * k * n for m, k, n in shapes)
    gen = torch.Generator(device=device).manual_seed(0)
    mats32 = [(torch.randn(m, k, device=device, generator=gen), torch.randn(k, n, device=device, generator=gen))
              for m, k, n in shapes]

    def timed(mats, deadline: float) -> tuple[float | None, float]:
        """(seconds of one round, or None if the deadline passed first; flops done)."""
        done, t0 = 0.0, time.perf_counter()
        for a, b in mats:
            a @ b
            _sync(device)
            done += 2 * a.shape[0] * a.shape[1] * b.shape[1]
            if time.perf_counter() > deadline:
                return None, done
        return time.perf_counter() - t0, done

    timed(mats32, float("inf"))  # warm-up
    t32 = min(timed(mats32, float("inf"))[0] for _ in range(rounds))
    mats16 = [(a.to(torch.bfloat16), b.to(torch.bfloat16)) for a, b in mats32]
    t0 = time.perf_counter()
    deadline = t0 + BF16_BUDGET_S
    best16, work, stopped = None, 0.0, False
    for i in range(rounds + 1):  # round 0 is the warm-up
        secs, done = timed(mats16, deadline)
        work += done
        if secs is None:
            stopped = best16 is None
            break
        if i > 0:
            best16 = secs if best16 is None else min(best16, secs)
    bf16 = flops / best16 if best16 else work / max(time.perf_counter() - t0, 1e-9)
    fp32 = flops / t32
    return ProbeResult(device_model(device), torch.__version__, width, M, round(fp32 / 1e9, 2), round(bf16 / 1e9, 2),
                       stopped, choose(fp32, bf16, stopped), round(time.perf_counter() - t_start, 3))


def choose(fp32_rate: float, bf16_rate: float, bf16_stopped: bool = False) -> str:
    """bf16 iff its measured rate is ≥ :data:`MIN_SPEEDUP` × fp32's (and its measurement finished)."""
    return "bf16" if not bf16_stopped and bf16_rate >= MIN_SPEEDUP * fp32_rate else "fp32"


def cache_path() -> Path:
    from ..models.packaged import models_dir

    return models_dir() / CACHE_FILE


def _key(device: str, width: int) -> str:
    import torch

    return f"{device_model(device)} | torch {torch.__version__} | width {width} | probe {PROBE_VERSION}"


def cached(device: str, width: int) -> ProbeResult | None:
    """The stored probe of this device model, torch version and width, if any."""
    try:
        entry = json.loads(cache_path().read_text()).get(_key(device, width))
        return ProbeResult(**entry) if entry else None
    except (OSError, ValueError, TypeError):
        return None


def measured(device: str, width: int | None = None, *, save: bool = True) -> ProbeResult:
    """The probe for ``device`` at ``width``: from the cache, else measured now (and stored unless ``save`` is off)."""
    width = int(width or DEFAULT_WIDTH)
    hit = cached(device, width)
    if hit is not None:
        return hit
    res = probe(device, width)
    if save:
        log.info("dtype auto on %s: %s", res.device, res.describe())
        from ..store.atomic import atomic_write_json

        path = cache_path()
        try:
            try:
                table = json.loads(path.read_text())
            except (OSError, ValueError):
                table = {}
            table[_key(device, width)] = asdict(res)
            atomic_write_json(path, table)
        except OSError as e:  # a read-only models directory: measure again next time
            log.warning("could not store the dtype probe in %s (%s)", path, e.strerror)
    return res


def auto_dtype(device: str, width: int | None = None) -> str:
    """What ``dtype: auto`` resolves to on ``device`` for a model of ``width``: ``fp32`` or ``bf16``."""
    return measured(device, width).choice
