"""The leaderboard's tie-aware ranking on fixture results with known answers, and its outputs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from w2sgen import aggregate
from w2sgen.benchmark.leaderboard import (
    COLUMNS,
    Board,
    Row,
    format_html,
    format_json,
    format_table,
    score,
    tie_groups,
)
from w2sgen.benchmark.suite import parse_suite

SEEDS = range(6)


def fixture_table(students: dict[str, float], gt: tuple[str, ...] = (), drop: dict[str, int] | None = None,
                  tasks: tuple[str, ...] = ("a", "b")) -> pd.DataFrame:
    """Per-run rows as ``aggregate.runs_table`` gives them: weak ~60%, ceiling ~80% (gap 20 points,
    interval ±3), each student at its accuracy; the seeds move every stage together (as a shared split
    does) and each student by a further ±0.3 points, so paired differences are tight."""
    rng = np.random.default_rng(0)
    rows = []
    for task in tasks:
        for seed in SEEDS:
            shift = rng.normal(0, 0.02)
            weak, ceiling = 0.60 + shift, 0.80 + shift
            for m, acc in students.items():
                if drop and seed >= len(SEEDS) - drop.get(m, 0):
                    continue
                rows.append({"run_id": f"{task}-{seed}", "task": task, "weak": "w", "strong": "s", "mode": "probe",
                             "method": m, "seed": seed, "weak_acc": weak, "ceiling_acc": ceiling,
                             "w2s_acc": acc + shift + rng.normal(0, 0.003), "gap_acc": ceiling - weak,
                             "gap_acc_lo": ceiling - weak - 0.03, "gap_acc_hi": ceiling - weak + 0.03,
                             "weak_auroc": np.nan, "ceiling_auroc": np.nan, "w2s_auroc": np.nan,
                             "majority_acc": 0.5, "uses_ground_truth": m in gt})
    return aggregate.apply_flags(pd.DataFrame(rows))


def test_tie_groups_follow_the_rule():
    ties = {("a", "b"), ("b", "c"), ("c", "d")}  # c ties with b but not with a, the leader of group 1
    ranks = tie_groups(["a", "b", "c", "d"], lambda leader, m: (leader, m) in ties)
    assert ranks == {"a": 1, "b": 1, "c": 2, "d": 2}  # c leads group 2; d ties with c
    assert tie_groups([], lambda a, b: True) == {}
    assert tie_groups(["x", "y"], lambda a, b: False) == {"x": 1, "y": 2}


def test_ranks_a_clear_winner_a_tie_and_a_loser():
    # PGR: winner 0.8, xent 0.5, tie 0.5 (+0.0025), loser 0.2
    t = fixture_table({"winner": 0.76, "xent": 0.70, "tie": 0.7005, "loser": 0.64})
    rows = {r.method: r for r in score(t, None, "xent", expected_runs=12)}
    assert [rows[m].rank for m in ("winner", "tie", "xent", "loser")] == [1, 2, 2, 3]
    assert all(r.ranked for r in rows.values())
    assert rows["winner"].pgr == pytest.approx(0.8, abs=0.02) and rows["loser"].pgr == pytest.approx(0.2, abs=0.02)
    assert rows["winner"].pgr_lo < rows["winner"].pgr < rows["winner"].pgr_hi
    assert rows["winner"].delta_pgr_lo > 0 and rows["loser"].delta_pgr_hi < 0
    assert rows["tie"].delta_pgr_lo <= 0 <= rows["tie"].delta_pgr_hi
    assert (rows["winner"].tasks_won, rows["tie"].tasks_won, rows["loser"].tasks_won) == (2, 0, 0)
    assert rows["xent"].delta_pgr == 0.0 and rows["winner"].acc == pytest.approx(0.76, abs=0.02)
    assert rows["winner"].gap == pytest.approx(0.2, abs=0.01) and rows["winner"].flag_reason is None


def test_ground_truth_incomplete_and_flagged_methods_are_not_ranked():
    t = fixture_table({"xent": 0.70, "oracle": 0.79, "partial": 0.75}, gt=("oracle",), drop={"partial": 2})
    rows = {r.method: r for r in score(t, None, "xent", expected_runs=12)}
    assert not rows["oracle"].ranked and rows["oracle"].rank is None and "ground truth" in rows["oracle"].note
    assert rows["oracle"].pgr is not None  # shown, marked, never ranked
    assert not rows["partial"].ranked and "8 of 12 runs" in rows["partial"].note
    assert rows["xent"].rank == 1
    flat = fixture_table({"xent": 0.70, "m": 0.71}).assign(ceiling_acc=lambda d: d["weak_acc"] + 0.005,
                                                          gap_acc=0.005, gap_acc_lo=-0.01, gap_acc_hi=0.02)
    rows = {r.method: r for r in score(aggregate.apply_flags(flat), None, "xent", expected_runs=12)}
    assert rows["m"].pgr is None and not rows["m"].ranked and rows["m"].note.startswith("PGR flagged")


def board() -> Board:
    s = parse_suite({"name": "s", "version": 1, "mode": "probe", "seeds": list(SEEDS), "pairs": [["w", "s"]],
                     "tasks": [{"task": "a", "source": "generated", "splits": {}},
                               {"task": "b", "source": "generated", "splits": {}}]})
    rows = score(fixture_table({"winner": 0.76, "xent": 0.70, "tie": 0.7005, "loser": 0.64}), None, "xent", 12,
                 walls={"xent": {"a-0": 2.0, "b-0": 2.0}, "winner": {"a-0": 3.0, "b-0": 5.0}})
    rows.append(Row(method="zero_shot", note="needs a decoder", available=False))
    return Board(s, "full", rows, 12)


def test_json_has_exactly_the_issues_keys():
    recs = json.loads(format_json(board()))
    issue = ["method", "suite", "suite_hash", "runs", "pgr", "pgr_lo", "pgr_hi", "delta_pgr", "delta_pgr_lo",
             "delta_pgr_hi", "acc", "tasks_won", "cost", "rank", "ranked"]  # the issue's list, written out
    assert list(COLUMNS) == issue and [list(r) for r in recs] == [issue] * len(recs)
    by = {r["method"]: r for r in recs}
    assert by["winner"]["rank"] == 1 and by["winner"]["ranked"] is True and by["winner"]["cost"] == 2.0
    assert by["zero_shot"]["pgr"] is None and by["zero_shot"]["ranked"] is False and by["zero_shot"]["rank"] is None
    assert {r["suite"] for r in recs} == {"s"} and len(by["xent"]["suite_hash"]) == 64


def test_table_and_html_show_gap_ranks_and_na():
    b = board()
    text = format_table(b)
    assert "n/a: needs a decoder" in text and "(reference)" in text and "20.0 [" in text
    assert "QUICK" not in text
    b.variant = "quick"
    assert "not comparable with full runs" in format_table(b) and b.records()[0]["suite"] == "s:quick"
    page = format_html(b)
    assert page.startswith("<!doctype html>") and "zero_shot" in page and "<script" not in page
