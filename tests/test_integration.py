"""The whole protocol on the packaged models and real data (marked: slower, run by make test and CI)."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
from conftest import require_data

import w2sgen
from w2sgen.config import RunConfig, SplitConfig

pytestmark = pytest.mark.integration


def small(task, out, **kw):
    cfg = RunConfig(task=task, weak="minilm-l6", strong="mpnet-base", methods=["xent", "logconf"], seeds=[0],
                    out=str(out), splits=SplitConfig(n_weak_train=300, n_transfer=500, n_val=100, n_test=300),
                    **kw)
    return cfg


def test_cities_end_to_end_on_packaged_models(tmp_path, cache_dir):
    res = w2sgen.run(small("cities", tmp_path / "out"), cache_dir=cache_dir)
    t = res.table
    assert len(t) == 2
    row = t.iloc[0]
    # the packaged strong model is clearly better than the weak one on this task
    assert row.ceiling_acc > row.weak_acc + 0.05, t
    assert 0.5 < row.weak_acc < 0.9 and row.ceiling_acc > 0.65
    assert all(math.isfinite(x) for x in t["pgr_acc"])
    rec = res.runs[0]
    assert rec["weak"]["model"] == "minilm-l6" and rec["strong"]["model"] == "mpnet-base"
    assert rec["stages"]["students"]["xent"]["test"]["agreement_weak_right"] > 0.5


def test_sst2_from_shared_files(tmp_path, cache_dir):
    data = require_data("sst2")
    cfg = small("sst2", tmp_path / "out", data_dir=str(data))
    res = w2sgen.run(cfg, cache_dir=cache_dir)
    t = res.table
    assert (t["ceiling_acc"] > 0.7).all() and (t["weak_acc"] > 0.6).all(), t
    sizes = res.runs[0]["task"]["sizes"]
    assert sizes == {"weak_train": 300, "transfer": 500, "val": 100, "test": 300}


def test_cli_run_on_a_data_file(tmp_path, cache_dir):
    """`w2s run --task FILE` in a subprocess, then `w2s results --format json` parses."""
    data = require_data("sst2")
    rows = (data / "data" / "SST-2" / "test.tsv").read_text(encoding="utf-8").splitlines()[1:401]
    f = tmp_path / "reviews.csv"
    import csv

    with f.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["review", "label"])
        for r in rows:
            text, label = r.rsplit("\t", 1)
            w.writerow([text.strip(), label])
    out = tmp_path / "out"
    env = {**__import__("os").environ, "W2S_CACHE_DIR": str(cache_dir)}
    r = subprocess.run([sys.executable, "-m", "w2sgen.cli", "run", "--task", str(f), "--text-col", "review",
                        "--weak", "minilm-l6", "--strong", "minilm-l6", "--methods", "xent", "--out", str(out)],
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "xent" in r.stdout
    j = subprocess.run([sys.executable, "-m", "w2sgen.cli", "results", str(out), "--format", "json"],
                       capture_output=True, text=True, env=env, timeout=120)
    data_rows = json.loads(j.stdout)
    assert len(data_rows) == 1 and data_rows[0]["task"] == "reviews" and data_rows[0]["method"] == "xent"
    assert data_rows[0]["ceiling_acc"] > 0.6
