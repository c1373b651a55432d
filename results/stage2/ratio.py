"""The family's measured MACs ratio against 2^phi, with each member's deviation written out (the
paper's ceil rounding makes B1 2.55x B0).
"""
from __future__ import annotations

import math
from typing import Any

from ..html import finite
from .data import Ratio, Stage2Info


def ratio_of(family: Any, coef: dict[str, Any] | None) -> Ratio | None:
    if family is None or not len(family):
        return None
    fam = family.sort_values("phi")
    base = (coef or {}).get("base", {}).get("macs")
    if not finite(base):
        zero = fam[fam["phi"] == 0]
        base = zero["macs"].iloc[0] if len(zero) else None
    if not finite(base):
        return None
    product = (coef or {}).get("product")
    phi = [float(x) for x in fam["phi"]]
    paper: list[float | None] = [None] * len(phi)
    if "paper_macs" in fam and (fam["phi"] == 0).any():
        b0 = fam.loc[fam["phi"] == 0, "paper_macs"].iloc[0]
        if finite(b0):
            paper = [float(m) / float(b0) if finite(m) else None for m in fam["paper_macs"]]
    rounding = fam["rounding"].iloc[0] if "rounding" in fam and len(fam) else None
    return Ratio(phi=phi, measured=[float(m) / float(base) for m in fam["macs"]],
                 formula=[float(product) ** f if finite(product) else math.nan for f in phi],
                 two_phi=[2.0 ** f for f in phi], paper=paper,
                 rounding=rounding if isinstance(rounding, str) else None)


def ratio_note(r: Ratio) -> str:
    """'phi 1: x2.553 vs 2 (+27.7%); ...' and why the members deviate."""
    parts = [f"phi {p:g}: x{m:.3f} vs {t:g} ({v - 1:+.1%})"
             for p, m, t, v in zip(r.phi, r.measured, r.two_phi, r.vs_nominal) if p]
    if not parts:
        return ""
    how = {"paper": "the paper's depth rounding (ceil of depth x repeats, so a one-block stage "
                    "doubles at phi 1); gridsearch --rounding nearest picks each member's "
                    "rounding to land nearest 2^phi",
           "nearest": "what is left after rounding each member's depth to land nearest 2^phi "
                      "(--rounding nearest)"}
    why = how.get(r.rounding or "", "channel, repeat and resolution rounding")
    return (f"Measured MACs of each member over the base's, against 2^phi: {'; '.join(parts)}. "
            f"The gap is {why}.")


# ----------------------------------------------------------------------------- draw
def fig_ratio(info: Stage2Info) -> Any:
    import plotly.graph_objects as go

    r = info.ratio
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=r.phi, y=r.two_phi, mode="lines", name="2^phi",
                             line=dict(dash="dash", color="black")))
    if any(math.isfinite(f) for f in r.formula):
        fig.add_trace(go.Scatter(x=r.phi, y=r.formula, mode="lines",
                                 name="(alpha beta^2 gamma^2)^phi", line=dict(color="#999")))
    if any(p is not None for p in r.paper):
        fig.add_trace(go.Scatter(x=r.phi, y=r.paper, mode="markers", name="paper B{phi} / B0",
                                 marker=dict(symbol="square-open", size=10)))
    fig.add_trace(go.Scatter(x=r.phi, y=r.measured, mode="lines+markers",
                             name="measured MACs / base MACs", marker=dict(size=9)))
    fig.update_layout(yaxis=dict(type="log", title="MACs ratio to the base"),
                      xaxis=dict(title="phi"), height=420, margin=dict(t=20))
    return fig
