"""The SQLite index DIR/runs.sqlite: round trip, filters, sync, concurrent writers, the CLI."""

from __future__ import annotations

import io
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from report.fake_runs import write_results, write_run

import w2sgen
from w2sgen.aggregate import TABLE_COLUMNS, runs_table, summarize
from w2sgen.cli import main
from w2sgen.errors import W2SError
from w2sgen.store import db
from w2sgen.store.results import read_runs

TESTS = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    return write_results(tmp_path_factory.mktemp("res") / "out", seeds=(0, 1), tasks=("toy", "toy2"))


def test_round_trip_equals_the_run_records(results):
    table = db.query(results)
    assert (results / "runs.sqlite").is_file()
    pd.testing.assert_frame_equal(table, runs_table(read_runs(results))[["run_id", *TABLE_COLUMNS]])
    runs = db.read_table(results, "runs")
    assert len(runs) == 12 and set(runs["task"]) == {"toy", "toy2"}
    rec = json.loads(runs.iloc[0]["record"])
    assert json.loads(runs.iloc[0]["config"]) == rec["config"]
    stages = db.read_table(results, "stages")
    assert set(stages["stage"]) == {"weak", "ceiling", "student-xent", "student-logconf"}
    m = db.read_table(results, "metrics")
    assert {"acc", "auroc", "pgr_acc", "agreement_weak_wrong"} <= set(m["metric"])


def test_filters(results):
    t = db.query(results, task="toy", method=["xent"], where="seed = 1 AND ceiling_acc > 0.85")
    assert len(t) == 2 and set(t["task"]) == {"toy"} and set(t["strong"]) == {"xl"} and set(t["seed"]) == {1}
    assert len(db.query(results, task="toy,toy2", method="logconf")) == 12
    with pytest.raises(W2SError, match="SQL expression over the columns"):
        db.query(results, where="pgr > 1")
    with pytest.raises(W2SError):
        db.query(results, where="1; DROP TABLE results")
    assert len(db.query(results)) == 24


def test_sync_reindexes_changed_and_removed_runs(tmp_path):
    out = tmp_path / "out"
    d0 = write_run(out, seed=0)
    write_run(out, seed=1)
    assert len(db.query(out)) == 4
    rec = json.loads((d0 / "run.json").read_text())
    rec["stages"]["students"]["xent"]["test"]["acc"] = 0.777
    (d0 / "run.json").write_text(json.dumps(rec))
    import os

    os.utime(d0 / "run.json", (2e9, 2e9))
    t = db.query(out, method="xent", where="seed = 0")
    assert t["w2s_acc"].tolist() == [0.777]
    w, c = rec["stages"]["weak"]["test"]["acc"], rec["stages"]["ceiling"]["test"]["acc"]
    assert t["pgr_acc"].tolist() == [pytest.approx((0.777 - w) / (c - w))]  # the ratio of the run's accuracies
    import shutil

    shutil.rmtree(d0)
    assert set(db.query(out)["seed"]) == {1}
    assert db.sync(out) == 0


def test_broken_database_is_a_user_error(tmp_path):
    out = tmp_path / "out"
    write_run(out)
    (out / "runs.sqlite").write_bytes(b"not a database at all" * 100)
    with pytest.raises(W2SError, match="delete the file"):
        db.query(out)
    with pytest.raises(W2SError, match="no such results directory"):
        db.query(tmp_path / "missing")


WRITER = """
import sys
sys.path.insert(0, {tests!r})
from report.fake_runs import write_run
from w2sgen.store.db import index_run
out, who = sys.argv[1], sys.argv[2]
for seed in range(8):
    d = write_run(out, task="t" + who, seed=seed, sizes={{"transfer": 20, "val": 10, "test": 40}}, epochs=2)
    index_run(out, d)
"""


