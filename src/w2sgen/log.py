"""Logging and progress bars, both on stderr (stdout is kept for results)."""

from __future__ import annotations

import logging
import os
import sys
from contextlib import contextmanager

log = logging.getLogger("w2sgen")


def setup_logging(verbose: bool = False) -> None:
    if log.handlers:
        return
    h = logging.StreamHandler(sys.stderr)
    h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    log.addHandler(h)
    log.setLevel(logging.DEBUG if verbose else logging.INFO)
    log.propagate = False


@contextmanager
def progress(total: int, desc: str, unit: str = "it"):
    """A tqdm bar on stderr; silent when W2S_PROGRESS=0 or stderr is not a terminal and the work is small."""
    from tqdm.auto import tqdm

    disable = os.environ.get("W2S_PROGRESS", "1") == "0"
    bar = tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, disable=disable, leave=False,
               mininterval=1.0, dynamic_ncols=True)
    try:
        yield bar
    finally:
        bar.close()
