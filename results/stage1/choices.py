"""The choices the top trials took in each stage: per dimension (op, kernel, SE ratio, expansion,
skip, filters, layers), how many of the top trials took each value in each stage, as heatmaps.
"""
from __future__ import annotations

from typing import Any

from .data import ChoiceGrid, Stage1Info
from .specs import Specs, params_of

# Per-stage choices counted among the top trials; "expand" follows from the ConvOp.
CHOICE_DIMENSIONS = ("op", "kernel", "se_ratio", "expand", "skip", "filters", "layers")


def choice_label(dim: str, v: Any) -> str:
    if dim == "layers":
        return f"{int(v):+d}"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def choice_grids(top: Any, specs: Specs) -> list[ChoiceGrid]:
    from space.search_space import CONV_OPS

    space = specs.space
    taken = [p for p in (params_of(r) for _, r in top.iterrows()) if p is not None]
    stages = [str(i) for i in range(len(space.stages))]
    grids = []
    for dim in CHOICE_DIMENSIONS:
        def value(params: dict[str, Any], i: int) -> Any:
            if dim == "expand":
                return CONV_OPS.get(params[f"s{i}_op"])[1]
            return params[f"s{i}_{dim}"]

        values: list[str] = []
        for st in space.stages:
            opts = ([CONV_OPS.get(o)[1] for o in st.choices["op"]] if dim == "expand"
                    else list(st.choices[dim]))
            for o in opts:
                if choice_label(dim, o) not in values:
                    values.append(choice_label(dim, o))
        counts = [[0] * len(stages) for _ in values]
        for p in taken:
            for i in range(len(stages)):
                counts[values.index(choice_label(dim, value(p, i)))][i] += 1
        grids.append(ChoiceGrid(dimension=dim, stages=stages, values=values, counts=counts))
    return grids


# ----------------------------------------------------------------------------- draw
def fig_choices(info: Stage1Info) -> Any:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    grids = info.choices
    fig = make_subplots(rows=len(grids), cols=1, shared_xaxes=True, vertical_spacing=0.025,
                        subplot_titles=[g.dimension for g in grids])
    for r, g in enumerate(grids, start=1):
        fig.add_trace(go.Heatmap(z=g.counts, x=[f"stage {s}" for s in g.stages], y=g.values,
                                 text=g.counts, texttemplate="%{text}", colorscale="Blues",
                                 showscale=False, name=g.dimension, zmin=0,
                                 zmax=max(1, len(info.top)),
                                 hovertemplate="%{x}, " + g.dimension + " %{y}: %{z} trial(s)"
                                               "<extra></extra>"), row=r, col=1)
        fig.update_yaxes(type="category", row=r, col=1)
    fig.update_layout(height=120 + 95 * len(grids), margin=dict(t=40))
    return fig
