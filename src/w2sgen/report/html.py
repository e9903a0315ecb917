"""One self-contained HTML page: inline PNGs, HTML tables sortable by a few lines of script,
and the runs' configs. No external resource is referenced, so it opens offline."""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from .plots import Plot

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1180px;color:#222;padding:0 16px}
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd;padding-bottom:4px}
table{border-collapse:collapse;margin:8px 0 16px;font-size:12.5px}
th,td{border:1px solid #ddd;padding:3px 7px;text-align:right;white-space:nowrap}
th{background:#f3f4f6;cursor:pointer;user-select:none}th:hover{background:#e5e7eb}
td.s,th.s{text-align:left}tr.flag td{color:#999}
.note{background:#fff7e6;border-left:3px solid #f0a020;padding:6px 10px;margin:6px 0}
figure{margin:12px 0 24px}figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:12.5px;color:#555;max-width:900px}
pre{background:#f6f8fa;padding:8px;overflow-x:auto;font-size:12px}
.wrap{overflow-x:auto;max-width:100%;margin:8px 0 16px;background:linear-gradient(to right,#fff 30%,rgba(255,255,255,0)),linear-gradient(to right,rgba(255,255,255,0),#fff 70%) 100% 0,radial-gradient(farthest-side at 0 50%,rgba(0,0,0,.25),rgba(0,0,0,0)),radial-gradient(farthest-side at 100% 50%,rgba(0,0,0,.25),rgba(0,0,0,0)) 100% 0;background-repeat:no-repeat;background-size:40px 100%,40px 100%,14px 100%,14px 100%;background-attachment:local,local,scroll,scroll}
.wrap table{margin:0}.wrap td:first-child{position:sticky;left:0;background:#fff}.wrap th:first-child{position:sticky;left:0}
.wrap::-webkit-scrollbar{height:10px}.wrap::-webkit-scrollbar-thumb{background:#b8bcc4;border-radius:5px}.wrap::-webkit-scrollbar-track{background:#f1f2f4}
"""
# Wide tables scroll inside their .wrap (never past the page's edge): the scrollbar is always drawn
# (styled, so overlay-scrollbar systems show it too), a shadow marks the side with hidden columns,
# and the first column stays in view.

# click a header to sort by it (numbers numerically, from data-v when present); again to reverse.
# Then it records on <body> what the browser test checks: tables wider than their box (scrolling),
# tables whose last column cannot be scrolled into view (cut), a page wider than the window (overflow).
SCRIPT = """
document.querySelectorAll('table.sortable th').forEach(function(th){th.addEventListener('click',function(){
var t=th.closest('table'),b=t.tBodies[0],i=th.cellIndex,d=th.dataset.dir==='a'?-1:1;th.dataset.dir=d>0?'a':'d';
Array.from(b.rows).sort(function(x,y){var p=x.cells[i].dataset.v||x.cells[i].textContent,q=y.cells[i].dataset.v||y.cells[i].textContent,
m=parseFloat(p),n=parseFloat(q);return (isNaN(m)||isNaN(n)?p.localeCompare(q):m-n)*d;}).forEach(function(r){b.appendChild(r);});});});
document.body.dataset.scrolling=Array.from(document.querySelectorAll('.wrap')).filter(function(w){return w.scrollWidth>w.clientWidth+1;}).length;
document.body.dataset.cut=Array.from(document.querySelectorAll('.wrap')).filter(function(w){var t=w.querySelector('th:last-child'),x=w.scrollLeft;w.scrollLeft=w.scrollWidth;var r=t&&t.getBoundingClientRect().right>w.getBoundingClientRect().right+1;w.scrollLeft=x;return r;}).length;
document.body.dataset.overflow=document.documentElement.scrollWidth>document.documentElement.clientWidth+1?'1':'0';
document.body.dataset.ready='1';
window.addEventListener('load',function(){document.body.dataset.images=Array.from(document.images).filter(function(i){return i.naturalWidth>0;}).length;});
"""

TEXT_COLS = {"run_id", "task", "weak", "strong", "mode", "method", "reference", "flagged"}


def esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def fmt(v: Any, pct: bool = False) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    if isinstance(v, (bool,)):
        return "yes" if v else ""
    if isinstance(v, float):
        return f"{100 * v:.1f}" if pct else f"{v:.3f}"
    return str(v)


def table(frame: pd.DataFrame, columns: Sequence[tuple[str, str]], pct: set[str] = frozenset(),
          intervals: dict[str, tuple[str, str]] | None = None, flag_col: str | None = None,
          reasons: dict[str, str] | None = None) -> str:
    """An HTML table of ``frame``: ``columns`` is [(column, header)]; ``intervals`` maps a column
    to its (lo, hi) columns, shown as ``v [lo, hi]``; percentages for columns in ``pct``;
    ``reasons`` maps a column to the column that says why it is empty (e.g. a flagged PGR)."""
    intervals = intervals or {}
    reasons = reasons or {}
    head = "".join(f'<th class="{"s" if c in TEXT_COLS else ""}">{esc(h)}</th>' for c, h in columns)
    rows = []
    for r in frame.to_dict("records"):
        cells = []
        for c, _ in columns:
            v = r.get(c)
            text = fmt(v, c in pct)
            if c in intervals and text != "–":
                lo, hi = (fmt(r.get(k), c in pct) for k in intervals[c])
                text += f" <small>[{lo}, {hi}]</small>" if lo != "–" and hi != "–" else " <small>[no interval]</small>"
            if text == "–" and c in reasons and r.get(reasons[c]):
                text = f"<small>flagged: {esc(r[reasons[c]])}</small>"
            num = v if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None
            attr = f' data-v="{num}"' if num is not None else ""
            cls = ' class="s"' if c in TEXT_COLS else ""
            cells.append(f"<td{cls}{attr}>{text}</td>")
        flag = ' class="flag"' if flag_col and r.get(flag_col) else ""
        rows.append(f"<tr{flag}>{''.join(cells)}</tr>")
    return (f'<div class="wrap"><table class="sortable"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>")


def figure(p: Plot) -> str:
    if not p.png:
        return f'<div class="note"><b>{esc(p.title)}</b>: not drawn — {esc(p.note)}.</div>'
    b64 = base64.b64encode(p.png).decode("ascii")
    note = f" <i>Note: {esc(p.note)}.</i>" if p.note else ""
    return (f'<figure id="plot-{esc(p.name)}"><img alt="{esc(p.title)}" src="data:image/png;base64,{b64}">'
            f"<figcaption><b>{esc(p.title)}.</b> {esc(p.caption)}{note}</figcaption></figure>")


def configs(records: list[dict[str, Any]]) -> str:
    """Each distinct run config once (seeds merged), with the runs that used it."""
    groups: dict[str, list[str]] = {}
    for r in records:
        cfg = dict(r.get("config", {}))
        cfg.pop("seeds", None)
        groups.setdefault(json.dumps(cfg, indent=2, sort_keys=True, default=str), []).append(
            Path(r["_dir"]).name)
    parts = []
    for i, (cfg, runs) in enumerate(groups.items()):
        parts.append(f"<details{' open' if i == 0 else ''}><summary>config {i + 1}: {len(runs)} run(s) — "
                     f"{esc(', '.join(runs[:4]))}{' …' if len(runs) > 4 else ''}</summary><pre>{esc(cfg)}</pre></details>")
    return "".join(parts) or "<p>no runs</p>"


def page(title: str, sections: list[tuple[str, str, str]], header: str) -> str:
    """The whole document; ``sections`` is [(id, heading, inner HTML)]."""
    body = "".join(f'<section id="{esc(sid)}"><h2>{esc(h)}</h2>{content}</section>' for sid, h, content in sections)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style></head>'
            f"<body><h1>{esc(title)}</h1>{header}{body}<script>{SCRIPT}</script></body></html>\n")
