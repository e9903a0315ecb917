"""The Ray executor on a local Ray (2 CPUs) and tiny models: runs go to Ray workers, the driver
indexes them, and the results equal the local executor's for the same grid.

Ray is a test dependency (`make setup` installs the `ray` extra): without it this module skips,
except under CI (env CI set), where it fails.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import write_toy_task

from w2sgen.cli import main
from w2sgen.errors import W2SError
from w2sgen.store.db import query

KEYS = ["task", "weak", "strong", "mode", "method", "seed"]
RUNS = 2  # 1 pair (weak -> strong) x 2 seeds, 4 stages each (floor, ceiling, xent, logconf)


@pytest.fixture(scope="module")
def ray_available() -> None:
    try:
        import ray  # noqa: F401
    except ImportError:
        msg = "ray is not installed (make setup installs it: pip install 'w2sgen[ray]')"
        if os.environ.get("CI"):
            pytest.fail(msg + " and CI is set")
        pytest.skip(msg)


@pytest.fixture(scope="module")
def sweep_file(tmp_path_factory, tiny_encoders) -> Path:
    root = tmp_path_factory.mktemp("raysweep")
    weak, strong = tiny_encoders
    task = write_toy_task(root / "toy.jsonl")
    f = root / "sweep.yaml"
    f.write_text(json.dumps({
        "tasks": [str(task)], "models": [str(weak), str(strong)], "exclude_self": True,
        "methods": ["xent", "logconf"], "seeds": [0, 1], "embed": {"dtype": "fp32"},
        "splits": {"n_weak_train": 40, "n_transfer": 40, "n_val": 20, "n_test": 20, "min_val": 20, "min_test": 20},
        "probe": {"epochs": 4, "lr": 0.01},
    }))
    return f


def indexed_runs(out: Path) -> list[str]:
    """Run ids in OUT/runs.sqlite as the sweep left it (read directly: no sync that would hide a gap)."""
    con = sqlite3.connect(out / "runs.sqlite")
    try:
        return sorted(r for (r,) in con.execute("SELECT run_id FROM runs"))
    finally:
        con.close()


def test_ray_sweep_matches_local(ray_available, sweep_file, tmp_path, capsys):
    ray_out, local_out = tmp_path / "ray-out", tmp_path / "local-out"
    assert main(["sweep", str(sweep_file), "--executor", "ray", "--workers", "2", "--out", str(ray_out),
                 "--cache-dir", str(tmp_path / "ray-cache")]) == 0
    import ray

    assert not ray.is_initialized()  # the Ray it started is shut down
    recs = [json.loads(f.read_text()) for f in sorted(ray_out.glob("*/run.json"))]
    assert len(recs) == RUNS
    for rec in recs:
        ex = rec["executor"]
        assert ex["kind"] == "ray" and ex["pid"] != os.getpid() and ex["node"] and ex["worker"]
    assert indexed_runs(ray_out) == sorted(f.parent.name for f in ray_out.glob("*/run.json"))

    assert main(["sweep", str(sweep_file), "--out", str(local_out), "--cache-dir", str(tmp_path / "local-cache")]) == 0
    local_recs = [json.loads(f.read_text()) for f in local_out.glob("*/run.json")]
    assert {r["executor"]["kind"] for r in local_recs} == {"local"}
    got, want = query(ray_out), query(local_out)
    assert len(got) == RUNS * 2
    pd.testing.assert_frame_equal(got, want, check_exact=True)


def test_missing_ray_is_a_clear_error(monkeypatch, sweep_file, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    from w2sgen.sweep.ray_exec import run_ray

    with pytest.raises(W2SError, match=r"pip install 'w2sgen\[ray\]'"):
        run_ray([], cache_dir=None)
    assert main(["sweep", str(sweep_file), "--executor", "ray"]) == 2
    assert "Ray is not installed" in capsys.readouterr().err


def test_task_resources():
    from w2sgen.config import RunConfig
    from w2sgen.sweep.ray_exec import resources

    assert resources(RunConfig(mode="probe"), gpus=0) == {"num_cpus": 1}
    assert resources(RunConfig(mode="finetune"), gpus=2)["num_gpus"] == 1
