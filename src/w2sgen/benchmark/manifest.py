"""``OUT/benchmark.json``: what a benchmark results directory holds, and the refusal to mix.

It records the suite (name, version, content hash), the variant (full or quick) and w2sgen's
training protocol the directory was made for; the content the first run observed for tasks the
suite leaves unfrozen; each method's source (registered, or a file and its sha256), whether it
reads ground truth, whether its runs failed; the methods that cannot run on the suite, with the
reason; and, per method and run, the student's wall time when that run trained it (a student
loaded from the cache is not a cost).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import W2SError
from ..store.atomic import atomic_write_json
from .suite import Suite

NAME = "benchmark.json"
FORMAT = 1


def variant_name(quick: bool) -> str:
    return "quick" if quick else "full"


@dataclass
class Manifest:
    suite: str
    version: int
    suite_hash: str
    variant: str
    """full, or quick (fewer tasks and seeds: not comparable with full runs)."""
    recorded: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Task -> {fingerprint, examples, split_ids, source} observed by the first run, for tasks the suite leaves unfrozen."""
    sources: dict[str, str] = field(default_factory=dict)
    """Task -> where its data came from (in words), as of the last run."""
    methods: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Method -> {source, sha256, uses_ground_truth, status, error, wall_s: {run: seconds}}."""
    not_run: dict[str, str] = field(default_factory=dict)
    """Method -> why it cannot run on the suite."""
    suite_data: dict[str, Any] = field(default_factory=dict)
    """The suite's content (``suite.to_data``): the leaderboard rebuilds the suite from it and checks its hash."""
    format: int = FORMAT
    updated: str = ""
    protocol: str = ""
    """w2sgen's training protocol (``protocol.PROTOCOL_VERSION``) the results were made under: the same
    suite trained under another protocol gives other numbers, so two protocols never mix ("" : a
    directory written before the protocol was recorded)."""

    @property
    def quick(self) -> bool:
        return self.variant == "quick"

    @property
    def label(self) -> str:
        return f"{self.suite} v{self.version} ({self.suite_hash[:12]}…, {self.variant})"

    @classmethod
    def read(cls, out: str | Path) -> Manifest | None:
        """The manifest of ``out``, None when there is none; a W2SError when it is unreadable."""
        p = Path(out) / NAME
        if not p.is_file():
            return None
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
            m = cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})
        except (OSError, ValueError, TypeError) as e:
            raise W2SError(f"{p}: not a readable benchmark manifest ({e}); it was not written by "
                           "`w2s benchmark run`, or it was edited") from None
        for rec in m.recorded.values():
            rec["split_ids"] = {int(k): v for k, v in rec.get("split_ids", {}).items()}
        return m

    @classmethod
    def load(cls, out: str | Path) -> Manifest:
        """The manifest of a benchmark results directory; a W2SError naming the fix when absent."""
        m = cls.read(out)
        if m is None:
            raise W2SError(f"{out}: not a benchmark results directory (no {NAME}); make one with "
                           "`w2s benchmark run SUITE --methods ... --out DIR`")
        return m

    @classmethod
    def open(cls, out: str | Path, suite: Suite, quick: bool) -> Manifest:
        """``out``'s manifest, checked to be of ``suite`` and this variant, or a new one."""
        m = cls.read(out)
        from ..protocol import PROTOCOL_VERSION
        from .suite import to_data

        want = cls(suite.name, suite.version, suite.hash, variant_name(quick), suite_data=to_data(suite),
                   protocol=PROTOCOL_VERSION)
        if m is None:
            if Path(out).is_dir() and any(Path(out).iterdir()):
                raise W2SError(f"--out {out}: the directory holds files but no {NAME}: a benchmark writes to "
                               "an empty or new directory, or to one it made")
            return want
        m.check_same(want, str(out))
        return m

    def suite_of(self, where: str | Path) -> Suite:
        """The suite the directory was made for, rebuilt from the manifest (its hash checked)."""
        from .suite import parse_suite

        suite = parse_suite(self.suite_data, f"{where}/{NAME}: suite_data")
        if suite.hash != self.suite_hash:
            raise W2SError(f"{where}/{NAME}: the recorded suite content does not hash to {self.suite_hash[:12]}…; "
                           "the manifest was edited or written by another w2sgen")
        return suite

    def check_same(self, other: Manifest, where: str) -> None:
        """A W2SError unless ``other`` is the same suite, version, content hash and variant."""
        if (self.suite, self.version, self.suite_hash) != (other.suite, other.version, other.suite_hash):
            raise W2SError(f"{where} holds results of suite {self.label}, not of {other.label}: results of two suites "
                           "or two versions of a suite never mix; use another directory")
        if self.protocol != other.protocol:
            mine, theirs = (p or "unrecorded (an older w2sgen)" for p in (self.protocol, other.protocol))
            raise W2SError(f"{where} holds results of {self.label} trained under w2sgen's protocol {mine}, not "
                           f"{theirs}: results of two training protocols never mix; use another directory")
        if self.variant != other.variant:
            raise W2SError(f"{where} holds {self.variant} results of {self.suite} v{self.version}; {other.variant} "
                           "results go to another directory (quick runs are not comparable with full ones)")

    def record_content(self, suite: Suite, observed: dict[str, dict[str, Any]]) -> None:
        """Keep what the first run saw of each task the suite leaves unfrozen (later runs are checked against it)."""
        for t in suite.tasks:
            got = observed.get(t.task)
            if got is None:
                continue
            self.sources[t.task] = got["source"]
            if t.fingerprint is None:
                rec = self.recorded.setdefault(t.task, {"fingerprint": got["fingerprint"], "examples": got["examples"],
                                                        "split_ids": {}, "source": got["source"],
                                                        "hub_commit": got.get("hub_commit")})
                rec["split_ids"] = {**got["split_ids"], **rec["split_ids"]}

    def record_method(self, name: str, source: str, sha256: str | None, uses_ground_truth: bool,
                      error: str | None) -> None:
        m = self.methods.setdefault(name, {"wall_s": {}})
        m.update({"source": source, "sha256": sha256, "uses_ground_truth": uses_ground_truth,
                  "status": "failed" if error else "done", "error": error})
        self.not_run.pop(name, None)

    def record_walls(self, results: Path, methods: list[str]) -> None:
        """Each run's student wall time of ``methods``, where the run trained it (not a cache hit)."""
        from ..store.results import read_runs

        if not results.is_dir():
            return
        for rec in read_runs(results):
            run = Path(rec["_dir"]).name
            for name in methods:
                b = rec["stages"]["students"].get(name)
                if b is not None and not b.get("cached") and isinstance(b.get("wall_s"), (int, float)):
                    self.methods.setdefault(name, {"wall_s": {}}).setdefault("wall_s", {})[run] = float(b["wall_s"])

    def write(self, out: str | Path) -> None:
        self.updated = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        Path(out).mkdir(parents=True, exist_ok=True)
        atomic_write_json(Path(out) / NAME, asdict(self))
