"""``w2s benchmark leaderboard``: one row per method, ranked with honest ties.

Per method, over the suite's runs (every number from :mod:`w2sgen.aggregate`):

* ``pgr`` [``pgr_lo``, ``pgr_hi``]: the suite's aggregate PGR, a ratio of means (over seeds, then
  model pairs, then tasks, each weighted equally) with its 95% Fieller interval; null when the
  gap is flagged (shown with the gap, its interval and the flag);
* ``delta_pgr`` [lo, hi]: ΔPGR against the reference (``xent``), paired over the same runs;
* ``acc``: the student's test accuracy (the same mean of means); ``tasks_won``: tasks on which the
  95% interval of its accuracy minus the reference's lies above 0; ``cost``: its students' wall
  time over the reference's, summed over the runs that trained both (``benchmark.json``).

Ranks (issue 17): sort the ranked methods by PGR; the first leads group 1; each next method joins
the current group when its ΔPGR against that group's leader has a 95% interval including 0, else
it starts the next group, which it leads. A method's rank is its group. Not ranked: methods that
read ground truth (``*``), methods missing runs, methods whose PGR is flagged; methods that cannot
run on the suite are listed as n/a with the reason.
"""

from __future__ import annotations

import hashlib
import html
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import aggregate
from ..aggregate import GT_MARK, Predictions, load_predictions
from ..config import RunConfig, SplitConfig, from_dict, to_dict
from ..errors import W2SError
from .manifest import Manifest
from .runner import method_dir
from .suite import SETTINGS, Suite

COLUMNS = ("method", "suite", "suite_hash", "runs", "pgr", "pgr_lo", "pgr_hi", "delta_pgr", "delta_pgr_lo",
           "delta_pgr_hi", "acc", "tasks_won", "cost", "rank", "ranked")
"""The keys of each method's object in ``--format json`` (exactly these)."""


@dataclass
class Row:
    """One method's line."""

    method: str
    runs: int = 0
    pgr: float | None = None
    pgr_lo: float | None = None
    pgr_hi: float | None = None
    delta_pgr: float | None = None
    delta_pgr_lo: float | None = None
    delta_pgr_hi: float | None = None
    acc: float | None = None
    tasks_won: int | None = None
    cost: float | None = None
    rank: int | None = None
    ranked: bool = False
    note: str = ""
    """Why the method is not ranked (or n/a: why it cannot run)."""
    available: bool = True
    """False: the method cannot run on the suite (n/a)."""
    uses_ground_truth: bool = False
    gap: float | None = None
    gap_lo: float | None = None
    gap_hi: float | None = None
    flag_reason: str | None = None


@dataclass
class Board:
    suite: Suite
    variant: str
    rows: list[Row]
    expected_runs: int
    dirs: list[Path] = field(default_factory=list)
    protocol: str = ""
    """w2sgen's training protocol of the results (the manifest's)."""
    recorded: dict[str, Any] = field(default_factory=dict)
    """Task -> the content its first run recorded (unfrozen tasks): boards of one suite hash over other
    hub content differ here."""

    @property
    def content_digest(self) -> str | None:
        """A short hash of the recorded fingerprints (None when the suite fixes every task's content)."""
        if not self.recorded:
            return None
        text = "\n".join(f"{t}:{self.recorded[t]['fingerprint']}" for t in sorted(self.recorded))
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    @property
    def suite_label(self) -> str:
        """The suite as the JSON's ``suite`` names it: ``name``, or ``name:quick`` (not comparable with full runs)."""
        return self.suite.name if self.variant == "full" else f"{self.suite.name}:{self.variant}"

    def records(self) -> list[dict[str, Any]]:
        """One object per method with exactly :data:`COLUMNS` (NaN as null)."""
        out = []
        for r in self.rows:
            rec = {"method": r.method, "suite": self.suite_label, "suite_hash": self.suite.hash}
            for k in COLUMNS[3:]:
                v = getattr(r, k)
                rec[k] = None if isinstance(v, float) and not math.isfinite(v) else v
            out.append(rec)
        return out


# --------------------------------------------------------------------------- reading results


class MergedPredictions(Predictions):
    """The predictions of one run id across the method directories of a benchmark: the floor and
    ceiling (which must agree) and every method's student, as one run."""

    def __init__(self, roots: Sequence[Path]):
        super().__init__(None)
        self.roots = list(roots)

    def get(self, run_id: str) -> Any:
        if run_id not in self._cache:
            merged = None
            for root in self.roots:
                if not (root / run_id / "run.json").is_file():
                    continue
                p = load_predictions(root / run_id, self.splits)
                if p is not None:
                    merged = p if merged is None else _merge(merged, p, root / run_id)
            self._cache[run_id] = merged
        return self._cache[run_id]


