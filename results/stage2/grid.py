"""The grid figure (EfficientNet Eq. 3): the complete compound points in (alpha, beta, gamma),
coloured by accuracy, with the constraint surface alpha * beta^2 * gamma^2 = 2 and the selected
point.
"""
from __future__ import annotations

import math
from typing import Any

from ..html import finite, fmt_num
from .data import TARGET_PRODUCT, Stage2Info, Surface


def kind_of(df: Any) -> Any:
    """Each row's scaling kind; a table without the column holds compound points only."""
    import pandas as pd

    return df["kind"].fillna("compound") if "kind" in df else pd.Series("compound", df.index)


def constraint_surface(alpha_range: tuple[float, float], beta_range: tuple[float, float], *,
                       n: int = 25, product: float = TARGET_PRODUCT) -> Surface:
    import numpy as np

    al = np.linspace(*alpha_range, n).tolist()
    be = np.linspace(*beta_range, n).tolist()
    gamma: list[list[float | None]] = []
    for b in be:
        row = [math.sqrt(product / (a * b * b)) for a in al]
        gamma.append([g if g >= 1.0 else None for g in row])
    return Surface(alpha=al, beta=be, gamma=gamma)


def axis_range(values: list[float], given: Any) -> tuple[float, float]:
    if isinstance(given, (list, tuple)) and len(given) == 2 and all(map(finite, given)):
        return float(given[0]), float(given[1])
    lo, hi = (min(values), max(values)) if values else (1.0, 2.0)
    return (lo, hi) if hi > lo else (lo - 0.05, hi + 0.05)


# ----------------------------------------------------------------------------- draw
def fig_grid(info: Stage2Info) -> Any:
    import plotly.graph_objects as go

    g, s = info.grid, info.surface
    hover = [f"alpha {a:.3f} beta {b:.3f} gamma {c:.3f}<br>alpha*beta^2*gamma^2 = {p:.3f}<br>"
             f"acc {acc:.4f}, MACs ratio {fmt_num(r, '.3f')}"
             for a, b, c, p, acc, r in zip(g.alpha, g.beta, g.gamma, g.product, g.accuracy,
                                           g.macs_ratio)]
    fig = go.Figure()
    fig.add_trace(go.Surface(x=s.alpha, y=s.beta, z=s.gamma, opacity=0.35, showscale=False,
                             colorscale=[[0, "#c7d7ee"], [1, "#c7d7ee"]],
                             name=f"alpha*beta^2*gamma^2 = {info.target_product:g}",
                             hoverinfo="name"))
    fig.add_trace(go.Scatter3d(x=g.alpha, y=g.beta, z=g.gamma, mode="markers", name="grid points",
                               marker=dict(color=g.accuracy, colorscale="Viridis", size=5,
                                           colorbar=dict(title="accuracy")),
                               hovertext=hover, hoverinfo="text"))
    if info.selected:
        a, b, c = info.selected
        fig.add_trace(go.Scatter3d(x=[a], y=[b], z=[c], mode="markers", name="selected",
                                   marker=dict(symbol="diamond", size=9, color="crimson")))
    fig.update_layout(height=600, margin=dict(t=40, l=0, r=0, b=0),
                      legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0),
                      scene=dict(xaxis_title="alpha (depth)", yaxis_title="beta (width)",
                                 zaxis_title="gamma (resolution)",
                                 camera=dict(eye=dict(x=1.7, y=1.7, z=0.9))))
    return fig
