"""The dashboard page shell: one self-contained HTML file (plotly.js inlined once, no network).

A page is a header and a list of :class:`Section` s, each holding Plotly figures and/or ready
HTML (tables, notes). The figures are drawn by one inline script; when every ``Plotly.newPlot``
promise has resolved it writes a JSON report into the data block ``<script
type="application/json" id="render-report">`` (never drawn, never run): per figure, the SVG
points each scatter trace rendered and the data points of each trace; its ``data-state`` becomes
``rendered`` (or ``error``). Browser tests (and a curious user, in the developer tools) read that
instead of pixels.
"""
from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

REPORT_ID = "render-report"

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1250px; color: #222; }
header { border-bottom: 1px solid #ccc; margin-bottom: 1em; }
h1 { font-size: 1.5em; margin: 0 0 .3em 0; } h2 { font-size: 1.15em; margin: 1.6em 0 .3em 0; }
.facts { display: flex; flex-wrap: wrap; gap: .3em 1.6em; font-size: .92em; margin: .6em 0; }
.facts b { font-weight: 600; } .note { color: #555; font-size: .9em; margin: .3em 0; }
.running { background: #fff4d6; padding: .4em .7em; border-radius: 4px; display: inline-block; }
table.data { border-collapse: collapse; font-size: .88em; margin: .5em 0; }
table.data th, table.data td { border-bottom: 1px solid #e3e3e3; padding: .25em .7em; }
table.data th { background: #f4f4f4; text-align: left; } td.num { text-align: right; }
code { background: #f4f4f4; padding: 0 .25em; }
"""

# Runs after the figures: count what Plotly actually rendered, per figure and trace.
_REPORT_JS = """
function renderReport(ids) {
  const out = {};
  for (const id of ids) {
    const gd = document.getElementById(id), traces = {};
    (gd._fullData || []).forEach(t => {
      const n = t.x ? t.x.length : 0;
      traces[t.name || ('trace ' + t.index)] = {type: t.type, data_points: n, svg_points: 0};
    });
    gd.querySelectorAll('.scatterlayer .trace').forEach(el => {
      const t = el.__data__ && el.__data__[0] && el.__data__[0].trace;
      if (t) { traces[t.name || ('trace ' + t.index)].svg_points =
                 el.querySelectorAll('.points .point').length; }
    });
    out[id] = {svg: gd.querySelectorAll('svg.main-svg').length, traces: traces};
  }
  return out;
}
"""


@dataclass(frozen=True)
class Section:
    title: str
    figures: Sequence[tuple[str, Any]] = ()  # (div id, plotly Figure)
    html: str = ""  # trusted HTML drawn before the figures (tables, notes)
    note: str = ""  # plain text, escaped


@dataclass(frozen=True)
class Page:
    title: str
    facts: Sequence[tuple[str, str]] = ()  # header key/value pairs, plain text
    banner: str = ""  # plain text shown highlighted (e.g. "search still running")
    sections: Sequence[Section] = field(default_factory=tuple)
    refresh_s: float | None = None  # reload the page every N seconds (``--watch``)


def finite(x: Any) -> bool:
    try:
        return x is not None and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def fmt_macs(m: Any) -> str:
    """400.0M, 4.20G, 523.2k."""
    if not finite(m):
        return "-"
    m = float(m)
    return f"{m / 1e9:.2f}G" if m >= 1e9 else f"{m / 1e6:.1f}M" if m >= 1e6 else f"{m / 1e3:.1f}k"


def fmt_params(p: Any) -> str:
    """5.29M, 35.7k."""
    if not finite(p):
        return "-"
    return f"{float(p) / 1e6:.2f}M" if float(p) >= 1e6 else f"{float(p) / 1e3:.1f}k"


def fmt_num(x: Any, spec: str = ".4f") -> str:
    return format(float(x), spec) if finite(x) else "-"



def log_ticks(values: Sequence[float], *, pad: float = 1.5) -> dict[str, Any]:
    """Axis settings for a log MACs axis: ticks at 1, 2, 5 x 10^k labelled 100M, 200M, 1G."""
    finite_values = [v for v in values if finite(v) and v > 0]
    if not finite_values:
        return {"type": "log"}
    lo, hi = min(finite_values) / pad, max(finite_values) * pad
    ticks = [m * 10 ** e for e in range(int(math.floor(math.log10(lo))),
                                        int(math.ceil(math.log10(hi))) + 1) for m in (1, 2, 5)]
    ticks = [t for t in ticks if lo <= t <= hi]
    return {"type": "log", "range": [math.log10(lo), math.log10(hi)], "tickvals": ticks,
            "ticktext": [_short(t) for t in ticks]}


def _short(n: float) -> str:
    for div, unit in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= div:
            return f"{n / div:g}{unit}"
    return f"{n:g}"


def esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def table_html(columns: Sequence[tuple[str, str]], rows: Sequence[dict[str, Any]], *,
               numeric: Sequence[str] = (), table_id: str = "") -> str:
    """A plain HTML table; ``columns`` are (key, header), cells are already formatted."""
    head = "".join(f"<th>{esc(h)}</th>" for _, h in columns)
    body = "".join(
        "<tr>" + "".join(f"<td{' class=num' if k in numeric else ''}>{esc(r.get(k, ''))}</td>"
                         for k, _ in columns) + "</tr>" for r in rows)
    ident = f' id="{esc(table_id)}"' if table_id else ""
    return f'<table class="data"{ident}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def render(page: Page) -> str:
    """The whole page as one string: plotly.js inlined, figures as JSON, no external URL."""
    import plotly.io as pio
    from plotly.offline import get_plotlyjs

    figures: list[tuple[str, str]] = []
    parts = [f"<header><h1>{esc(page.title)}</h1>"]
    if page.banner:
        parts.append(f'<p class="running">{esc(page.banner)}</p>')
    parts.append('<div class="facts">' + "".join(
        f"<span><b>{esc(k)}</b> {esc(v)}</span>" for k, v in page.facts) + "</div></header>")
    for s in page.sections:
        parts.append(f"<section><h2>{esc(s.title)}</h2>")
        if s.note:
            parts.append(f'<p class="note">{esc(s.note)}</p>')
        parts.append(s.html)
        for div_id, fig in s.figures:
            parts.append(f'<div id="{esc(div_id)}" class="fig"></div>')
            figures.append((div_id, pio.to_json(fig, validate=False, pretty=False)))
        parts.append("</section>")
    parts.append(f'<script type="application/json" id="{REPORT_ID}" data-state="pending">'
                 '</script>')
    payload = "{" + ",".join(f"{json.dumps(i)}:{j}" for i, j in figures) + "}"
    payload = payload.replace("</", "<\\/")  # never close the script element early
    refresh = (f'<meta http-equiv="refresh" content="{int(page.refresh_s)}">'
               if page.refresh_s else "")
    script = (_REPORT_JS + f"const FIGURES = {payload};\n" + """
const report = document.getElementById('""" + REPORT_ID + """');
Promise.all(Object.entries(FIGURES).map(([id, fig]) =>
    Plotly.newPlot(id, fig.data, fig.layout, {displaylogo: false, responsive: true})))
  .then(() => { report.textContent = JSON.stringify(renderReport(Object.keys(FIGURES)))
                  .replace(/<\\//g, '<\\\\/');  // stays inside its script element
                report.dataset.state = 'rendered'; })
  .catch(e => { report.textContent = JSON.stringify({error: 'plotly failed: ' + e})
                   .replace(/<\\//g, '<\\\\/');
                 report.dataset.state = 'error'; });
""")
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">" + refresh +
            f"<title>{esc(page.title)}</title><style>{_STYLE}</style>"
            f"<script type=\"text/javascript\">{get_plotlyjs()}</script></head>\n<body>\n" +
            "\n".join(parts) + f"\n<script type=\"text/javascript\">{script}</script>\n"
            "</body></html>\n")


def write_page(text: str, out: Path) -> Path:
    """Atomically: a browser reloading the page mid-write sees the old page or the new one."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    return out
