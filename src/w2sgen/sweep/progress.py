"""The live view of a running sweep: stages done / running / left, elapsed time and an ETA.

Executors report runs, not stages: ``SweepProgress`` maps run events onto the plan's unique
stages (``plan.make_plan``). A stage is *done* when it was cached before the sweep or a run that
needs it finished; *running* when a run that needs it is in flight (an approximation: in flight
means handed to one of ``slots`` workers, in submission order); *left* when only pending runs need
it; *failed* when every run that needs it ended in failure. The ETA is the stages still to do
(running + left) times the mean wall time per stage trained so far in this sweep (elapsed / trained
stages, so parallel workers are accounted for).

``make_view`` draws it: a ``rich`` live panel when stderr is a terminal and rich is installed,
else one plain log line per event (no animation; what CI logs and ``W2S_PROGRESS=0`` get).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("w2sgen")


@dataclass(frozen=True)
class Counts:
    """A snapshot of the sweep's progress."""

    stages: int
    done: int
    running: int
    left: int
    failed: int
    cached_at_start: int
    runs: int
    runs_done: int
    runs_failed: int
    runs_running: int
    elapsed_s: float
    eta_s: float | None

    @property
    def trained(self) -> int:
        """Stages trained by this sweep so far (done, minus those cached before it started)."""
        return self.done - self.cached_at_start


class SweepProgress:
    """Stage-level progress of a sweep, fed by run events (no I/O: a pure model).

    ``run_stages[i]`` are the stage idents run ``i`` needs; ``cached`` the idents cached before the
    sweep; ``slots`` how many runs execute at once (workers); ``clock`` returns seconds.
    """

    def __init__(self, run_stages: Sequence[Sequence[str]], cached: set[str] | frozenset[str] = frozenset(),
                 slots: int = 1, clock: Callable[[], float] = time.monotonic):
        self.run_stages = [list(s) for s in run_stages]
        self.stage_runs: dict[str, list[int]] = {}
        for r, ids in enumerate(self.run_stages):
            for ident in ids:
                self.stage_runs.setdefault(ident, []).append(r)
        self.cached = {s for s in cached if s in self.stage_runs}
        self.slots = max(1, slots)
        self.clock = clock
        self.t0 = clock()
        self.pending: list[int] = list(range(len(self.run_stages)))
        self.running: list[int] = []
        self.ok: set[int] = set()
        self.failed: set[int] = set()

    @classmethod
    def from_plan(cls, plan: Any, slots: int = 1, clock: Callable[[], float] = time.monotonic) -> SweepProgress:
        """From a ``plan.Plan``: its runs' stages and which were cached."""
        cached = {i for i, s in plan.stages.items() if s.cached}
        return cls(plan.run_stages, cached, slots, clock)

    # events --------------------------------------------------------------------------------------

    def start(self, run: int | None = None) -> None:
        """Mark ``run`` (default: the next pending run) in flight."""
        if run is None:
            if not self.pending:
                return
            run = self.pending[0]
        if run in self.pending:
            self.pending.remove(run)
            self.running.append(run)

    def fill(self) -> None:
        """Start pending runs, in order, until ``slots`` are in flight."""
        while self.pending and len(self.running) < self.slots:
            self.start()

    def finish(self, run: int, ok: bool = True) -> None:
        """Mark ``run`` finished (its stages done when ``ok``); the next pending run takes its slot."""
        if run in self.running:
            self.running.remove(run)
        elif run in self.pending:
            self.pending.remove(run)
        (self.ok if ok else self.failed).add(run)
        self.fill()

    # state ---------------------------------------------------------------------------------------

    def stage_state(self, ident: str) -> str:
        """done, running, left or failed (see the module docstring)."""
        runs = self.stage_runs[ident]
        if ident in self.cached or any(r in self.ok for r in runs):
            return "done"
        if any(r in self.running for r in runs):
            return "running"
        if any(r in self.pending for r in runs):
            return "left"
        return "failed"

    def counts(self) -> Counts:
        states = [self.stage_state(s) for s in self.stage_runs]
        done, running, left = states.count("done"), states.count("running"), states.count("left")
        elapsed = max(0.0, self.clock() - self.t0)
        trained = done - len(self.cached)
        eta = (running + left) * elapsed / trained if trained > 0 else None
        if running + left == 0:
            eta = 0.0
        return Counts(len(states), done, running, left, states.count("failed"), len(self.cached),
                      len(self.run_stages), len(self.ok), len(self.failed), len(self.running), elapsed, eta)