def _merge(a: Any, b: Any, where: Path) -> Any:
    for split, ids in a.ids.items():
        if split in b.ids and not (np.array_equal(ids, b.ids[split]) and np.array_equal(a.labels[split],
                                                                                       b.labels[split])):
            raise W2SError(f"{where}: its {split} examples differ from the same run of another method's directory; "
                           "the directories do not hold the same runs")
    for stage in ("weak", "ceiling"):
        for split, p in b.probs.get(stage, {}).items():
            q = a.probs.get(stage, {}).get(split)
            if q is not None and not np.array_equal(p, q):
                raise W2SError(f"{where}: its {stage} predictions differ from the same run of another method's "
                               "directory: the methods were not trained on the same floors and ceilings (another "
                               "stage cache or machine); run them into one directory with one cache")
    a.probs = {**b.probs, **a.probs}
    return a


def check_run(rec: dict[str, Any], suite: Suite, variant: str, recorded: dict[str, Any], where: str) -> None:
    """A W2SError unless the run is one of the suite's (task and content, pair, mode, seed, split
    recipe and shared settings)."""
    tasks, seeds = suite.variant(variant == "quick")
    labels = {t.label: t for t in tasks}
    name = rec["task"]["name"]
    bad = None
    if name not in labels:
        bad = f"task {name!r} is not one of the suite's ({', '.join(labels)})"
    else:
        t = labels[name]
        want = t.fingerprint or (recorded.get(t.task) or {}).get("fingerprint")
        cfg = rec.get("config", {})
        exp = json.loads(json.dumps(to_dict(from_dict(RunConfig, dict(suite.settings)))))
        if want is not None and rec["task"].get("fingerprint") != want:
            bad = f"task {name!r} has content {str(rec['task'].get('fingerprint'))[:16]}…, not the suite's {want[:16]}…"
        elif (rec["weak"]["name"], rec["strong"]["name"]) not in set(suite.pairs):
            bad = f"pair {rec['weak']['name']} -> {rec['strong']['name']} is not one of the suite's"
        elif rec["mode"] != suite.mode or rec["seed"] not in seeds:
            bad = f"mode {rec['mode']} / seed {rec['seed']} is not the suite's ({suite.mode}, seeds {seeds})"
        elif cfg.get("splits") != json.loads(json.dumps(to_dict(from_dict(SplitConfig, dict(t.splits))))):
            bad = "its split recipe is not the suite's"
        else:
            diff = [k for k in SETTINGS if cfg.get(k) != exp.get(k)]
            if diff:
                bad = f"its shared settings ({', '.join(diff)}) are not the suite's"
    if bad:
        raise W2SError(f"{where}: this run is not a run of suite {suite.title} ({variant}): {bad}. A benchmark "
                       "directory holds the suite's runs only")


@dataclass
class Collected:
    suite: Suite
    variant: str
    table: pd.DataFrame
    preds: MergedPredictions
    methods: dict[str, dict[str, Any]]
    not_run: dict[str, str]
    protocol: str = ""
    recorded: dict[str, Any] = field(default_factory=dict)
    """Task -> what the first run recorded, for tasks the suite leaves unfrozen."""


