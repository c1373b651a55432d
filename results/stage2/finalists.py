"""The finalists (the top grid points retrained over seeds): coefficients.json's finalists block as
the grid search wrote it, mean +- std beside the grid's single training, the chosen point marked.
"""
from __future__ import annotations

import math
from typing import Any

from ..html import finite
from .data import Finalists, Stage2Info


def finalists_of(coef: dict[str, Any] | None) -> Finalists | None:
    fin = (coef or {}).get("finalists")
    if not fin or not fin.get("rows"):
        return None
    rows = fin["rows"]

    def num(v: Any) -> float:
        return float(v) if finite(v) else math.nan

    return Finalists(
        label=[f"alpha {r['alpha']:g} beta {r['beta']:g} gamma {r['gamma']:g}" for r in rows],
        mean=[num(r.get("accuracy_mean")) for r in rows],
        std=[num(r.get("accuracy_std")) for r in rows],
        grid_accuracy=[num(r.get("grid_accuracy")) for r in rows],
        done=[int(r.get("done", 0)) for r in rows], seeds=int(fin.get("seeds", 0)),
        winner=next((i for i, r in enumerate(rows) if r["trial"] == fin.get("winner")), None))


# ----------------------------------------------------------------------------- draw
def fig_finalists(info: Stage2Info) -> Any:
    import plotly.graph_objects as go

    f = info.finalists
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=f.label, y=f.mean, mode="markers", name="mean over seeds",
                             marker=dict(size=12),
                             error_y=dict(type="data", visible=True,
                                          array=[s if math.isfinite(s) else 0 for s in f.std]),
                             hovertext=[f"{d}/{f.seeds} seed(s)" for d in f.done]))
    fig.add_trace(go.Scatter(x=f.label, y=f.grid_accuracy, mode="markers",
                             name="the grid's single training",
                             marker=dict(symbol="x", size=10, color="#999")))
    if f.winner is not None:
        fig.add_trace(go.Scatter(x=[f.label[f.winner]], y=[f.mean[f.winner]], mode="markers",
                                 name="chosen", marker=dict(symbol="diamond-open", size=18,
                                                            color="crimson")))
    fig.update_layout(yaxis=dict(title="validation accuracy"), height=420, margin=dict(t=20))
    return fig