def fmt_s(s: float | None) -> str:
    """A duration: 42s, 3m05s, 1h02m; ``?`` when unknown."""
    if s is None:
        return "?"
    s = int(round(s))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def format_line(c: Counts, timing: bool = True) -> str:
    """One plain line: stages and runs, and (``timing``) elapsed and ETA."""
    failed = f", {c.failed} failed" if c.failed else ""
    runs_failed = f", {c.runs_failed} failed" if c.runs_failed else ""
    line = (f"stages {c.done}/{c.stages} done ({c.cached_at_start} cached), {c.running} running, "
            f"{c.left} left{failed}; runs {c.runs_done}/{c.runs} done{runs_failed}")
    return f"{line}; elapsed {fmt_s(c.elapsed_s)}, ETA {fmt_s(c.eta_s)}" if timing else line


class PlainView:
    """One log line per event (for logs, CI and pipes)."""

    def __init__(self, model: SweepProgress):
        self.model = model

    def __enter__(self) -> PlainView:
        log.info("sweep: %s", format_line(self.model.counts()))
        return self

    def event(self, message: str, error: bool = False) -> None:
        line = f"{message} | {format_line(self.model.counts())}"
        (log.error if error else log.info)("%s", line)

    def __exit__(self, *exc: Any) -> None:
        return None


class RichView:
    """A live panel on stderr (rich), redrawn twice a second; events are printed above it."""

    def __init__(self, model: SweepProgress):
        from rich.console import Console

        self.model = model
        self.console = Console(file=sys.stderr)
        self.live: Any = None

    def _render(self) -> Any:
        from rich.table import Table

        c = self.model.counts()
        t = Table(title="sweep", title_justify="left", show_edge=False)
        for col in ("stages", "done", "cached", "running", "left", "failed", "runs", "elapsed", "ETA"):
            t.add_column(col, justify="right")
        t.add_row(str(c.stages), str(c.done), str(c.cached_at_start), str(c.running), str(c.left), str(c.failed),
                  f"{c.runs_done}/{c.runs}", fmt_s(c.elapsed_s), fmt_s(c.eta_s))
        return t

    def __enter__(self) -> RichView:
        from rich.live import Live

        self.live = Live(get_renderable=self._render, console=self.console, refresh_per_second=2, transient=False)
        self.live.__enter__()
        return self

    def event(self, message: str, error: bool = False) -> None:
        self.console.print(f"[red]{message}[/red]" if error else message, highlight=False)
        if self.live is not None:
            self.live.refresh()

    def __exit__(self, *exc: Any) -> None:
        if self.live is not None:
            self.live.__exit__(*exc)
            self.live = None


def make_view(model: SweepProgress, stream: Any = None) -> PlainView | RichView:
    """RichView on a terminal with rich installed (and W2S_PROGRESS not 0), else PlainView."""
    stream = sys.stderr if stream is None else stream
    animate = os.environ.get("W2S_PROGRESS", "1") != "0" and getattr(stream, "isatty", lambda: False)()
    if animate:
        try:
            import rich  # noqa: F401
        except ImportError:
            animate = False
    return RichView(model) if animate else PlainView(model)


class Tracker:
    """What an executor calls: ``start``/``finish`` of runs, drawn by a view; a no-op without a model."""

    def __init__(self, model: SweepProgress | None = None, view: PlainView | RichView | None = None):
        self.model = model
        self.view = view if view is not None or model is None else make_view(model)

    def __enter__(self) -> Tracker:
        if self.view is not None:
            self.view.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.view is not None:
            self.view.__exit__(*exc)

    def fill(self) -> None:
        if self.model is not None:
            self.model.fill()

    def finish(self, run: int, message: str, ok: bool = True) -> None:
        if self.model is not None:
            self.model.finish(run, ok)
        if self.view is not None:
            self.view.event(message, error=not ok)
        else:
            (log.info if ok else log.error)("%s", message)
