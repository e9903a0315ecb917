"""Statistics of a fixture results directory, each plot, and the self-contained HTML report."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from report.fake_runs import write_results, write_run

from w2sgen.cli import main
from w2sgen.errors import W2SError
from w2sgen.report import build_report, plots
from w2sgen.report.data import collect

PLOTS = ["accuracy_vs_ceiling", "pgr_by_method", "training_curves", "agreement_split", "gain_vs_misfit"]


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("rep") / "out"
    write_results(out, seeds=(0, 1), tasks=("toy", "toy2"))
    # one run whose gap is tiny: flagged, kept out of aggregates
    write_run(out, task="flat", weak="small", strong="large", weak_acc=0.70, ceiling_acc=0.705,
              students={"xent": 0.70, "logconf": 0.71})
    return out


@pytest.fixture(scope="module")
def data(results):
    return collect(results, n_boot=200)


def test_collect_adds_intervals_flags_ece_and_diagnostics(data):
    t = data.table
    assert len(t) == 26 and not data.notes
    assert t[t["task"] == "flat"]["flagged"].all()
    ok = t[~t["flagged"]]
    assert (ok["pgr_acc_lo"] <= ok["pgr_acc"] + 1e-9).all() and (ok["pgr_acc"] <= ok["pgr_acc_hi"] + 1e-9).all()
    assert (ok["gap_acc_lo"] > 0).all() and t[t["flagged"]]["pgr_acc"].isna().all()
    assert not t[t["task"] == "toy"]["flagged"].any()
    for col in ("weak_ece", "w2s_ece", "agreement_weak_wrong", "fixed", "misfit_kl", "gain_xent"):
        assert np.isfinite(t[t["task"] == "toy"][col]).all(), col
    lc = t[t["method"] == "logconf"]
    assert np.isfinite(lc["delta_pgr"]).all() and t[t["method"] == "xent"]["delta_pgr"].isna().all()
    assert {c["stage"] for c in data.curves} == {"weak", "ceiling", "student-xent", "student-logconf"}


@pytest.fixture(scope="module")
def rendered(data, tmp_path_factory):
    d = tmp_path_factory.mktemp("plots")
    return d, {p.name: p for p in plots.render(data, d)}


@pytest.mark.parametrize("name", PLOTS)
def test_each_plot_is_drawn_from_the_fixture(rendered, name):
    d, got = rendered
    assert got[name].png.startswith(b"\x89PNG"), got[name].note
    assert (d / f"{name}.png").read_bytes() == got[name].png and len(got[name].png) > 1000
    assert (d / f"{name}.svg").read_text().lstrip().startswith(("<?xml", "<svg"))


def test_plots_the_data_cannot_support_are_skipped_with_a_note(tmp_path):
    out = tmp_path / "out"
    write_run(out, with_labels=False, students={"xent": 0.7})
    data = collect(out, n_boot=50)
    assert "no test labels" in data.notes[0]
    info = build_report(out, n_boot=50)
    # without labels the gap has no interval: the run is flagged, so no PGR to plot either
    assert set(info.skipped) == {"agreement_split", "gain_vs_misfit", "pgr_by_method"}
    assert "no agreement" in info.skipped["agreement_split"]
    assert not (out / "plots" / "gain_vs_misfit.png").exists() and (out / "plots" / "training_curves.png").exists()
    text = info.path.read_text()
    assert "not drawn" in text and "no test labels" in text and "single point" in text
    empty = collect(out, n_boot=50)
    empty.curves = []
    assert "no per-epoch losses" in plots.training_curves(empty).note


def test_report_is_one_self_contained_file(results, tmp_path):
    info = build_report(results, tmp_path / "r" / "report.html", n_boot=200)
    html = info.path.read_text()
    assert info.bytes == len(html.encode()) and not info.skipped
    assert html.count('src="data:image/png;base64,') == 5
    assert html.count("<table") == 6
    assert not re.search(r'(src|href)="(https?:)?//', html), "external resource"
    assert "<script>" in html and html.count("<script") == 1
    assert "flat__small__large__probe__seed0" in html and "flagged: gap under 2 points" in html
    assert sorted(p.name for p in info.plots) == sorted([f"{n}.png" for n in PLOTS] + [f"{n}.svg" for n in PLOTS])
    assert all(p.parent == tmp_path / "r" / "plots" for p in info.plots)
    assert '"alpha_max"' not in html and "&quot;lr&quot;: 0.003" in html  # configs, escaped
    assert "AUROC)" not in html  # no PGR of AUROCs: it has no gap, interval or flag of its own
    assert "1 seed (in a model pair): the interval holds the test sample" in html  # the task "flat" has one seed


def test_a_value_without_its_interval_says_so():
    """A number whose interval columns are empty (an unbounded PGR) is never printed bare."""
    import pandas as pd

    from w2sgen.report.html import table

    frame = pd.DataFrame({"pgr_acc": [0.4, 0.5], "lo": [0.1, float("nan")], "hi": [0.7, float("nan")]})
    out = table(frame, [("pgr_acc", "PGR")], intervals={"pgr_acc": ("lo", "hi")})
    assert "0.400 <small>[0.100, 0.700]</small>" in out and "0.500 <small>[no interval]</small>" in out


def test_cli_report_and_user_errors(tmp_path, capsys):
    res = tmp_path / "res"
    write_run(res, weak_acc=0.7, ceiling_acc=0.705)
    out = tmp_path / "cli.html"
    assert main(["report", str(res), "-o", str(out), "--n-boot", "100", "--gap-threshold", "0.1"]) == 0
    assert "wrote" in capsys.readouterr().err and out.is_file() and "0.1 points" in out.read_text()
    assert main(["report", str(tmp_path / "nope")]) == 2
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty")]) == 2
    assert "no runs" in capsys.readouterr().err
    with pytest.raises(W2SError):
        build_report(res, tmp_path / "x.html", n_boot=1)


def test_early_stopping_marker_sits_on_the_chosen_step(tmp_path):
    """The curve's stop is train.early_stop.selected: its epoch for probe heads (losses per epoch),
    its step for finetuned models (losses per optimizer step)."""
    probe = tmp_path / "probe"
    write_run(probe, students={"xent": 0.7, "early_stop": 0.72}, early_stop={"early_stop": {"epoch": 3, "step": 12}})
    c = {x["stage"]: x for x in collect(probe, n_boot=20).curves}
    assert c["student-early_stop"]["stop"] == 3 and c["student-early_stop"]["unit"] == "epoch"
    assert c["student-xent"]["stop"] is None
    ft = tmp_path / "ft"
    write_run(ft, students={"early_stop": 0.72}, epochs=40, mode="finetune",
              early_stop={"early_stop": {"step": 17, "index": 3}})
    data = collect(ft, n_boot=20)
    c = {x["stage"]: x for x in data.curves}
    assert c["student-early_stop"]["stop"] == 17 and c["student-early_stop"]["unit"] == "step"
    assert plots.training_curves(data).figure is not None


def test_methods_that_read_ground_truth_are_marked_and_not_ranked(tmp_path):
    out = tmp_path / "out"
    for seed in (0, 1, 2):
        write_run(out, seed=seed, students={"xent": 0.72, "probe_ladder": 0.84}, ground_truth=("probe_ladder",),
                  with_stats=True, group_size=4)
    info = build_report(out, n_boot=50)
    html = info.path.read_text()
    assert "probe_ladder*" in html and "read ground truth" in html
    assert "no correction for multiple comparisons" in html  # the ranking says what its wins are worth
    from w2sgen.report import summary_tables

    data = collect(out, n_boot=20)
    rk = summary_tables(data.table, data.preds, data.threshold, "xent")["ranking"]
    assert "probe_ladder" not in set(rk["method"])