def test_two_processes_write_runs_into_one_directory(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    code = WRITER.format(tests=str(TESTS))
    procs = [subprocess.Popen([sys.executable, "-c", code, str(out), w], stderr=subprocess.PIPE, text=True)
             for w in ("a", "b")]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    con = sqlite3.connect(out / "runs.sqlite")
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert con.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 16
        assert con.execute("SELECT COUNT(*) FROM results").fetchone()[0] == 32
        assert dict(con.execute("SELECT task, COUNT(*) FROM runs GROUP BY task").fetchall()) == {"ta": 8, "tb": 8}
    finally:
        con.close()
    assert db.sync(out) == 0  # every run was indexed by its writer


def test_results_api_query(results):
    res = w2sgen.load_results(results)
    t = res.query(task="toy2", where="w2s_acc > weak_acc")
    assert set(t["task"]) == {"toy2"} and len(t) > 0
    assert len(res.table) == 24


def test_cli_results_filters_and_exports(results, tmp_path, capsys):
    assert main(["results", str(results), "--task", "toy", "--method", "xent", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 6 and {r["method"] for r in rows} == {"xent"}
    assert list(rows[0]) == [*TABLE_COLUMNS, "run_id"]
    assert {"gap_acc", "gap_acc_lo", "gap_acc_hi", "flagged", "majority_acc"} <= set(rows[0])
    pq = tmp_path / "t.parquet"
    assert main(["results", str(results), "--where", "seed = 0", "--format", "parquet", "-o", str(pq)]) == 0
    assert len(pd.read_parquet(pq)) == 12
    csv = tmp_path / "s.csv"
    assert main(["results", str(results), "--summary", "-o", str(csv)]) == 0
    assert "pgr_acc_lo" in csv.read_text() and "gap_acc_hi" in csv.read_text()
    assert main(["results", str(results), "--format", "parquet"]) == 2
    assert "-o FILE.parquet" in capsys.readouterr().err
    assert main(["results", str(results), "--where", "nope(("]) == 2
    assert "SQL expression" in capsys.readouterr().err
    assert main(["results", str(results), "--summary", "--method", "logconf"]) == 0
    out = capsys.readouterr().out
    assert "logconf" in out and "xent " not in out


@pytest.fixture()
def mixed(tmp_path) -> Path:
    """A classification run written before task kinds (no ``task_kind`` in run.json) and a generation run."""
    out = tmp_path / "out"
    write_run(out, task="toy")
    write_run(out, task="cities_gen", task_kind="generation")
    return out


def test_task_kind_is_a_column_of_the_index_and_the_cli(mixed, capsys):
    t = db.query(mixed)
    assert dict(zip(t["task"], t["task_kind"])) == {"toy": "classification", "cities_gen": "generation"}
    gen = db.query(mixed, where="task_kind = 'generation'")
    assert set(gen["task"]) == {"cities_gen"} and len(gen) == 2
    assert main(["results", str(mixed), "--where", "task_kind = 'generation'", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["task"], r["task_kind"]) for r in rows] == [("cities_gen", "generation")] * 2
    assert main(["results", str(mixed), "--format", "csv"]) == 0
    csv = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert sorted(set(zip(csv["task"], csv["task_kind"]))) == [("cities_gen", "generation"), ("toy", "classification")]
    assert main(["results", str(mixed), "--summary", "--where", "task_kind = 'generation'", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)  # the kind is a design key, not an outcome: --summary takes it
    assert {(r["task"], r["task_kind"]) for r in rows} == {("cities_gen", "generation")}
    over_tasks = summarize(runs_table(read_runs(mixed)), by=())
    assert set(over_tasks["task_kind"]) == {"classification,generation"}
    assert main(["results", str(mixed)]) == 0
    assert "task_kind" in capsys.readouterr().out  # the text table shows the kind when a generation run is in it
    assert main(["results", str(mixed), "--task", "toy"]) == 0
    assert "task_kind" not in capsys.readouterr().out


def test_an_index_of_schema_3_is_rebuilt_with_task_kind(mixed):
    db.query(mixed)
    con = sqlite3.connect(mixed / "runs.sqlite")  # what schema 3 wrote: no task_kind column
    con.executescript("ALTER TABLE results DROP COLUMN task_kind; UPDATE meta SET value = '3' WHERE key = 'schema';")
    con.close()
    assert set(db.query(mixed, where="task_kind = 'generation'")["task"]) == {"cities_gen"}
