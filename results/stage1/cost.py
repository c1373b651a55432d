"""The accuracy/cost figures (EfficientNet Sec. 4, MnasNet Sec. 3): accuracy against MACs and, in a
run that predicts latency, against latency on the user's device; the objective (the target T and
iso-reward curves ACC x (COST/T)^w) on the axis of the run's metric, the Pareto front on the axis
of its second objective. Computes the trials' points, the iso-reward curves and the front; draws
:func:`fig_search` and :func:`fig_latency` (with B0 and the finalists at their measured latency,
:func:`results.stage1.latency.add_timed`), and words each in :func:`cost_section`.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable, NamedTuple, Sequence

from ..html import Section, esc, finite, fmt_macs, fmt_num, log_ticks
from ..pareto import pareto_front
from .data import IsoCurve, Points, Stage1Info
from .latency import add_timed, fmt_ms
from .specs import Specs

if TYPE_CHECKING:
    from space.objective import Objective

ISO_QUANTILES = (0.25, 0.5, 0.75, 1.0)  # iso-reward curves through these reward quantiles


def points_of(df: Any, specs: Specs) -> Points:
    rows = [r for _, r in df.iterrows() if finite(r["accuracy"]) and finite(r["macs"])]
    return Points(number=[int(r["number"]) for r in rows],
                  accuracy=[float(r["accuracy"]) for r in rows],
                  macs=[int(r["macs"]) for r in rows],
                  latency_ms=[float(r["latency_ms"]) if finite(r.get("latency_ms")) else math.nan
                              for r in rows],
                  reward=[float(r["reward"]) if finite(r["reward"]) else math.nan for r in rows],
                  node=[str(r["node"]) if isinstance(r["node"], str) else "-" for r in rows],
                  arch=[specs.arch(r) for r in rows])


def costs(points: Points, metric: str) -> list[float]:
    """Each point's cost in ``metric`` (space.objective.METRICS): its MACs or its predicted
    latency; the Points field is the metric's trial attribute."""
    from space.objective import METRICS

    return [float(v) for v in getattr(points, METRICS.get(metric).attr)]


def iso_curve(reward: float, objective: Objective, cost: Sequence[float]) -> IsoCurve:
    """The accuracies that score ``reward`` at each cost under ``objective``
    (:class:`space.objective.Objective`, MACs or latency, soft or hard with its floor). The
    reward is linear in accuracy, so ACC = reward / reward(1, cost)."""
    return IsoCurve(reward=reward, cost=list(cost),
                    accuracy=[reward / objective.reward(1.0, c) for c in cost])


def iso_curves(rewards: list[float], *, span: list[float],
                objective: Objective) -> list[IsoCurve]:
    """Curves through the reward quartiles, across every cost drawn (``span``) and T."""
    import numpy as np

    rewards = [r for r in rewards if math.isfinite(r)]
    span = [c for c in span if math.isfinite(c)]
    if not rewards:
        return []
    t = objective.target
    lo = min([*span, t]) / 1.5
    hi = max([*span, t]) * 1.5
    grid = set(np.geomspace(lo, hi, 80).tolist()) | {float(t)}
    grid = sorted(grid | ({objective.floor * t} if objective.floor else set()))
    levels = sorted({round(float(np.quantile(rewards, q)), 6) for q in ISO_QUANTILES})
    return [iso_curve(r, objective, grid) for r in levels]


def front_of(points: Points, metric: str) -> list[int]:
    """The Pareto front over (accuracy, ``metric``), indices into ``points`` cheapest first;
    points without that cost (a trial not predicted) are left out."""
    cost = costs(points, metric)
    have = [i for i, c in enumerate(cost) if math.isfinite(c)]
    return [have[j] for j in pareto_front([(points.accuracy[i], cost[i]) for i in have])]


def front_metric(config: dict[str, Any], metric: str) -> str:
    """The run's second objective: config.json's ``objectives`` (nsga2's accuracy,COST), else
    the target's metric, as nas.stage1.config.SearchConfig.value_objectives reads them."""
    objectives = config.get("objectives")
    return str(objectives[1]) if objectives else metric


def run_objective(config: dict[str, Any]) -> Objective:
    """The run's :class:`space.objective.Objective`: on latency (T in ms) when config.json
    has a ``target_latency_ms``, else on MACs (runs from before latency have no such key)."""
    from space.objective import make_objective

    latency = config.get("target_latency_ms")
    metric, target = (("latency", float(latency)) if latency is not None
                      else ("macs", int(config["target_macs"])))
    return make_objective(target, constraint=config.get("constraint", "soft"),
                          a=config.get("a"), b=config.get("b"), metric=metric)


# ----------------------------------------------------------------------------- draw
class CostAxis(NamedTuple):
    """How a cost is drawn on the x axis of an accuracy/cost figure."""

    title: str
    label: Callable[[float], str]  # T's annotation
    axis: Callable[[list[float]], dict[str, Any]]  # plotly axis settings over the drawn values


def _ms_axis(values: list[float]) -> dict[str, Any]:
    """A log ms axis; plotly picks the ticks (a latency range is often under a decade)."""
    v = [x for x in values if finite(x) and x > 0]
    return ({"type": "log", "range": [math.log10(min(v) / 1.15), math.log10(max(v) * 1.15)]}
            if v else {"type": "log"})


COST_AXES: dict[str, CostAxis] = {
    "macs": CostAxis("MACs (multiply-adds, deployment resolution)", fmt_macs,
                     lambda v: log_ticks(v, pad=1.3)),
    "latency": CostAxis("latency on this device (ms; trials as the run's latency table "
                        "predicts them)", fmt_ms, _ms_axis),
}