def collect(dirs: Sequence[str | Path]) -> Collected:
    """Read benchmark directories into one table (each method's rows from its own directory),
    refusing to mix suites, versions, variants or content."""
    if not dirs:
        raise W2SError("give at least one benchmark results directory")
    paths = [Path(d) for d in dirs]
    manifests = [Manifest.load(d) for d in paths]
    first = manifests[0]
    for m, d in zip(manifests[1:], paths[1:]):
        m.check_same(first, str(d))  # "d holds results of <m>, not of <first>"
    recorded: dict[str, Any] = {}
    for m, d in zip(manifests, paths):
        for task, rec in m.recorded.items():
            if task in recorded and recorded[task]["fingerprint"] != rec["fingerprint"]:
                raise W2SError(f"{d}: its first run recorded other content for task {task!r} "
                               f"({rec['fingerprint'][:16]}…) than {paths[0]} ({recorded[task]['fingerprint'][:16]}…): "
                               "the two were not run on the same data and never mix")
            recorded.setdefault(task, rec)
    suite = first.suite_of(paths[0])
    frames, roots = [], []
    methods: dict[str, dict[str, Any]] = {}
    not_run: dict[str, str] = {}
    from ..store.results import read_runs

    for m, d in zip(manifests, paths):
        not_run.update(m.not_run)
        for name, info in m.methods.items():
            if name in methods and name != suite.reference:
                raise W2SError(f"method {name!r} has results in two directories ({methods[name]['dir']} and {d}); "
                               "give each method once")
            root = method_dir(d, name)
            if name not in methods:
                methods[name] = {**info, "dir": str(d), "wall_s": dict(info.get("wall_s", {}))}
            else:
                methods[name]["wall_s"].update(info.get("wall_s", {}))
            if not root.is_dir():
                continue
            runs = read_runs(root)
            for rec in runs:
                check_run(rec, suite, first.variant, recorded, rec["_dir"])
            t = aggregate.runs_table(runs)
            frames.append(t[t["method"] == name])
            roots.append(root)
    for name in methods:
        not_run.pop(name, None)
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=aggregate.TABLE_COLUMNS)
    table = table.drop_duplicates(subset=aggregate.KEYS, keep="first").reset_index(drop=True)
    return Collected(suite, first.variant, table, MergedPredictions(roots), methods, not_run, first.protocol,
                     recorded)


# --------------------------------------------------------------------------- ranking


def tie_groups(order: Sequence[str], tied: Callable[[str, str], bool]) -> dict[str, int]:
    """Ranks by the issue's rule: ``order`` is sorted by PGR (best first); the first method leads
    group 1; each next method joins the current group when ``tied(leader, method)`` (its ΔPGR
    against the group's leader has an interval including 0), else starts the next group and leads it."""
    ranks: dict[str, int] = {}
    group, leader = 0, None
    for m in order:
        if leader is None or not tied(leader, m):
            group += 1
            leader = m
        ranks[m] = group
    return ranks


def interval_tie(table: pd.DataFrame, preds: Predictions | None) -> Callable[[str, str], bool]:
    """``tied(leader, m)``: the 95% interval of m's ΔPGR against ``leader`` on the same runs includes 0
    (an interval that cannot be bounded includes it)."""

    def tied(leader: str, m: str) -> bool:
        c = aggregate.compare(table[table["method"].isin([leader, m])], leader, by=(), preds=preds)
        if not len(c):
            return True
        lo, hi = float(c["delta_pgr_lo"].iloc[0]), float(c["delta_pgr_hi"].iloc[0])
        return not (math.isfinite(lo) and math.isfinite(hi)) or lo <= 0 <= hi

    return tied


def _f(v: Any) -> float | None:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def score(table: pd.DataFrame, preds: Predictions | None, reference: str, expected_runs: int,
          walls: dict[str, dict[str, float]] | None = None) -> list[Row]:
    """Each method's row of a suite's runs table (``aggregate.runs_table`` rows), ranked."""
    walls = walls or {}
    if not len(table):
        return []
    summary = aggregate.summarize(table, by=(), preds=preds).set_index("method")
    cmp = aggregate.compare(table, reference, by=(), preds=preds)
    cmp = cmp.set_index("method") if len(cmp) else None
    by_task = aggregate.compare(table, reference, by=("task",), preds=preds)
    won = by_task[by_task["significant"] > 0].groupby("method").size() if len(by_task) else pd.Series(dtype=int)
    rows = []
    for method, s in summary.iterrows():
        runs = int(table[table["method"] == method][aggregate.RUN_KEYS + ["seed"]].drop_duplicates().shape[0])
        r = Row(method=str(method), runs=runs, pgr=_f(s.get("pgr_acc")), pgr_lo=_f(s.get("pgr_acc_lo")),
                pgr_hi=_f(s.get("pgr_acc_hi")), acc=_f(s.get("w2s_acc")), gap=_f(s.get("gap_acc")),
                gap_lo=_f(s.get("gap_acc_lo")), gap_hi=_f(s.get("gap_acc_hi")),
                flag_reason=s.get("flag_reason") if s.get("flagged") else None,
                uses_ground_truth=bool(s.get("uses_ground_truth")))
        if method == reference:
            r.delta_pgr, r.delta_pgr_lo, r.delta_pgr_hi = (0.0, 0.0, 0.0) if r.pgr is not None else (None,) * 3
            r.tasks_won = 0
        elif cmp is not None and method in cmp.index:
            c = cmp.loc[method]
            r.delta_pgr, r.delta_pgr_lo, r.delta_pgr_hi = _f(c["delta_pgr"]), _f(c["delta_pgr_lo"]), _f(c["delta_pgr_hi"])
            r.tasks_won = int(won.get(method, 0))
        r.cost = _cost(walls.get(str(method), {}), walls.get(reference, {}))
        if r.uses_ground_truth:
            r.note = "reads ground truth (not weak-to-strong): never ranked"
        elif runs < expected_runs:
            r.note = f"incomplete: {runs} of {expected_runs} runs"
        elif r.pgr is None:
            r.note = f"PGR flagged: {r.flag_reason or 'no interval'}"
        else:
            r.ranked = True
        rows.append(r)
    ranked = sorted((r for r in rows if r.ranked), key=lambda r: (-(r.pgr or 0.0), r.method))
    ranks = tie_groups([r.method for r in ranked], interval_tie(table, preds))
    for r in rows:
        r.rank = ranks.get(r.method)
    return sorted(rows, key=lambda r: (r.rank is None, r.rank or 0, -(r.pgr if r.pgr is not None else -math.inf),
                                       r.method))


