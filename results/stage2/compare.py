"""Compound against single-dimension scaling at the same measured MACs: mean +- std over seeds with
the verdict of ``compare_single.json`` (a run from before ``--compare-seeds``: one training each,
from the trial table or coefficients.json).
"""
from __future__ import annotations

import math
from typing import Any

from ..html import finite, fmt_num, log_ticks
from ..store import Run
from .data import Compare, Stage2Info
from .grid import kind_of


def _scaled(point: Any) -> str:
    """'depth x2.00, width x1.00, 317 px': a scaled network's multipliers and resolution."""
    res = point.get("resolution")
    return (f"depth x{fmt_num(point.get('depth'), '.2f')}, "
            f"width x{fmt_num(point.get('width'), '.2f')}, {fmt_num(res, '.0f')} px")


def _compare_seeds(summary: dict[str, Any]) -> Compare | None:
    rows = [r for r in summary.get("variants", []) if r.get("seeds")]
    if not rows:
        return None
    return Compare(kind=[str(r["kind"]) for r in rows],
                   accuracy=[float(r["accuracy_mean"]) for r in rows],
                   macs=[float(r["macs"]) for r in rows], label=[_scaled(r) for r in rows],
                   std=[float(r["accuracy_std"]) if finite(r.get("accuracy_std")) else math.nan
                        for r in rows],
                   seeds=[int(r["seeds"]) for r in rows],
                   verdict=[str(r.get("verdict") or "") for r in rows])


def compare_of(run: Run, coef: dict[str, Any] | None) -> Compare | None:
    summary = run.read_json("compare_single.json")
    if summary is not None:  # over seeds, at the same measured MACs
        return _compare_seeds(summary)
    done = run.completed()
    kinds = kind_of(done)
    single = done[kinds != "compound"] if "kind" in done else done.iloc[0:0]
    rows = [(str(r["kind"]), float(r["accuracy"]), float(r["macs"]), _scaled(r))
            for _, r in single.iterrows()]
    if not rows and coef and coef.get("compare_single"):
        rows = [(str(c["kind"]), float(c["accuracy"]), float(c["macs"]), _scaled(c))
                for c in coef["compare_single"]
                if finite(c.get("accuracy")) and finite(c.get("macs"))]
    if not rows:
        return None
    if coef and finite(coef.get("accuracy")) and finite(coef.get("macs_ratio")) \
            and finite(coef.get("base", {}).get("macs")):
        rows.append(("compound", float(coef["accuracy"]),
                     float(coef["macs_ratio"]) * float(coef["base"]["macs"]),
                     f"alpha {coef['alpha']:g} beta {coef['beta']:g} gamma {coef['gamma']:g}"))
    return Compare(kind=[r[0] for r in rows], accuracy=[r[1] for r in rows],
                   macs=[r[2] for r in rows], label=[r[3] for r in rows])


# ----------------------------------------------------------------------------- draw
def fig_compare(info: Stage2Info) -> Any:
    import plotly.graph_objects as go

    c = info.compare
    fig = go.Figure()
    for kind in dict.fromkeys(c.kind):
        idx = [i for i, k in enumerate(c.kind) if k == kind]
        error = None
        if c.std is not None and any(math.isfinite(c.std[i]) for i in idx):
            error = dict(type="data", visible=True,
                         array=[c.std[i] if math.isfinite(c.std[i]) else 0 for i in idx])
        hover = [c.label[i] + (f"<br>{c.seeds[i]} seed(s), mean +- std" if c.seeds else "")
                 + (f"<br>{c.verdict[i]}" if c.verdict and c.verdict[i] else "") for i in idx]
        fig.add_trace(go.Scatter(x=[c.macs[i] for i in idx], y=[c.accuracy[i] for i in idx],
                                 mode="markers+text", name=kind, text=[kind] * len(idx),
                                 textposition="top center", marker=dict(size=12),
                                 error_y=error, hovertext=hover))
    fig.update_layout(xaxis=dict(**log_ticks(c.macs, pad=1.2), title="MACs"),
                      yaxis=dict(title="accuracy"),
                      height=420, margin=dict(t=20))
    return fig


def compare_note(c: Compare) -> str:
    if not c.verdict:
        return "One training per network (a run from before --compare-seeds): no spread."
    lines = [f"{k}: {v}" for k, v in zip(c.kind, c.verdict) if v]
    n = max(c.seeds or [0])
    return (f"Mean +- std over {n} seed(s) at the same measured MACs (compare_single.json); "
            f"against compound, Welch's t: {'; '.join(lines)}.")
