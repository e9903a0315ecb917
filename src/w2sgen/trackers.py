"""Experiment trackers (tensorboard, wandb, mlflow, ...) through accelerate's tracker API.

Asked for with ``--tracker NAME[,NAME]`` (or ``w2sgen.run(..., trackers=...)``). Each finished run
logs its configuration, its per-stage test metrics and PGR (step 0), and each stage's per-epoch
training loss (step = epoch). Local trackers write under ``DIR/tracking/<run>/``. Nothing breaks
when accelerate or the tracker is not installed: the run is kept and a warning says why.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from .errors import W2SError

log = logging.getLogger("w2sgen")
KNOWN = ("tensorboard", "wandb", "mlflow", "comet_ml", "aim", "clearml", "dvclive", "swanlab", "trackio")


def parse_trackers(spec: str | list[str] | None) -> list[str]:
    """Tracker names from ``"a,b"`` or a list; unknown names raise a W2SError listing the known ones."""
    from .errors import unknown

    names = spec.split(",") if isinstance(spec, str) else list(spec or [])
    names = [n.strip().lower() for n in names if n and n.strip()]
    for n in names:
        if n not in KNOWN:
            raise unknown("tracker", n, KNOWN, " (trackers log through accelerate)")
    return list(dict.fromkeys(names))


def available(name: str) -> bool:
    """Whether accelerate and the tracker's own package are importable."""
    try:
        from accelerate.tracking import LOGGER_TYPE_TO_CLASS  # noqa: F401
        from accelerate.utils import imports
    except ImportError:
        return False
    check = getattr(imports, f"is_{name}_available", None)
    return bool(check and check())


def flat_scalars(rec: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dict -> {"a/b": scalar}; lists and None become JSON strings (hparams take scalars only)."""
    out: dict[str, Any] = {}
    for k, v in rec.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flat_scalars(v, key + "/"))
        elif isinstance(v, (bool, int, float, str)):
            out[key] = v
        else:
            out[key] = json.dumps(v, default=str)
    return out


def run_metrics(rec: dict[str, Any]) -> dict[str, float]:
    """The scalars worth plotting: test acc/AUROC of each stage, PGR and agreement of each student, and
    the run's gap (ceiling − weak) with its 95% interval and flag (a flagged run has no PGR)."""
    st = rec["stages"]
    out: dict[str, float] = {}
    blocks = {"weak": st["weak"], "ceiling": st["ceiling"], **{f"student-{m}": b for m, b in st["students"].items()}}
    for name, b in blocks.items():
        for k, v in (b.get("test") or {}).items():
            if isinstance(v, (int, float)) and v is not None:
                out[f"{name}/test_{k}"] = float(v)
        for k in ("pgr_acc", "pgr_acc_lo", "pgr_acc_hi"):
            if isinstance(b.get(k), (int, float)):
                out[f"{name}/{k}"] = float(b[k])
    for k in ("gap_acc", "gap_acc_lo", "gap_acc_hi", "flagged"):
        v = (rec.get("stats") or {}).get(k)
        if isinstance(v, (int, float)) and v is not None:
            out[f"run/{k}"] = float(v)
    return out


def make_tracker(name: str, run_name: str, logging_dir: Path):
    """An accelerate ``GeneralTracker`` for ``name``, started."""
    from accelerate.tracking import LOGGER_TYPE_TO_CLASS

    cls = LOGGER_TYPE_TO_CLASS[name]
    tracker = cls(run_name, logging_dir=str(logging_dir)) if cls.requires_logging_directory else cls(run_name)
    tracker.start()
    return tracker


def log_run(spec: str | list[str], out: str | Path, run_dir: str | Path) -> list[str]:
    """Log one written run folder to every available tracker in ``spec``; returns those used."""
    names = parse_trackers(spec)
    run_dir = Path(run_dir)
    rec = json.loads((run_dir / "run.json").read_text())
    used = []
    for name in names:
        if not available(name):
            log.warning("tracker %s: not installed (pip install %s, and accelerate); not logged", name, name)
            continue
        try:
            tracker = make_tracker(name, run_dir.name, Path(out) / "tracking")
            tracker.store_init_configuration(flat_scalars(rec.get("config", {}), "config/"))
            tracker.log(run_metrics(rec), step=0)
            _log_curves(tracker, rec)
            tracker.finish()
            used.append(name)
        except W2SError:
            raise
        except Exception as e:  # a tracker failure must not lose a finished run
            log.warning("tracker %s: %s: %s; the run is saved, only its logging failed", name, type(e).__name__, e)
    return used


def _log_curves(tracker, rec: dict[str, Any]) -> None:
    st = rec["stages"]
    blocks = {"weak": st["weak"], "ceiling": st["ceiling"], **{f"student-{m}": b for m, b in st["students"].items()}}
    curves = {k: b.get("losses") or [] for k, b in blocks.items()}
    for epoch in range(max((len(c) for c in curves.values()), default=0)):
        vals = {f"{k}/train_loss": float(c[epoch]) for k, c in curves.items()
                if epoch < len(c) and c[epoch] is not None}
        if vals:
            tracker.log(vals, step=epoch + 1)