def _cost(m: dict[str, float], ref: dict[str, float]) -> float | None:
    """Σ method wall / Σ reference wall over the runs that trained both."""
    common = sorted(set(m) & set(ref))
    den = sum(ref[k] for k in common)
    return sum(m[k] for k in common) / den if common and den > 0 else None


def leaderboard(dirs: Sequence[str | Path]) -> Board:
    """The leaderboard of one or more benchmark results directories of one suite and variant."""
    c = collect(dirs)
    tasks, seeds = c.suite.variant(c.variant == "quick")
    expected = len(tasks) * len(c.suite.pairs) * len(seeds)
    walls = {m: info.get("wall_s", {}) for m, info in c.methods.items()}
    rows = score(c.table, c.preds, c.suite.reference, expected, walls)
    seen = {r.method for r in rows}
    for name, info in c.methods.items():
        if name not in seen:
            err = (info.get("error") or "no runs").strip().splitlines()
            last = err[-1].strip() if err else ""
            rows.append(Row(method=name, note=f"failed: {last[:200] + ('…' if len(last) > 200 else '')}",
                            uses_ground_truth=bool(info.get("uses_ground_truth"))))
    for name, reason in sorted(c.not_run.items()):
        rows.append(Row(method=name, note=reason, available=False))
    return Board(c.suite, c.variant, rows, expected, [Path(d) for d in dirs], c.protocol, c.recorded)


# --------------------------------------------------------------------------- output


def _iv(v: float | None, lo: float | None, hi: float | None, sign: bool = False) -> str:
    if v is None:
        return "–"
    f = (lambda x: f"{x:+.2f}") if sign else (lambda x: f"{x:.2f}")
    return f"{f(v)} [{f(lo)}, {f(hi)}]" if lo is not None and hi is not None else f"{f(v)} [?]"


def _gap(r: Row) -> str:
    if r.gap is None:
        return "–"
    b = f" [{100 * r.gap_lo:.1f}, {100 * r.gap_hi:.1f}]" if r.gap_lo is not None and r.gap_hi is not None else ""
    return f"{100 * r.gap:.1f}{b}" + (" flagged" if r.flag_reason else "")


def header(b: Board) -> list[str]:
    tasks, seeds = b.suite.variant(b.variant == "quick")
    lines = [f"benchmark {b.suite.title} · suite {b.suite.short_hash} · {b.variant} · {len(tasks)} tasks × "
             f"{len(b.suite.pairs)} pair{'s' if len(b.suite.pairs) > 1 else ''} × {len(seeds)} seeds = "
             f"{b.expected_runs} runs · {b.suite.mode} mode · reference {b.suite.reference} · "
             f"protocol {b.protocol or 'unrecorded'}"]
    if b.content_digest is not None:
        lines.append(f"content {b.content_digest}: the fingerprints the first run recorded for the "
                     f"{len(b.recorded)} task{'s' if len(b.recorded) > 1 else ''} the suite leaves unfrozen "
                     f"({', '.join(sorted(b.recorded))}); boards with another content digest ran on other data")
    if b.variant == "quick":
        lines.append("QUICK RUN (--quick): fewer tasks and seeds; not comparable with full runs of the suite")
    return lines


NOTES = ("PGR: ratio of means (seeds, then pairs, then tasks), 95% Fieller interval; gap = ceiling − weak in "
         "points with its 95% interval (flagged: under 2 points or the interval includes 0, no PGR). ΔPGR: "
         "against the reference on the same runs. won: tasks where the accuracy difference with the reference "
         "has a 95% interval above 0. cost: student wall time over the reference's, on runs that trained both. "
         "Rank: sorted by PGR; a method joins the group of the current leader when its ΔPGR against that "
         "leader has a 95% interval including 0 (tied), else it leads the next group.")


