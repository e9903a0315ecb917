"""The results index: ``DIR/runs.sqlite``, one SQLite database per results directory.

The run folders (``DIR/<run>/run.json`` + predictions) stay the source of truth; the database
indexes them so that many runs and sweeps can share a directory and be queried:

    runs     (run_id, path, task, weak, strong, mode, seed, split_seed, created, wall_s, mtime,
              config JSON, record JSON)
    stages   (run_id, stage, method, key, cached, wall_s, train JSON)
    metrics  (run_id, stage, split, metric, value)            -- long format, every number
    results  (run_id, task, weak, strong, mode, method, seed, weak_acc, ..., gap_acc, gap_acc_lo,
              gap_acc_hi, flagged, pgr_acc, pgr_acc_lo, pgr_acc_hi, ..., uses_ground_truth, task_kind)
                                                              -- w2sgen.aggregate.TABLE_COLUMNS

``flagged`` and ``pgr_acc`` are stored for the default 2-point threshold, ``pgr_acc_lo`` /
``pgr_acc_hi`` (the run's PGR interval over test groups) whenever the gap interval excludes 0;
:func:`query` recomputes flag and PGR for another ``--gap-threshold`` by the same rule
(``stats.pgr_flag_reason``). A database written under another
schema version is rebuilt from the run folders.

Every write is one ``BEGIN IMMEDIATE`` transaction (WAL journal, busy timeout), so concurrent
writers in several processes serialize instead of failing, and a reader never sees half a run.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..aggregate import KEYS, NUMERIC, TABLE_COLUMNS
from ..errors import W2SError
from ..stats import GAP_THRESHOLD

DB_NAME = "runs.sqlite"
SCHEMA_VERSION = 4
"""4: ``results.task_kind`` (classification or generation)."""
TIMEOUT_S = 60.0
RESULT_KEYS = KEYS
TABLES = ("runs", "stages", "metrics", "results")
_TEXT = ("task", "weak", "strong", "mode", "method", "task_kind")
_INT = ("seed", "flagged", "uses_ground_truth")

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, path TEXT, task TEXT, weak TEXT, strong TEXT, mode TEXT, seed INTEGER,
    split_seed INTEGER, created TEXT, wall_s REAL, mtime REAL, config TEXT, record TEXT);
CREATE TABLE IF NOT EXISTS stages (
    run_id TEXT, stage TEXT, method TEXT, key TEXT, cached INTEGER, wall_s REAL, train TEXT,
    PRIMARY KEY (run_id, stage));
CREATE TABLE IF NOT EXISTS metrics (
    run_id TEXT, stage TEXT, split TEXT, metric TEXT, value REAL,
    PRIMARY KEY (run_id, stage, split, metric));
CREATE TABLE IF NOT EXISTS results (
    run_id TEXT, {", ".join(f"{c} {'TEXT' if c in _TEXT else 'INTEGER' if c in _INT else 'REAL'}" for c in TABLE_COLUMNS)},
    PRIMARY KEY (run_id, method));
CREATE INDEX IF NOT EXISTS results_task ON results (task, method);
"""


def db_path(out: str | Path) -> Path:
    return Path(out) / DB_NAME


@contextmanager
def connect(out: str | Path, write: bool = True) -> Iterator[sqlite3.Connection]:
    """A connection to ``DIR/runs.sqlite`` (created on first write); closed on exit."""
    path = db_path(out)
    if not path.parent.is_dir():
        raise W2SError(f"{path.parent}: no such results directory")
    con = sqlite3.connect(str(path), timeout=TIMEOUT_S, isolation_level=None)
    try:
        con.execute(f"PRAGMA busy_timeout = {int(TIMEOUT_S * 1000)}")
        if write:
            con.execute("PRAGMA journal_mode = WAL")
            with transaction(con):
                _migrate(con)
                for stmt in filter(str.strip, _SCHEMA.split(";")):
                    con.execute(stmt)
                con.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
        yield con
    except sqlite3.OperationalError as e:
        if "locked" in str(e) or "busy" in str(e):
            raise W2SError(f"{path}: {e} for over {TIMEOUT_S:.0f}s (another process holds it); the run "
                           f"folders are intact: `w2s results {path.parent}` indexes them later") from None
        raise W2SError(f"{path}: {e}; delete the file and run `w2s results {path.parent}` to rebuild it") from None
    except sqlite3.DatabaseError as e:
        raise W2SError(f"{path}: {e}; delete the file and run `w2s results {path.parent}` to rebuild it") from None
    finally:
        con.close()


