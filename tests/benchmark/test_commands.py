"""The ``w2s benchmark`` commands: list, show, run (and --dry-run), leaderboard in its three formats."""

from __future__ import annotations

import json

from w2sgen.benchmark.leaderboard import COLUMNS
from w2sgen.benchmark.suite import load_suite
from w2sgen.cli import main


def test_list_names_the_shipped_suites_with_their_hashes(capsys):
    from w2sgen.benchmark.suite import load_suite

    assert main(["benchmark", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("cpu-v1", "paper-nlp-v1"):
        assert name in out and load_suite(name).short_hash in out


SHIPPED = {"cpu-v1": "784fc6d9b6d265c15ea016ac08a6113b20f0e865729e15a45f80f13ccc73c343",
           "paper-nlp-v1": "0e31b6fc81d7658496af8a7e5ee77dff934ba3b96564c7b3ad40ead25216b8f0"}
"""The content hashes of the shipped suites: a suite's hash is its identity, and published results carry it."""


def test_shipped_suites_keep_their_hashes():
    from w2sgen.benchmark.suite import load_suite

    for name, want in SHIPPED.items():
        assert load_suite(name).hash == want, (
            f"suite {name} changed its content: a published suite is frozen. Put the change in a new version "
            f"(a new file, e.g. {name.rsplit('-v', 1)[0]}-v2.yaml, with version bumped), not in {name}")


def test_show_describes_a_suite_and_plans_a_run(tiny_suite, tmp_path, capsys):
    assert main(["benchmark", "show", str(tiny_suite), "--cache-dir", str(tmp_path / "cache")]) == 0
    out = capsys.readouterr().out
    assert "suite tiny v1" in out and "seeds: 0, 1" in out and "toy" in out
    assert "runs: 1 tasks x 1 pairs x 2 seeds = 2 per method" in out and "planned: 2 runs" in out


def test_unknown_suite_is_a_clear_error(capsys):
    assert main(["benchmark", "show", "cpu-v9"]) == 2
    assert "unknown suite 'cpu-v9'" in capsys.readouterr().err


def test_run_dry_run_then_run_then_leaderboard(tiny_suite, tmp_path, capsys):
    out, cache = tmp_path / "out", tmp_path / "cache"
    args = ["benchmark", "run", str(tiny_suite), "--methods", "logconf,few_shot", "--out", str(out),
            "--cache-dir", str(cache)]
    assert main([*args, "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "methods: xent, logconf" in text and "n/a: few_shot" in text and "matches the suite" in text
    # the toy task's 120 examples: the weak model embeds all four splits, the strong one transfer, val, test
    suite = load_suite(tiny_suite)
    weak, strong = suite.pairs[0]
    n_strong = len(_strong_texts(suite))
    assert 80 <= n_strong < 120  # two seeds' transfer, val and test: 80 each, overlapping
    assert f"embedding: {weak}: 120 texts, 120 not in the activation cache" in text
    assert f"embedding: {strong}: {n_strong} texts, {n_strong} not in the activation cache" in text
    assert "no time estimate" in text
    assert not out.exists()  # a dry run writes nothing
    assert main(args) == 0
    captured = capsys.readouterr()
    assert main([*args, "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "embedding:" not in text and "from an empty stage cache: about" in text  # every stage cached
    assert "rank  method" in captured.out and "logconf" in captured.out
    f = tmp_path / "board.json"
    assert main(["benchmark", "leaderboard", str(out), "--format", "json", "-o", str(f)]) == 0
    recs = json.loads(f.read_text())
    assert [list(r) for r in recs] == [list(COLUMNS)] * 3
    assert {r["method"]: r["runs"] for r in recs} == {"xent": 2, "logconf": 2, "few_shot": 0}
    assert main(["benchmark", "leaderboard", str(out), "--format", "html", "-o", str(tmp_path / "b.html")]) == 0
    assert (tmp_path / "b.html").read_text().startswith("<!doctype html>")
    assert main(["benchmark", "leaderboard", str(tmp_path)]) == 2
    assert "not a benchmark results directory" in capsys.readouterr().err


def _strong_texts(suite) -> set[str]:
    """The texts of transfer, val and test over the suite's seeds (what its strong model embeds)."""
    from w2sgen.benchmark.content import load
    from w2sgen.config import SplitConfig, from_dict
    from w2sgen.tasks.splits import make_splits

    (t,) = suite.tasks
    task = load(t, None, suite)
    text = task.frame["text"].to_numpy()
    out: set[str] = set()
    for seed in suite.seeds:
        sp = make_splits(task, from_dict(SplitConfig, dict(t.splits)), seed)
        for name in ("transfer", "val", "test"):
            out.update(text[sp[name]])
    return out


def test_paper_nlp_v1_dry_run_works_offline(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "paper"
    assert main(["benchmark", "run", "paper-nlp-v1", "--methods", "xent,logconf", "--out", str(out),
                 "--dry-run", "--cache-dir", str(tmp_path / "cache")]) == 0
    text = capsys.readouterr().out
    assert "benchmark paper-nlp-v1 v1" in text and "methods: xent, logconf" in text
    assert "22 tasks x 2 pairs x 3 seeds = 132 per method" in text
    assert "22 of 22 tasks cannot be planned here" in text and "the Hugging Face hub: facebook/anli" in text
    assert not out.exists()
