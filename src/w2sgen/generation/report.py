"""The report's view of generation runs: per-method extras (intervals, what the student did with the
weak answers) and a section of example answers read from each run's ``generations/`` folder."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import pandas as pd

from .. import aggregate

EFFECTS = ("agreement", "agreement_weak_right", "agreement_weak_wrong", "fixed", "fixed_of_wrong", "broken")


def is_generation(rec: dict[str, Any]) -> bool:
    return rec.get("task_kind") == "generation"


def run_extras(rec: dict[str, Any], preds: Any, reference: str) -> dict[str, dict[str, Any]]:
    """Per method of a generation run: intervals over test groups (``aggregate.run_intervals``), the
    answer-level imitation facts of run.json and the accuracy gain over the weak model. No ECE or
    misfit: a checker's verdict is not a probability."""
    if preds is None or "test" not in preds.labels:
        return {}
    students = rec["stages"]["students"]
    present = [m for m in students if preds.probs.get(f"student-{m}", {}).get("test") is not None]
    ivs = aggregate.run_intervals(preds, present, reference)
    weak = rec["stages"]["weak"]["test"].get("acc")
    out = {}
    for m in present:
        test = students[m].get("test", {})
        row = {**ivs.get(m, {}), **{k: test.get(k) for k in EFFECTS if k in test}}
        if isinstance(weak, (int, float)) and isinstance(test.get("acc"), (int, float)):
            row["gain_acc"] = test["acc"] - weak
        out[m] = row
    return out


def examples_frame(run_dir: str | Path) -> pd.DataFrame | None:
    """One row per test example of a run: id, prompt, gold, and per stage its answer (column ``<stage>``)
    and verdict (``<stage>_right``); None when the run kept no generations."""
    d = Path(run_dir) / "generations"
    if not (d / "weak.parquet").is_file():
        return None
    out = None
    for f in sorted(d.glob("*.parquet")):
        g = pd.read_parquet(f)
        g = g[g["split"] == "test"]
        part = g[["id", "output", "right"]].rename(columns={"output": f.stem, "right": f"{f.stem}_right"})
        out = g[["id", "prompt", "gold"]].merge(part, on="id") if out is None else out.merge(part, on="id", how="left")
    return out


def pick(frame: pd.DataFrame, student: str, n: int = 8) -> pd.DataFrame:
    """Examples worth reading: weak answers the student corrected first, then weak mistakes it
    copied, then the rest (each in file order), ``n`` in all."""
    w, s = frame["weak_right"].astype(bool), frame.get(f"{student}_right", pd.Series(False, index=frame.index))
    s = s.fillna(False).astype(bool)
    order = pd.concat([frame[~w & s], frame[~w & ~s], frame[w]])
    return order.head(n)


def section(records: list[dict[str, Any]], max_runs: int = 6, n: int = 8) -> str:
    """HTML: for each generation run (at most ``max_runs``), ``n`` test examples with the gold answer
    and every stage's answer (✓ right, ✗ wrong), weak answers the first student corrected first."""
    esc = html.escape
    parts = ["<p>Test examples of generation runs: the prompt, the gold answer and each stage's answer "
             "(✓ right, ✗ wrong by the task's checker). Weak answers the student corrected come first, then weak "
             "mistakes it copied. Every answer of every split is in <code>&lt;run&gt;/generations/&lt;stage&gt;"
             ".parquet</code>.</p>"]
    runs = [r for r in records if is_generation(r)]
    for rec in runs[:max_runs]:
        frame = examples_frame(rec["_dir"])
        name = Path(rec["_dir"]).name
        if frame is None:
            parts.append(f'<div class="note">{esc(name)}: no generations kept.</div>')
            continue
        stages = [c for c in frame.columns if c not in ("id", "prompt", "gold") and not c.endswith("_right")]
        stages = ["weak", *[s for s in stages if s.startswith("student-")], "ceiling"]
        stages = [s for s in stages if s in frame.columns]
        students = [s for s in stages if s.startswith("student-")]
        shown = pick(frame, students[0] if students else "weak", n)
        head = "".join(f"<th class=\"s\">{esc(h)}</th>" for h in ["prompt", "gold", *stages])
        rows = []
        for r in shown.to_dict("records"):
            cells = [f'<td class="s">{esc(str(r["prompt"]))}</td>', f'<td class="s">{esc(str(r["gold"]))}</td>']
            for s in stages:
                mark = "✓" if r.get(f"{s}_right") else "✗"
                cells.append(f'<td class="s">{mark} {esc(str(r.get(s, "")))}</td>')
            rows.append(f"<tr>{''.join(cells)}</tr>")
        checker = esc(str(rec.get("task", {}).get("checker", "")))
        parts.append(f"<h3>{esc(name)} <small>(checker: {checker})</small></h3>"
                     f'<div class="wrap"><table><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>')
    if len(runs) > max_runs:
        parts.append(f"<p>… and {len(runs) - max_runs} more generation run(s).</p>")
    return "".join(parts)
