"""Generation tasks through the CLI (finetune mode and methods chosen for them, show-task, list) and
the HTML report (their runs in the table, a section of example answers)."""

from __future__ import annotations

import json

from generation.fixtures import write_task

from w2sgen.cli import main


def test_show_task_shows_prompts_answers_and_the_checker(capsys):
    assert main(["show-task", "arithmetic", "-n", "2"]) == 0
    out = capsys.readouterr().out
    assert "kind: generation   checker: numeric" in out and "settings (gen.task_args): n=4000, steps=2, digits=2" in out
    assert "What is the result?\n  Answer:" in out and "  => " in out


def test_list_methods_names_those_of_generation_tasks(capsys):
    assert main(["list", "methods"]) == 0
    out = capsys.readouterr().out
    tail = out[out.index("Generation tasks"):]
    assert "xent" in tail and "zero_shot" in tail and "logconf" not in tail


def test_run_chooses_finetune_and_the_report_shows_example_answers(tmp_path, tiny_decoders, capsys):
    weak, strong = tiny_decoders
    task = write_task(tmp_path / "cities.jsonl")
    out = tmp_path / "out"
    sets = ["splits.n_weak_train=40", "splits.n_transfer=40", "splits.n_val=20", "splits.n_test=20",
            "splits.min_val=20", "splits.min_test=20", "finetune.epochs=2", "finetune.batch_size=8",
            "finetune.lr=0.03", "gen.max_new_tokens=3"]
    args = ["run", "--task", str(task), "--weak", str(weak), "--strong", str(strong), "--out", str(out),
            "--cache-dir", str(tmp_path / "cache")]
    assert main([*args, "--mode", "probe"]) == 2  # a user error naming the fix
    assert "finetune mode" in capsys.readouterr().err
    assert main([*args, *[a for s in sets for a in ("--set", s)]]) == 0
    (run_dir,) = [p for p in out.iterdir() if (p / "run.json").is_file()]
    rec = json.loads((run_dir / "run.json").read_text())
    assert rec["mode"] == "finetune" and rec["config"]["methods"] == ["xent", "zero_shot"]
    capsys.readouterr()
    assert main(["results", str(out), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["method"] for r in rows} == {"xent", "zero_shot"} and all("gap_acc" in r for r in rows)
    html = tmp_path / "report.html"
    assert main(["report", str(out), "-o", str(html), "--n-boot", "50"]) == 0
    text = html.read_text()
    assert "Generation tasks: example answers" in text and "the city of" in text and "checker: exact" in text