def format_table(b: Board) -> str:
    n_tasks = len(b.suite.variant(b.variant == "quick")[0])
    head = (f"{'rank':>4}  {'method':<22} {'runs':>4}  {'PGR [95%]':<20} {'ΔPGR vs ' + b.suite.reference + ' [95%]':<24}"
            f" {'acc':>6}  {'won':>5}  {'cost':>6}  {'gap pts [95%]':<22}")
    lines = [*header(b), "", head, "-" * len(head)]
    for r in b.rows:
        name = f"{r.method}{GT_MARK}" if r.uses_ground_truth else r.method
        rank = str(r.rank) if r.rank is not None else "–"
        if not r.available:
            lines.append(f"{rank:>4}  {name:<22} {'–':>4}  n/a: {r.note}")
            continue
        if not r.runs:
            lines.append(f"{rank:>4}  {name:<22} {0:>4}  {r.note}")
            continue
        delta = "(reference)" if r.method == b.suite.reference else _iv(r.delta_pgr, r.delta_pgr_lo, r.delta_pgr_hi, True)
        won = "–" if r.tasks_won is None or r.method == b.suite.reference else f"{r.tasks_won}/{n_tasks}"
        acc = f"{100 * r.acc:.1f}%" if r.acc is not None else "–"
        cost = f"{r.cost:.1f}x" if r.cost is not None else "–"
        pgr = _iv(r.pgr, r.pgr_lo, r.pgr_hi) if r.pgr is not None else "flagged"
        line = (f"{rank:>4}  {name:<22} {r.runs:>4}  {pgr:<20} {delta:<24} {acc:>6}  {won:>5}  {cost:>6}  "
                f"{_gap(r):<22}")
        lines.append(line.rstrip() + (f"  ({r.note})" if r.note else ""))
    lines += ["", NOTES]
    if any(r.uses_ground_truth for r in b.rows):
        lines.append(f"{GT_MARK} reads ground truth (not a weak-to-strong method; never ranked).")
    return "\n".join(lines)


def format_json(b: Board) -> str:
    return json.dumps(b.records(), indent=2)


def format_html(b: Board) -> str:
    """A self-contained HTML page: the header, the table and the notes."""
    e = html.escape
    n_tasks = len(b.suite.variant(b.variant == "quick")[0])
    cols = ["rank", "method", "runs", "PGR [95%]", f"ΔPGR vs {b.suite.reference} [95%]", "acc", "won", "cost",
            "gap pts [95%]", "note"]
    body = []
    for r in b.rows:
        name = f"{r.method}{GT_MARK}" if r.uses_ground_truth else r.method
        if not r.available:
            cells = ["–", name, "–", "n/a", "", "", "", "", "", r.note]
        else:
            cells = [str(r.rank) if r.rank is not None else "–", name, str(r.runs),
                     _iv(r.pgr, r.pgr_lo, r.pgr_hi) if r.pgr is not None else ("flagged" if r.runs else "–"),
                     "(reference)" if r.method == b.suite.reference else _iv(r.delta_pgr, r.delta_pgr_lo,
                                                                             r.delta_pgr_hi, True),
                     f"{100 * r.acc:.1f}%" if r.acc is not None else "–",
                     "–" if r.tasks_won is None or r.method == b.suite.reference else f"{r.tasks_won}/{n_tasks}",
                     f"{r.cost:.1f}x" if r.cost is not None else "–", _gap(r), r.note]
        body.append("<tr>" + "".join(f"<td>{e(c)}</td>" for c in cells) + "</tr>")
    heads = "".join(f"<th>{e(c)}</th>" for c in cols)
    title = e(header(b)[0])
    quick = "".join(f"<p class=quick>{e(x)}</p>" for x in header(b)[1:])
    return (f"<!doctype html><html><head><meta charset=utf-8><title>{e(b.suite.title)} leaderboard</title><style>"
            "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
            "padding:4px 8px;text-align:left}.quick{color:#b00;font-weight:bold}</style></head><body>"
            f"<h1>{e(b.suite.title)} leaderboard</h1><p>{title}</p>{quick}<table><thead><tr>{heads}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table><p>{e(NOTES)}</p></body></html>\n")


FORMATS = {"table": format_table, "json": format_json, "html": format_html}
