"""The one aggregation module: ratio of means, gaps and flags on every row, the stored run stats,
paired comparisons, ground-truth methods kept out of rankings, and the CLI / SQLite outputs."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pandas as pd
import pytest
from report.fake_runs import write_results, write_run

from w2sgen import aggregate, stats
from w2sgen.cli import main
from w2sgen.store import db
from w2sgen.store.results import read_runs

REQUIRED = ["task", "weak", "strong", "mode", "method", "n_seeds", "weak_acc", "ceiling_acc", "w2s_acc", "gap_acc",
            "gap_acc_lo", "gap_acc_hi", "pgr_acc", "pgr_acc_lo", "pgr_acc_hi", "flagged"]


def rows(weak, ceiling, w2s, method="xent", task="t", gt=False, weak_model="a") -> pd.DataFrame:
    """Per-seed rows of one cell (gap intervals wide enough to pass, as a run's own would be)."""
    return pd.DataFrame([{"run_id": f"{task}-{weak_model}-{method}-{s}", "task": task, "weak": weak_model,
                          "strong": "b", "mode": "probe",
                          "method": method, "seed": s, "weak_acc": w, "ceiling_acc": c, "w2s_acc": x,
                          "gap_acc": c - w, "gap_acc_lo": c - w - 0.01, "gap_acc_hi": c - w + 0.01,
                          "weak_auroc": np.nan, "ceiling_auroc": np.nan, "w2s_auroc": np.nan, "majority_acc": 0.5,
                          "uses_ground_truth": gt}
                         for s, (w, c, x) in enumerate(zip(weak, ceiling, w2s))])


def test_pgr_is_the_ratio_of_means_not_the_mean_of_ratios():
    """The issue's example, gaps .15/.15/.004 with gains .05/.05/.01, twice (6 seeds: with 3, the
    spread of the gaps over seeds leaves the mean gap's interval reaching 0, so it is flagged)."""
    weak = [0.60, 0.61, 0.62] * 2
    gaps, gains = (0.15, 0.15, 0.004) * 2, (0.05, 0.05, 0.01) * 2
    t = aggregate.apply_flags(rows(weak, [w + g for w, g in zip(weak, gaps)], [w + g for w, g in zip(weak, gains)]))
    s = aggregate.summarize(t).iloc[0]
    assert s["pgr_acc"] == pytest.approx(0.11 / 0.304)  # 0.36
    assert s["pgr_acc_lo"] < s["pgr_acc"] < s["pgr_acc_hi"] and not s["flagged"]
    assert s["n_flagged_runs"] == 2  # the 0.4-point runs are flagged on their own, yet count in the means
    three = aggregate.summarize(t[t["seed"] < 3]).iloc[0]
    assert three["flagged"] and "includes 0" in three["flag_reason"]
    old = aggregate.mean_of_ratios(t).iloc[0]
    assert old["old_pgr"] == pytest.approx((1 / 3 + 1 / 3 + 2.5) / 3)  # 1.06: what the old rule printed


def test_a_flagged_run_has_no_pgr_and_the_threshold_moves_the_flag():
    t = rows([0.70, 0.70], [0.73, 0.69], [0.72, 0.72])
    t.loc[1, ["gap_acc_lo", "gap_acc_hi"]] = [-0.03, 0.01]
    f = aggregate.apply_flags(t)
    assert f["flagged"].tolist() == [False, True] and np.isnan(f["pgr_acc"][1])
    assert f["pgr_acc"][0] == pytest.approx(2 / 3) and "under 2 points" in f["flag_reason"][1]  # negative gap
    strict = aggregate.apply_flags(t, threshold=0.05)
    assert strict["flagged"].all() and strict["pgr_acc"].isna().all()


def test_flagged_aggregate_has_null_pgr_and_bounds():
    t = aggregate.apply_flags(rows([0.70, 0.71, 0.69], [0.71, 0.70, 0.70], [0.705, 0.70, 0.70]))
    s = aggregate.summarize(t).iloc[0]
    assert s["flagged"] and "under 2 points" in s["flag_reason"]
    assert np.isnan(s["pgr_acc"]) and np.isnan(s["pgr_acc_lo"]) and np.isnan(s["pgr_acc_hi"])
    assert np.isfinite(s["gap_acc_lo"]) and s["gap_acc_lo"] <= 0 <= s["gap_acc_hi"]


def test_over_tasks_each_task_counts_once():
    a = rows([0.6, 0.6, 0.6, 0.6], [0.8, 0.81, 0.79, 0.8], [0.7, 0.7, 0.7, 0.7], task="a")
    a2 = rows([0.6, 0.6], [0.8, 0.8], [0.72, 0.72], task="a", weak_model="c")  # a second model pair of task a
    b = rows([0.5, 0.5], [0.9, 0.9], [0.9, 0.89], task="b")
    t = aggregate.apply_flags(pd.concat([a, a2, b], ignore_index=True))
    s = aggregate.summarize(t, by=()).iloc[0]
    # means of the task means (task a: the mean of its two pairs): weak .55, ceiling .85, w2s (.71 + .895) / 2
    assert s["pgr_acc"] == pytest.approx(((0.71 + 0.895) / 2 - 0.55) / 0.30)
    assert s["n_seeds"] == 8 and s["n_cells"] == 3


def test_paired_comparison_and_ranking_leave_ground_truth_methods_out():
    base = dict(weak=[0.6, 0.61, 0.6], ceiling=[0.8, 0.8, 0.81])
    t = pd.concat([rows(**base, w2s=[0.70, 0.71, 0.70], method="xent"),
                   rows(**base, w2s=[0.74, 0.76, 0.75], method="logconf"),
                   rows(**base, w2s=[0.79, 0.80, 0.80], method="probe_ladder", gt=True)], ignore_index=True)
    t = aggregate.apply_flags(t)
    cmp = aggregate.compare(t, "xent", by=("task",)).set_index("method")
    assert cmp.loc["logconf", "delta_pgr"] == pytest.approx((0.75 - 0.7033333) / (0.8033333 - 0.6033333), rel=1e-4)
    assert cmp.loc["logconf", "delta_acc"] == pytest.approx(0.0466667, rel=1e-4)
    assert cmp.loc["logconf", "significant"] == 1 and cmp.loc["logconf", "runs"] == 3
    line = aggregate.format_compare(cmp.reset_index().loc[lambda f: f["method"] == "logconf"]).splitlines()[0]
    assert line.startswith("t: logconf − xent on the same 3 runs: Δ w2s 4.7 [") and "above xent at 95%" in line
    assert "(gap 20.0 [" in line  # ΔPGR never without its gap
    tie = aggregate.apply_flags(pd.concat([rows(**base, w2s=[0.70, 0.72, 0.70], method="xent"),
                                           rows(**base, w2s=[0.71, 0.70, 0.71], method="logconf")]))
    assert "not told apart from xent" in aggregate.format_compare(aggregate.compare(tie, "xent", by=("task",)))
    summ = aggregate.summarize(t, by=("task",))
    rk = aggregate.ranking(cmp.reset_index(), summ).set_index("method")
    assert "probe_ladder" not in rk.index  # highest PGR, but it reads ground truth
    assert rk.loc["logconf", "best"] == 1 and rk.loc["logconf", "won"] == 1
    text = aggregate.format_summary(aggregate.summarize(t))
    assert "probe_ladder*" in text and "reads ground truth" in text and "logconf*" not in text


def test_run_stats_are_computed_for_old_runs_and_stored_for_new(tmp_path):
    old = write_run(tmp_path / "old", seed=0)
    new = write_run(tmp_path / "new", seed=0, with_stats=True, group_size=4)
    r_old = aggregate.run_stats(read_runs(tmp_path / "old")[0])
    r_new = json.loads((new / "run.json").read_text())["stats"]
    assert r_old["n_groups"] == r_old["n_test"] == 400  # no groups stored: each example is its own group
    assert r_new["n_groups"] == 100 and r_new["n_test"] == 400 and r_new["majority_acc"] >= 0.5
    assert r_old["gap_acc_lo"] < r_old["gap_acc"] < r_old["gap_acc_hi"]
    assert aggregate.run_stats(read_runs(tmp_path / "new")[0]) == r_new  # read back, not recomputed
    (old / "labels.parquet").unlink()
    bare = aggregate.run_stats(read_runs(tmp_path / "old")[0])
    assert bare["flagged"] and "no test labels" in bare["flag_reason"]


def test_finish_run_stores_the_gap_and_nulls_a_flagged_pgr():
    class Stage:
        def __init__(self, p):
            self.p = p

        def probs(self, split, ids):
            return self.p

    class Task:
        frame = pd.DataFrame({"id": [f"e{i}" for i in range(200)], "label": np.tile([0, 1], 100),
                              "group": np.arange(200) // 2})

    y = Task.frame["label"].to_numpy()
    right = np.eye(2)[y]
    wrong = np.eye(2)[1 - y]
    rec = {"weak": {"test": {}}, "ceiling": {"test": {}},
           "students": {"xent": {"test": {}, "pgr_acc": 0.4, "pgr_auroc": 0.3}}}
    same = {"weak": Stage(right), "ceiling": Stage(right), "student-xent": Stage(wrong)}
    out = aggregate.finish_run(rec, Task, {"test": np.arange(200)}, same)
    assert out["flagged"] and out["gap_acc"] == 0 and rec["students"]["xent"]["pgr_acc"] is None
    assert out["n_groups"] == 100 and out["majority_acc"] == 0.5 and rec["weak"]["test"]["ece"] == 0.0
    rec["students"]["xent"]["pgr_acc"] = 0.4
    half = np.where(np.arange(200)[:, None] < 100, right, wrong)
    out = aggregate.finish_run(rec, Task, {"test": np.arange(200)}, {**same, "weak": Stage(half)})
    assert not out["flagged"] and out["gap_acc"] == 0.5 and rec["students"]["xent"]["pgr_acc"] == 0.4
    b = rec["students"]["xent"]
    # the student is always wrong, the weak model half right, the ceiling always right: PGR −1 on test
    assert b["pgr_acc_lo"] < -1 < b["pgr_acc_hi"] and out["pgr_acc_ci"]["xent"] == [b["pgr_acc_lo"], b["pgr_acc_hi"]]
    assert "pgr_auroc" not in b  # a PGR of AUROCs has no gap, interval or flag of its own: not stored


def test_one_reliability_rule_for_runs_rows_and_the_sqlite_view(tmp_path):
    """A run's PGR is shown only with a bounded interval: per-run rows carry it (pgr_acc_lo/hi), and a
    row without one is flagged by apply_flags and by the SQLite view, whatever the threshold."""
    out = write_results(tmp_path / "out", seeds=(0, 1), tasks=("toy",), pairs=(("small", "large"),),
                        group_size=4, with_stats=True)
    t = aggregate.runs_table(read_runs(out))
    assert not t["flagged"].any() and "pgr_auroc" not in t
    assert ((t["pgr_acc_lo"] < t["pgr_acc"]) & (t["pgr_acc"] < t["pgr_acc_hi"])).all()
    cut = t.assign(pgr_acc_lo=[np.nan] + list(t["pgr_acc_lo"][1:]))  # a row whose PGR has no interval
    f = aggregate.apply_flags(cut)
    assert f["flagged"].tolist() == [True] + [False] * (len(t) - 1) and np.isnan(f["pgr_acc"][0])
    assert f["flag_reason"][0] == "no bounded PGR interval" and np.isnan(f["pgr_acc_hi"][0])
    assert aggregate.apply_flags(cut, threshold=0.0)["flagged"][0]
    q = db.query(out, where="pgr_acc > -100")
    assert len(q) == len(t) and (q["pgr_acc_lo"] < q["pgr_acc"]).all()
    con = sqlite3.connect(out / "runs.sqlite")
    con.execute("UPDATE results SET pgr_acc_lo = NULL WHERE method = 'xent' AND seed = 0")
    con.commit()
    con.close()
    for thr in (0.0, 0.02):
        q = db.query(out, threshold=thr).set_index(["method", "seed"])
        assert q.loc[("xent", 0), "flagged"] and np.isnan(q.loc[("xent", 0), "pgr_acc"]), thr
        assert not q.drop(("xent", 0))["flagged"].any(), thr
    assert len(db.query(out, where="pgr_acc > -100")) == len(t) - 1


def test_cli_summary_json_keys_and_sqlite_filters(tmp_path, capsys):
    out = write_results(tmp_path / "out", seeds=(0, 1, 2), tasks=("toy",), pairs=(("small", "large"),))
    write_run(out, task="flat", weak_acc=0.70, ceiling_acc=0.705, students={"xent": 0.70, "logconf": 0.72})
    assert main(["results", str(out), "--summary", "--format", "json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert all(set(REQUIRED) <= set(r) for r in got) and len(got) == 4
    assert not any("pgr_auroc" in r for r in got)  # no bare AUROC PGR
    flat = [r for r in got if r["task"] == "flat"]
    assert all(r["flagged"] and r["pgr_acc"] is None and r["pgr_acc_lo"] is None for r in flat)
    toy = [r for r in got if r["task"] == "toy"]
    assert all(not r["flagged"] and r["pgr_acc_lo"] < r["pgr_acc"] < r["pgr_acc_hi"] for r in toy)
    # a flagged run never passes a PGR filter; the threshold reaches the SQL columns
    t = db.query(out, where="pgr_acc > -100")
    assert "flat" not in set(t["task"]) and len(t) == 6
    assert len(db.query(out, where="flagged = 1")) == 2
    assert len(db.query(out, where="flagged = 1", threshold=0.5)) == 8
    assert main(["results", str(out), "--where", "pgr_acc > -100", "--gap-threshold", "50", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["results", str(out), "--gap-threshold", "-1"]) == 2
    assert "--gap-threshold" in capsys.readouterr().err
    assert main(["results", str(out), "--summary"]) == 0
    text = capsys.readouterr().out
    assert "flagged: gap under 2 points" in text and "ratio of the means" not in text and "PGR = (mean w2s" in text


def test_sqlite_index_of_an_older_schema_is_rebuilt(tmp_path):
    out = write_results(tmp_path / "out", seeds=(0,), tasks=("toy",), pairs=(("small", "large"),))
    con = sqlite3.connect(out / "runs.sqlite")
    con.executescript("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT); INSERT INTO meta VALUES ('schema', '1');"
                      "CREATE TABLE results (run_id TEXT, task TEXT, pgr_acc REAL);"
                      "CREATE TABLE runs (run_id TEXT PRIMARY KEY, path TEXT, mtime REAL);"
                      "INSERT INTO runs VALUES ('x', 'x', 1e12);")
    con.close()
    t = db.query(out)
    assert len(t) == 2 and {"gap_acc_lo", "flagged", "majority_acc"} <= set(t.columns)
    con = sqlite3.connect(out / "runs.sqlite")
    assert con.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()[0] == str(db.SCHEMA_VERSION)
    con.close()


def test_summaries_use_the_test_groups_when_predictions_are_there(tmp_path):
    out = write_results(tmp_path / "out", seeds=(0, 1, 2), tasks=("toy",), pairs=(("small", "large"),),
                        group_size=4, with_stats=True)
    runs = read_runs(out)
    preds = aggregate.Predictions(out)
    t = aggregate.runs_table(runs, preds=preds)
    with_groups = aggregate.summarize(t, preds=preds).set_index("method")
    seeds_only = aggregate.summarize(t).set_index("method")
    assert with_groups["grouped"].all() and not seeds_only["grouped"].any()
    assert with_groups["pgr_acc"].to_numpy() == pytest.approx(seeds_only["pgr_acc"].to_numpy())


def test_model_pairs_of_a_task_are_not_pooled_as_independent():
    """A task's second model pair that repeats the first seed by seed adds no information: the task's
    interval is the pair's, not √2 narrower; pairs with different seeds get the bound that holds
    whatever their correlation (never narrower than their mean variance allows)."""
    a = rows([0.60, 0.63, 0.61], [0.78, 0.80, 0.77], [0.66, 0.70, 0.65])
    twin = a.assign(weak="c", run_id=a["run_id"] + "-c")
    one = aggregate.summarize(aggregate.apply_flags(a), by=["task"]).iloc[0]
    both = aggregate.summarize(aggregate.apply_flags(pd.concat([a, twin], ignore_index=True)), by=["task"]).iloc[0]
    for col in ("gap_acc", "gap_acc_lo", "gap_acc_hi", "pgr_acc", "pgr_acc_lo", "pgr_acc_hi"):
        assert both[col] == pytest.approx(one[col]), col
    shifted = twin.assign(seed=twin["seed"] + 10)  # other seeds: no pairing, the dependent bound
    other = aggregate.summarize(aggregate.apply_flags(pd.concat([a, shifted], ignore_index=True)),
                                by=["task"]).iloc[0]
    assert other["gap_acc_hi"] - other["gap_acc_lo"] >= 0.99 * (one["gap_acc_hi"] - one["gap_acc_lo"])


def test_pooled_gap_interval_holds_its_level_when_pairs_share_the_weak_floor():
    """Simulation: two model pairs of one task share the weak model (its floor, seed by seed) and each
    seed's test set (100 groups of 4, intra-group correlation 0.2); seed-to-seed SD 3 points for the
    weak model, 1 for ceilings, 1.5 for students; 3 seeds, true gap 10 points, true PGR 0.3. Pooled
    as independent cells, the gap interval covered 0.887 of 300 experiments; seed by seed, 0.94."""
    rng = np.random.default_rng(1)
    truth = np.array([0.70, 0.80, 0.73, 0.80, 0.73])  # weak, ceiling A, w2s A, ceiling B, w2s B
    sd = np.array([0.03, 0.01, 0.015, 0.01, 0.015])
    e3, seeds, g, size, reps = np.eye(3), 3, 100, 4, 300
    hit_gap = hit_pgr = n_pgr = 0
    for _ in range(reps):
        p = truth + rng.normal(size=(seeds, 5)) * sd
        keys = [np.repeat(np.arange(g) + s * g, size) for s in range(seeds)]
        right = []
        for _s in range(seeds):
            u = np.where(rng.random((g * size, 5)) < np.sqrt(0.2), np.repeat(rng.random((g, 5)), size, axis=0),
                         rng.random((g * size, 5)))
            right.append(u < p[_s])
        cells = []
        for cols in ([0, 1, 2], [0, 3, 4]):  # the pairs (weak, A) and (weak, B): one weak floor
            runs = [stats.group_sums(keys[s], right[s][:, cols]) for s in range(seeds)]
            acc = np.stack([r.acc for r in runs])
            cells.append(aggregate.Cell(stats.seed_moments(acc, runs), [], True, "t", tuple(range(seeds)), acc, runs))
        m = aggregate._pool(cells)
        hit_gap += stats.contrast_interval(m, e3[1] - e3[0]).contains(0.10)
        pgr = stats.ratio_interval(m, e3[2] - e3[0], e3[1] - e3[0])
        if np.isfinite(pgr.lo):
            n_pgr += 1
            hit_pgr += pgr.contains(0.3)
    assert 0.925 <= hit_gap / reps <= 0.98
    assert n_pgr > 200 and 0.92 <= hit_pgr / n_pgr <= 0.98


def test_one_seed_aggregates_say_their_interval_holds_test_noise_only():
    one = aggregate.summarize(aggregate.apply_flags(rows([0.60], [0.80], [0.70])))
    three = aggregate.summarize(aggregate.apply_flags(rows([0.60, 0.61, 0.60], [0.80, 0.81, 0.79], [0.7, 0.7, 0.71])))
    assert one["test_noise_only"].all() and not three["test_noise_only"].any()
    text = aggregate.format_summary(one)
    assert f"1{aggregate.ONE_SEED}" in text and aggregate.ONE_SEED_NOTE in text
    assert aggregate.ONE_SEED not in aggregate.format_summary(three)


def test_a_summary_row_without_runs_says_why():
    t = aggregate.apply_flags(rows([0.60, 0.61], [0.80, 0.81], [np.nan, np.nan]))
    s = aggregate.summarize(t).iloc[0]
    assert s["flagged"] and "no run with" in s["flag_reason"] and np.isnan(s["pgr_acc"])
    text = aggregate.format_summary(aggregate.summarize(t))
    assert "flagged: no run with" in text and "nan" not in text


def test_summary_refuses_a_filter_on_outcomes_and_prints_the_filter(tmp_path, capsys):
    out = write_results(tmp_path / "out", seeds=(0, 1, 2), tasks=("toy",), pairs=(("small", "large"),))
    for where in ("pgr_acc > 0.3", "W2S_ACC > 0.5 AND seed < 2", "flagged = 0"):
        assert main(["results", str(out), "--summary", "--where", where]) == 2, where
        assert "selects runs on their outcomes" in capsys.readouterr().err
    assert main(["results", str(out), "--summary", "--where", "seed < 2"]) == 0
    text = capsys.readouterr().out
    assert text.rstrip().endswith("rows selected by --where 'seed < 2'") and "PGR = (mean w2s" in text
    assert main(["results", str(out), "--where", "pgr_acc > 0.3"]) == 0  # listing runs by outcome is fine
    assert "rows selected by --where 'pgr_acc > 0.3'" in capsys.readouterr().out


def test_constant_class_names_a_one_class_supervisor():
    """A weak model answering one class on a two-class test set is named (finish_run warns with it);
    any disagreement, a one-class test set or no predictions is not."""
    from w2sgen.aggregate import constant_class

    y = np.array([0, 1, 1, 0, 1])
    const = np.tile([0.2, 0.8], (5, 1))  # (N, K): class 1 everywhere, at any confidence
    assert constant_class(const, y) == 1
    mixed = const.copy()
    mixed[2] = [0.6, 0.4]
    assert constant_class(mixed, y) is None
    assert constant_class(const, np.ones(5, dtype=int)) is None
    assert constant_class(None, y) is None