def _migrate(con: sqlite3.Connection) -> None:
    """Drop the tables of a database written under another schema version (``sync`` then reindexes
    every run folder: the folders are the source of truth)."""
    try:
        row = con.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
    except sqlite3.OperationalError:  # a new database: no meta table yet
        return
    if row is not None and row[0] != str(SCHEMA_VERSION):
        for t in TABLES:
            con.execute(f"DROP TABLE IF EXISTS {t}")


@contextmanager
def transaction(con: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error): one writer at a time, all or nothing."""
    con.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def _sql_value(v: Any) -> Any:
    if isinstance(v, (bool, np.bool_)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return None if v != v else float(v)
    if isinstance(v, np.integer):
        return int(v)
    return v


def _rows(run_id: str, rec: dict[str, Any]) -> dict[str, list[tuple[Any, ...]]]:
    """The rows of one run record for the stages, metrics and results tables."""
    st = rec.get("stages", {})
    blocks = [("weak", None, st.get("weak", {})), ("ceiling", None, st.get("ceiling", {}))]
    blocks += [(f"student-{m}", m, b) for m, b in st.get("students", {}).items()]
    stages, metrics = [], []
    for name, method, b in blocks:
        stages.append((run_id, name, method, b.get("key"), int(bool(b.get("cached"))), _num(b.get("wall_s")),
                       json.dumps(b.get("train", {}), sort_keys=True)))
        for split in ("val", "test"):
            for k, v in (b.get(split) or {}).items():
                metrics.append((run_id, name, split, k, _num(v)))
        for k in ("pgr_acc", "pgr_acc_lo", "pgr_acc_hi", "final_loss"):
            if k in b:
                metrics.append((run_id, name, "test" if k.startswith("pgr") else "train", k, _num(b[k])))
    from ..aggregate import apply_flags, runs_table

    raw = runs_table([rec], threshold=0.0)  # PGR bounds of every row not flagged at any threshold
    table = apply_flags(raw).assign(pgr_acc_lo=raw["pgr_acc_lo"], pgr_acc_hi=raw["pgr_acc_hi"])
    results = [(run_id, *(_sql_value(v) for v in row)) for row in table[TABLE_COLUMNS].itertuples(index=False, name=None)]
    return {"stages": stages, "metrics": metrics, "results": results}


def _index(con: sqlite3.Connection, out: Path, run_dir: Path) -> None:
    """Replace the rows of one run folder (inside an open transaction)."""
    f = run_dir / "run.json"
    rec = json.loads(f.read_text())
    rec["_dir"] = str(run_dir)  # runs written before their stats: computed from the predictions
    run_id = run_dir.name
    for t in ("runs", "stages", "metrics", "results"):
        con.execute(f"DELETE FROM {t} WHERE run_id = ?", (run_id,))
    con.execute(
        "INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (run_id, os.path.relpath(run_dir, out), rec["task"]["name"], rec["weak"]["name"], rec["strong"]["name"],
         rec.get("mode"), rec.get("seed"), rec.get("split_seed"), rec.get("created"), _num(rec.get("wall_s")),
         f.stat().st_mtime, json.dumps(rec.get("config", {}), sort_keys=True), json.dumps(rec, sort_keys=True)),
    )
    rows = _rows(run_id, rec)
    con.executemany("INSERT INTO stages VALUES (?,?,?,?,?,?,?)", rows["stages"])
    con.executemany("INSERT OR REPLACE INTO metrics VALUES (?,?,?,?,?)", rows["metrics"])
    con.executemany(f"INSERT INTO results VALUES ({','.join('?' * (len(TABLE_COLUMNS) + 1))})", rows["results"])


def index_run(out: str | Path, run_dir: str | Path) -> None:
    """Index (or re-index) one run folder of ``out`` in one transaction."""
    out, run_dir = Path(out), Path(run_dir)
    with connect(out) as con, transaction(con):
        _index(con, out, run_dir)


def sync(out: str | Path) -> int:
    """Bring the index up to date with the run folders on disk; returns the number of runs changed.

    A folder is (re)indexed when its run.json is new or newer than its row; rows whose run.json is
    gone are removed.
    """
    out = Path(out)
    if not out.is_dir():
        raise W2SError(f"{out}: no such results directory")
    on_disk = {f.parent.name: f for f in out.glob("*/run.json") if not f.parent.name.startswith(".")}
    with connect(out) as con:
        known = dict(con.execute("SELECT run_id, mtime FROM runs").fetchall())
        stale = [r for r, f in on_disk.items() if known.get(r) is None or f.stat().st_mtime > known[r] + 1e-6]
        gone = [r for r in known if r not in on_disk]
        if not stale and not gone:
            return 0
        with transaction(con):
            for r in gone:
                for t in ("runs", "stages", "metrics", "results"):
                    con.execute(f"DELETE FROM {t} WHERE run_id = ?", (r,))
            for r in stale:
                try:
                    _index(con, out, on_disk[r].parent)
                except (OSError, ValueError, KeyError) as e:
                    raise W2SError(f"{on_disk[r]}: unreadable run record ({e}); delete that run folder "
                                   "and rerun it") from None
    return len(stale) + len(gone)


def _flagged_view(threshold: float) -> str:
    """The results table with ``flagged``, ``pgr_acc`` and its bounds recomputed for ``threshold`` (a
    fraction), by ``stats.pgr_flag_reason``: flagged when the gap is missing or under the threshold,
    its interval is missing or reaches 0, or the run's PGR has no bounded interval; a flagged row's
    PGR and bounds are NULL."""
    flag = (f"(gap_acc IS NULL OR gap_acc < {float(threshold)!r} OR gap_acc_lo IS NULL OR gap_acc_lo <= 0 "
            "OR (w2s_acc IS NOT NULL AND weak_acc IS NOT NULL AND (pgr_acc_lo IS NULL OR pgr_acc_hi IS NULL)))")
    pgr = ("pgr_acc", "pgr_acc_lo", "pgr_acc_hi")
    cols = [c for c in TABLE_COLUMNS if c not in ("flagged", *pgr)]
    return (f"SELECT run_id, {', '.join(cols)}, {flag} AS flagged, "
            f"CASE WHEN {flag} THEN NULL ELSE (w2s_acc - weak_acc) / gap_acc END AS pgr_acc, "
            + ", ".join(f"CASE WHEN {flag} THEN NULL ELSE {c} END AS {c}" for c in pgr[1:]) + " FROM results")


def query(out: str | Path, task: Sequence[str] | str | None = None, method: Sequence[str] | str | None = None,
          where: str | None = None, threshold: float = GAP_THRESHOLD) -> pd.DataFrame:
    """The per-run results table (``run_id`` + ``TABLE_COLUMNS``), filtered, from the index (synced first).

    ``task`` / ``method``: a name or several (comma-separated or a list); ``where``: an SQL
    expression over the table's columns, e.g. ``"pgr_acc > 0.3 AND seed < 2"``; ``flagged`` and
    ``pgr_acc`` in it follow ``threshold`` (a fraction), so a flagged run never passes ``pgr_acc > x``.
    """
    sync(out)
    clauses, params = [], []
    for col, val in (("task", task), ("method", method)):
        names = [v.strip() for v in (val.split(",") if isinstance(val, str) else val or []) if v.strip()]
        if names:
            clauses.append(f"{col} IN ({','.join('?' * len(names))})")
            params.extend(names)
    if where:
        clauses.append(f"({where})")
    sql = f"WITH r AS ({_flagged_view(threshold)}) SELECT run_id, {', '.join(TABLE_COLUMNS)} FROM r"
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    with connect(out, write=False) as con:
        con.execute("PRAGMA query_only = ON")
        try:
            cur = con.execute(sql, params)
        except (sqlite3.OperationalError, sqlite3.ProgrammingError, sqlite3.Warning) as e:
            raise W2SError(f"--where {where!r}: {e}; it is an SQL expression over the columns "
                           f"{', '.join(TABLE_COLUMNS)}, e.g. \"pgr_acc > 0.3 AND seed < 2\"") from None
        frame = pd.DataFrame(cur.fetchall(), columns=["run_id", *TABLE_COLUMNS])
    for col in NUMERIC:
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype(float)
    for col in ("flagged", "uses_ground_truth"):
        frame[col] = frame[col].fillna(0).astype(bool)
    frame["seed"] = frame["seed"].astype("int64")
    return frame.sort_values(RESULT_KEYS, ignore_index=True)


def read_table(out: str | Path, table: str) -> pd.DataFrame:
    """A whole index table (runs, stages, metrics or results) as a DataFrame, synced first."""
    if table not in ("runs", "stages", "metrics", "results"):
        raise W2SError(f"unknown index table {table!r}; use runs, stages, metrics or results")
    sync(out)
    with connect(out, write=False) as con:
        return pd.read_sql_query(f"SELECT * FROM {table}", con)
