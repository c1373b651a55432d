"""The best reward so far, against trial number and against wall time."""
from __future__ import annotations

from typing import Any

from .data import Progress, Stage1Info


def progress_of(done: Any) -> Progress:
    import pandas as pd

    done = done[done["reward"].notna()]
    by_number = done.sort_values("number")
    start = pd.to_datetime(done["datetime_start"]).min()
    by_time = done.assign(_t=pd.to_datetime(done["datetime_complete"])).dropna(subset=["_t"])
    by_time = by_time.sort_values("_t")
    return Progress(number=[int(n) for n in by_number["number"]],
                    best_by_number=by_number["reward"].cummax().astype(float).tolist(),
                    elapsed_s=[(t - start).total_seconds() for t in by_time["_t"]],
                    best_by_time=by_time["reward"].cummax().astype(float).tolist())


def fig_progress(info: Stage1Info) -> Any:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    g = info.progress
    fig = make_subplots(rows=1, cols=2, subplot_titles=("by trial number", "by wall time"))
    fig.add_trace(go.Scatter(x=g.number, y=g.best_by_number, mode="lines+markers",
                             line_shape="hv", name="best by trial"), row=1, col=1)
    fig.add_trace(go.Scatter(x=g.elapsed_s, y=g.best_by_time, mode="lines+markers",
                             line_shape="hv", name="best by time"), row=1, col=2)
    fig.update_xaxes(title_text="trial number", row=1, col=1)
    fig.update_xaxes(title_text="seconds since the first trial started", row=1, col=2)
    fig.update_yaxes(title_text="best reward so far", row=1, col=1)
    fig.update_layout(height=360, showlegend=False, margin=dict(t=40))
    return fig
