"""Benchmark fixtures: a tiny suite (toy data files, tiny encoders, lowered split minimums) and method files."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from conftest import write_toy_task

TINY_SPLITS = {"n_weak_train": 40, "n_transfer": 40, "n_val": 20, "n_test": 20, "min_val": 20, "min_test": 20}
"""The toy task's splits; the val and test minimums are lowered explicitly to these tiny sizes."""

HARD = '''
from dataclasses import dataclass

from w2sgen.methods.base import Method


@dataclass
class HardConfig:
    threshold: float = 0.5
    """Weak probability above which the target is class 1."""


def _make(cfg):
    def loss(logits, weak, step, total, window=None):
        from w2sgen.train.losses import xent

        return xent(logits, (weak > cfg.threshold).float())

    return loss


METHOD = Method(name="hard", description="xent on hardened weak labels", config_cls=HardConfig, make_loss=_make)
'''

PEEK = '''
from dataclasses import dataclass

from w2sgen.methods.base import Method


@dataclass
class PeekConfig:
    pass


def _train(cfg, ctx, plan):
    ctx.labels  # ground truth of every split: the firewall refuses it
    return ctx.train_student(plan)


METHOD = Method(name="peeker", description="reads ground truth", config_cls=PeekConfig, kind="train",
                train_fn=_train)
'''

ORACLE = '''
from dataclasses import dataclass

from w2sgen.methods.base import Method


@dataclass
class OracleConfig:
    pass


def _train(cfg, ctx, plan):
    ctx.labels  # declared: the firewall lets it through, the leaderboard never ranks it
    return ctx.train_student(plan)


METHOD = Method(name="oracle_peek", description="reads ground truth, and says so", config_cls=OracleConfig,
                kind="train", train_fn=_train, uses_ground_truth=True)
'''


def write_method(path: Path, source: str) -> Path:
    path.write_text(source)
    return path


def tiny_suite_data(root: Path, weak: Path, strong: Path, tasks: tuple[str, ...] = ("toy.jsonl",),
                    seeds: tuple[int, ...] = (0, 1)) -> dict:
    """A suite over toy data files in ``root`` (written here) on the tiny encoders; unfrozen."""
    for i, t in enumerate(tasks):
        if not (root / t).is_file():
            write_toy_task(root / t, n=120 + 40 * i)
    return {"name": "tiny", "version": 1, "mode": "probe", "seeds": list(seeds),
            "pairs": [[str(weak), str(strong)]],
            "settings": {"embed": {"dtype": "fp32"}, "probe": {"epochs": 4, "lr": 0.01}},
            "tasks": [{"task": t, "source": "file", "splits": dict(TINY_SPLITS)} for t in tasks],
            "quick": {"seeds": [seeds[0]], "tasks": [tasks[0]]},
            "not_run": {"probe_ladder": "finetunes the strong model: too slow for this suite"}}


def write_suite(path: Path, data: dict, freeze: bool = True) -> Path:
    """Write a suite file; ``freeze`` records its tasks' fingerprints and split hashes (w2s benchmark freeze)."""
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    if freeze:
        from w2sgen.benchmark.freeze import freeze as do_freeze

        path.write_text(do_freeze(path))
    return path


@pytest.fixture(scope="module")
def tiny_suite(tmp_path_factory, tiny_encoders) -> Path:
    """A frozen tiny suite file: one toy task, two seeds."""
    root = tmp_path_factory.mktemp("suite")
    weak, strong = tiny_encoders
    return write_suite(root / "tiny.yaml", tiny_suite_data(root, weak, strong))


@pytest.fixture
def method_files(tmp_path):
    """hard.py, peek.py and oracle.py in a temporary folder; unregistered afterwards."""
    from w2sgen.benchmark.method_file import unload

    files = {"hard": write_method(tmp_path / "hard.py", HARD), "peek": write_method(tmp_path / "peek.py", PEEK),
             "oracle": write_method(tmp_path / "oracle.py", ORACLE)}
    yield files
    for name in ("hard", "peeker", "oracle_peek"):
        unload(name)


@pytest.fixture(scope="session")
def kit() -> SimpleNamespace:
    """This module's helpers and method sources, for test modules (a conftest is not importable by name)."""
    return SimpleNamespace(HARD=HARD, PEEK=PEEK, ORACLE=ORACLE, TINY_SPLITS=TINY_SPLITS, write_method=write_method,
                           tiny_suite_data=tiny_suite_data, write_suite=write_suite)