def _hover(p: Points, i: int) -> str:
    ms = f", {fmt_ms(p.latency_ms[i])} predicted" if finite(p.latency_ms[i]) else ""
    return (f"trial {p.number[i]}: acc {p.accuracy[i]:.4f}, {fmt_macs(p.macs[i])} MACs{ms}, "
            f"reward {fmt_num(p.reward[i])}, node {esc(p.node[i])}<br>{esc(p.arch[i])}")


def _cost_figure(info: Stage1Info, metric: str, *, extra: Sequence[float] = ()) -> Any:
    """Accuracy against one cost (log axis): trials coloured by reward, the pruned ones; the
    iso-reward curves and T when the run's objective is on this cost, the Pareto front when
    its second objective is. ``extra``: more costs the axis must show."""
    import plotly.graph_objects as go

    axis = COST_AXES[metric]
    p, q = info.points, info.pruned
    x, xq = costs(p, metric), costs(q, metric)
    shown = [i for i, c in enumerate(x) if math.isfinite(c)]
    shown_q = [i for i, c in enumerate(xq) if math.isfinite(c)]
    fig = go.Figure()
    on_target = metric == info.metric
    for c in info.iso if on_target else []:
        fig.add_trace(go.Scatter(x=c.cost, y=c.accuracy, mode="lines",
                                 name=f"reward {c.reward:.4f}",
                                 line=dict(width=1, dash="dot", color="#999"), hoverinfo="name",
                                 legendgroup="iso", legendgrouptitle_text="iso-reward"))
    if shown_q:
        fig.add_trace(go.Scatter(x=[xq[i] for i in shown_q], y=[q.accuracy[i] for i in shown_q],
                                 mode="markers", name="pruned",
                                 marker=dict(symbol="x", color="#bbb", size=7),
                                 hovertext=[_hover(q, i) for i in shown_q], hoverinfo="text"))
    fig.add_trace(go.Scatter(
        x=[x[i] for i in shown], y=[p.accuracy[i] for i in shown], mode="markers", name="trials",
        marker=dict(color=[p.reward[i] for i in shown], colorscale="Viridis", size=9,
                    showscale=True, colorbar=dict(title="reward"),
                    line=dict(width=0.5, color="#333")),
        hovertext=[_hover(p, i) for i in shown], hoverinfo="text"))
    if metric == info.front_metric:
        fig.add_trace(go.Scatter(x=[x[i] for i in info.front],
                                 y=[p.accuracy[i] for i in info.front],
                                 mode="lines+markers", name="Pareto front", line_shape="hv",
                                 line=dict(color="crimson", width=2),
                                 marker=dict(symbol="circle-open", size=14, color="crimson"),
                                 hovertext=[_hover(p, i) for i in info.front], hoverinfo="text"))
    drawn = [*(x[i] for i in shown), *(xq[i] for i in shown_q), *extra]
    xaxis = axis.axis(drawn + [info.target] if on_target else drawn)
    if on_target:
        fig.add_vline(x=info.target, line=dict(color="black", dash="dash"))
        # an annotation on a log axis is placed at log10 of its x (a shape at x itself)
        fig.add_annotation(x=math.log10(info.target) if xaxis["type"] == "log" else info.target,
                           xref="x", y=1, yref="y domain", xanchor="left", yanchor="top",
                           showarrow=False, text=f"T = {axis.label(info.target)}")
    fig.update_layout(xaxis=dict(**xaxis, title=axis.title),
                      yaxis=dict(title="validation accuracy", range=list(info.accuracy_range)),
                      height=580, margin=dict(t=60),
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0),
                      hoverlabel=dict(align="left"))
    return fig


def fig_search(info: Stage1Info) -> Any:
    """Accuracy against MACs (log axis); in a MACs run with T, iso-reward and the front."""
    return _cost_figure(info, "macs")


def fig_latency(info: Stage1Info) -> Any:
    """Accuracy against predicted latency (log axis), with B0 and the finalists also at their
    measured latency (:func:`results.stage1.latency.add_timed`)."""
    timed = info.latency.timed if info.latency is not None else []
    fig = _cost_figure(info, "latency",
                       extra=[v for t in timed for v in (t.predicted_ms, t.measured_ms)])
    add_timed(fig, timed)
    return fig


# The run's metric in the page's words.
METRIC_WORDS = {"macs": "MACs", "latency": "latency"}


def cost_section(info: Stage1Info, metric: str) -> Section:
    """The accuracy/cost figure of ``metric``, with a note saying what it draws."""
    note = f"{len(info.points.number)} complete trials"
    if metric == info.front_metric:
        note += f", {len(info.front)} on the Pareto front (ringed)"
    note += ". Dotted: iso-reward curves." if metric == info.metric else "."
    note += " Hover a point for its architecture."
    if metric != info.metric:
        note += (f" The run's target T is in {METRIC_WORDS[info.metric]}: T and the iso-reward "
                 f"curves are drawn against it.")
    if metric == "latency":
        return Section("Accuracy against latency on this device",
                       [("fig-latency", fig_latency(info))],
                       note="Each trial at the latency its table predicts. B0 (star) and the "
                            "finalists (diamonds) also at the latency measured end to end at "
                            "the end of the run, their accuracy the mean over their seeds with "
                            "a one-std error bar, joined to their predicted latency (open "
                            "circle): the segment is the table's error. " + note)
    return Section("Accuracy against MACs", [("fig-search", fig_search(info))], note=note)
