"""The stage 1 dashboard (EfficientNet Sec. 4, MnasNet Sec. 3): accuracy against MACs and, in a
run that predicts latency, against latency on the user's device (:mod:`results.stage1_latency`);
the objective (the target T and iso-reward curves ACC x (COST/T)^w) is drawn on the axis of the
run's metric, the Pareto front on the axis of its second objective; best reward so far against
trial number and wall time; the choices the top trials took in each stage; the best
architecture's stage table; and the finalists (the top distinct architectures retrained with
several seeds after the search): each seed's reward, the mean with a one-std error bar, and the
search's own score beside it.

Compute, then draw: :func:`stage1_info` turns a :class:`results.store.Run` into a NamedTuple of
plain lists (checked by tests without a browser); the ``fig_*`` functions only draw it.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable, NamedTuple, Sequence

from .html import (Page, Section, esc, finite, fmt_macs, fmt_num, fmt_params, log_ticks,
                   table_html)
from .pareto import pareto_front
from .stage1_finalists import FROM_TRIALS, Finalist, read_finalists
from .stage1_latency import LatencyInfo, add_timed, fmt_ms, latency_facts, latency_info
from .store import ChoiceVerdict, Run, top_trials

if TYPE_CHECKING:
    from space.objective import Objective

TOP_K = 10  # trials whose choices are counted and listed
ISO_QUANTILES = (0.25, 0.5, 0.75, 1.0)  # iso-reward curves through these reward quantiles
# Per-stage choices counted among the top trials; "expand" follows from the ConvOp.
CHOICE_DIMENSIONS = ("op", "kernel", "se_ratio", "expand", "skip", "filters", "layers")


class Points(NamedTuple):
    number: list[int]
    accuracy: list[float]
    macs: list[int]
    latency_ms: list[float]  # predicted from the run's latency table; NaN in a MACs-only run
    reward: list[float]
    node: list[str]  # where the trial ran (a Ray node id with --backend ray)
    arch: list[str]  # one-line architecture (hover text)


class IsoCurve(NamedTuple):
    reward: float
    cost: list[float]  # on the axis of the run's metric: MACs, or ms
    accuracy: list[float]  # ACC with reward(ACC, cost) == reward (space.objective)


class Progress(NamedTuple):
    number: list[int]  # COMPLETE trials in trial order
    best_by_number: list[float]
    elapsed_s: list[float]  # the same trials in order of completion, seconds since the start
    best_by_time: list[float]


class ChoiceGrid(NamedTuple):
    dimension: str
    stages: list[str]
    values: list[str]
    counts: list[list[int]]  # counts[value][stage]: top trials taking the value in the stage


class Stage1Info(NamedTuple):
    target_macs: int | None  # T in MACs; None when the run's target is a latency
    a: float
    b: float
    points: Points  # COMPLETE trials
    pruned: Points  # PRUNED trials with the accuracy they were stopped at
    front: list[int]  # indices into points, cheapest first by front_metric
    iso: list[IsoCurve]  # on the axis of the run's metric
    accuracy_range: tuple[float, float]
    progress: Progress
    top: list[dict[str, Any]]  # the top trials: number, reward, accuracy, macs, params, arch
    choices: list[ChoiceGrid]
    best_stages: list[dict[str, Any]]  # space.counting.stage_table rows of the best
    finalists: list[Finalist] = []  # summary.json's order: best mean first (complete first)
    finalist_seeds: int = 0  # seeds planned per finalist
    floor: float = 0.0  # the hard constraint's floor, a fraction of T (space.objective)
    metric: str = "macs"  # the objective's cost (space.objective.METRICS): "macs" or "latency"
    target: float = 0.0  # T in the metric's unit (MACs, or ms)
    front_metric: str = "macs"  # the cost the Pareto front is over: the run's second objective
    latency: LatencyInfo | None = None  # a run that predicts latency: device, table, B0 timed
    # whether B0's lead over the runner-up is within the seeds' noise (summary.json's)
    verdict: ChoiceVerdict | None = None
    # where the finalists' mean and std come from (results.stage1_finalists): summary.json,
    # the trial table (the labelled fallback), or '' (no finalists)
    finalists_from: str = ""
    b0: int | None = None  # the finalist the run chose as B0 (summary.json's best)


def _params(row: Any) -> dict[str, Any] | None:
    out = {k[2:]: v for k, v in row.items() if k.startswith("p_")}
    if not out or any(v is None or (isinstance(v, float) and math.isnan(v)) for v in out.values()):
        return None
    return out


def arch_line(spec: Any) -> str:
    """A spec in one line: stem, timm block string per stage, head, activation."""
    from space.export import timm_block_string

    head = f"head{spec.head_channels}" if spec.head_channels else "nohead"
    return " ".join([f"stem{spec.stem.channels}", *map(timm_block_string, spec.stages), head,
                     spec.activation])


class _Specs:
    """Trial params -> deployment spec, through the run's own search space."""

    def __init__(self, config: dict[str, Any]) -> None:
        from space.deploy import Deployment
        from space.search_space import load_space

        self.space = load_space(config.get("space", "mnasnet"))
        self.deploy = Deployment.from_dict(config.get("deploy"))

    def spec(self, row: Any, name: str = "candidate") -> Any:
        from space.deploy import deployment_spec

        params = _params(row)
        return None if params is None else deployment_spec(self.space, params, self.deploy, name)

    def arch(self, row: Any) -> str:
        spec = self.spec(row)
        return arch_line(spec) if spec is not None else "(architecture unknown)"


def _points(df: Any, specs: _Specs) -> Points:
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


def _iso_curves(rewards: list[float], *, span: list[float],
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


def _progress(done: Any) -> Progress:
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


def _choice_label(dim: str, v: Any) -> str:
    if dim == "layers":
        return f"{int(v):+d}"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _choices(top: Any, specs: _Specs) -> list[ChoiceGrid]:
    from space.search_space import CONV_OPS

    space = specs.space
    taken = [p for p in (_params(r) for _, r in top.iterrows()) if p is not None]
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
                if _choice_label(dim, o) not in values:
                    values.append(_choice_label(dim, o))
        counts = [[0] * len(stages) for _ in values]
        for p in taken:
            for i in range(len(stages)):
                counts[values.index(_choice_label(dim, value(p, i)))][i] += 1
        grids.append(ChoiceGrid(dimension=dim, stages=stages, values=values, counts=counts))
    return grids


def stage1_info(run: Run, *, top_k: int = TOP_K) -> Stage1Info:
    """Everything the stage 1 page shows, as plain data."""
    from space.counting import stage_table

    cfg = run.config
    objective = run_objective(cfg)
    specs = _Specs(cfg)
    everything = run.trials
    fin = read_finalists(run, arch=specs.arch)  # summary.json's finalists block
    finalists = fin.rows
    df = (everything[~everything["finalist"].astype(bool)] if "finalist" in everything
          else everything)  # the search's own trials; the finalists are drawn apart
    done = df[(df["state"] == "COMPLETE") & df["accuracy"].notna()]
    points = _points(done, specs)
    pruned = _points(df[df["state"] == "PRUNED"], specs)
    along = front_metric(cfg, objective.metric)
    top = top_trials(done, top_k)
    top_rows = [{"number": int(r["number"]), "reward": r["reward"], "accuracy": r["accuracy"],
                 "macs": r["macs"], "latency_ms": r.get("latency_ms"), "params": r["params"],
                 "arch": specs.arch(r)} for _, r in top.iterrows()]
    best_stages: list[dict[str, Any]] = []
    chosen = next((f for f in finalists if f.trial == fin.b0), None)  # B0, as the run chose
    b0 = done[done["number"] == chosen.trial] if chosen is not None else top
    if len(b0):
        best = specs.spec(b0.iloc[0], name=f"trial-{int(b0.iloc[0]['number'])}")
        best_stages = stage_table(best) if best is not None else []
    latency = None
    if "latency" in (objective.metric, along) or any(map(finite, points.latency_ms)):
        latency = latency_info(
            run, b0=int(b0.iloc[0]["number"]) if len(b0) else None, finalists=finalists,
            predicted=dict(zip(points.number, points.latency_ms)),
            search={n: (a, arch) for n, a, arch in zip(points.number, points.accuracy,
                                                       points.arch)})
    timed = [t for t in (latency.timed if latency else []) if finite(t.measured_ms)]
    bars = [t.accuracy_std if finite(t.accuracy_std) else 0.0 for t in timed]
    accs = (points.accuracy + pruned.accuracy + [t.accuracy - d for t, d in zip(timed, bars)]
            + [t.accuracy + d for t, d in zip(timed, bars)])
    pad = max(0.02, 0.1 * (max(accs) - min(accs))) if accs else 0.05
    return Stage1Info(
        target_macs=objective.target_macs, a=objective.a, b=objective.b, points=points,
        pruned=pruned, front=front_of(points, along),
        iso=_iso_curves(points.reward, objective=objective,
                        span=costs(points, objective.metric) + costs(pruned, objective.metric)),
        accuracy_range=(min(accs, default=0.0) - pad, max(accs, default=1.0) + pad),
        progress=_progress(done), top=top_rows, choices=_choices(top, specs),
        best_stages=best_stages, finalists=finalists, finalist_seeds=fin.seeds,
        finalists_from=fin.source, b0=fin.b0,
        floor=objective.floor, metric=objective.metric, target=objective.target,
        front_metric=along, latency=latency,
        verdict=fin.verdict)


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
    measured latency (:func:`results.stage1_latency.add_timed`)."""
    timed = info.latency.timed if info.latency is not None else []
    fig = _cost_figure(info, "latency",
                       extra=[v for t in timed for v in (t.predicted_ms, t.measured_ms)])
    add_timed(fig, timed)
    return fig


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


def fig_finalists(info: Stage1Info) -> Any:
    """Each finalist's reward per seed, its mean with a one-std error bar, and the search's own
    score (usually above the mean: the search kept the luckiest of many noisy numbers)."""
    import plotly.graph_objects as go

    fins = info.finalists
    labels = [f"trial {f.trial}" for f in fins]
    fig = go.Figure()
    fig.add_trace(go.Scatter(
        x=[labels[i] for i, f in enumerate(fins) for _ in f.rewards],
        y=[r for f in fins for r in f.rewards], mode="markers", name="one seed",
        marker=dict(color="#999", size=7),
        hovertext=[f"trial {f.trial} seed {s}: reward {r:.4f}" for f in fins
                   for s, r in zip(f.seeds, f.rewards)], hoverinfo="text"))
    fig.add_trace(go.Scatter(
        x=labels, y=[f.mean for f in fins], mode="markers", name="mean ± std",
        marker=dict(color="crimson", size=12, symbol="line-ew-open", line=dict(width=3)),
        error_y=dict(type="data", array=[f.std if math.isfinite(f.std) else 0 for f in fins],
                     visible=True, color="crimson", thickness=2, width=10),
        hovertext=[f"trial {f.trial}: mean {fmt_num(f.mean)} ± {fmt_num(f.std)} over "
                   f"{len(f.rewards)} seed(s)<br>{esc(f.arch)}" for f in fins],
        hoverinfo="text"))
    fig.add_trace(go.Scatter(
        x=labels, y=[f.search_reward for f in fins], mode="markers", name="search's score",
        marker=dict(symbol="diamond-open", size=11, color="#1f77b4", line=dict(width=2))))
    order = "in trial order" if info.finalists_from == FROM_TRIALS else "best mean first"
    fig.update_layout(xaxis=dict(title=f"finalist (its search trial), {order}",
                                 type="category"),
                      yaxis=dict(title="reward"), height=420, margin=dict(t=40),
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0))
    return fig


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


STAGE_COLUMNS = (("stage", "stage"), ("block", "block"), ("repeats", "repeats"),
                 ("kernel", "kernel"), ("stride", "stride"), ("expand", "expand"), ("se", "se"),
                 ("skip", "skip"), ("out_channels", "out ch"), ("out_size", "out size"),
                 ("params", "params"), ("macs", "MACs"))


def stage_table_html(rows: list[dict[str, Any]], *, table_id: str) -> str:
    cells = [{**r, "params": f"{int(r['params']):,}", "macs": fmt_macs(r["macs"]),
              "expand": _choice_label("expand", r["expand"]) if r["expand"] != "" else "",
              "se": _choice_label("se", r["se"]) if r["se"] != "" else ""} for r in rows]
    return table_html(STAGE_COLUMNS, cells, table_id=table_id,
                      numeric=("repeats", "kernel", "stride", "out_channels", "out_size",
                               "params", "macs"))


def _top_html(info: Stage1Info) -> str:
    rows = [{"number": t["number"], "reward": fmt_num(t["reward"]),
             "accuracy": fmt_num(t["accuracy"]), "macs": fmt_macs(t["macs"]),
             "latency_ms": fmt_ms(t["latency_ms"]), "params": fmt_params(t["params"]),
             "arch": t["arch"]} for t in info.top]
    latency = (("latency_ms", "latency (predicted)"),) if info.latency is not None else ()
    return table_html((("number", "trial"), ("reward", "reward"), ("accuracy", "accuracy"),
                       ("macs", "MACs"), *latency, ("params", "params"),
                       ("arch", "architecture")),
                      rows, numeric=("number", "reward", "accuracy", "macs", "latency_ms",
                                     "params"), table_id="top-trials")


# The run's metric in the page's words.
METRIC_WORDS = {"macs": "MACs", "latency": "latency"}


def _objective_facts(info: Stage1Info, cfg: dict[str, Any]) -> list[tuple[str, str]]:
    cost = METRIC_WORDS[info.metric]
    target = (fmt_macs(info.target) + " MACs" if info.metric == "macs"
              else f"{fmt_ms(info.target)} on this device")
    facts = [("target T", target),
             ("objective", f"ACC x ({cost}/T)^w, w = {info.a:g} if {cost} <= T else {info.b:g}"
                           + (f"; x {cost}/({info.floor:g}T) below {info.floor:g}T"
                              if info.floor else ""))]
    if cfg.get("objectives"):
        facts.append(("objectives", ", ".join(cfg["objectives"]) + " (the Pareto front)"))
    return facts


def _cost_section(info: Stage1Info, metric: str) -> Section:
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


def finalists_note(info: Stage1Info) -> str:
    """What the finalists figure draws, and where its statistics come from."""
    note = (f"The top {len(info.finalists)} distinct architectures retrained with "
            f"{info.finalist_seeds} seeds each: grey, one seed; red, the mean with a one-std "
            f"error bar; blue diamond, the search's own score.")
    if info.finalists_from == FROM_TRIALS:
        return note + (" This run folder's summary.json has no finalists block (a run from "
                       "before finalists were summed up there, or its summary.json is "
                       "missing), so the mean and std are computed here from the trial table, "
                       "and no B0 or verdict is shown.")
    note += " B0 is the best mean (summary.json's finalists block)."
    if info.verdict is not None:
        note += f" {info.verdict.text[0].upper()}{info.verdict.text[1:]}."
    return note


def stage1_page(run: Run) -> Page:
    info = stage1_info(run)
    cfg = run.config
    best = info.top[0] if info.top else None
    facts = [*_objective_facts(info, cfg),
             ("space", str(cfg.get("space", "?"))), ("sampler", str(cfg.get("sampler", "?"))),
             ("dataset", str(cfg.get("proxy", {}).get("dataset", "?")))]
    if info.latency is not None:
        facts += latency_facts(info.latency)
    chosen = next((f for f in info.finalists if f.trial == info.b0), None)
    if chosen is not None:
        facts.append(("B0", f"finalist trial {chosen.trial}: mean reward {fmt_num(chosen.mean)}"
                            f" ± {fmt_num(chosen.std)} over {len(chosen.rewards)} seeds "
                            f"(search's score {fmt_num(chosen.search_reward)})"))
    if info.verdict is not None:
        facts.append(("choice", info.verdict.text))
    if best is not None:
        ms = (f", {fmt_ms(best['latency_ms'])} predicted" if finite(best["latency_ms"])
              else "")
        facts.append(("best", f"trial {best['number']}: reward {fmt_num(best['reward'])}, "
                              f"acc {fmt_num(best['accuracy'])}, {fmt_macs(best['macs'])} MACs"
                              f"{ms}, {fmt_params(best['params'])} params"))
    axes = ["macs", "latency"] if info.latency is not None else ["macs"]
    axes.sort(key=lambda m: m != info.metric)  # the objective's figure first
    sections = [
        *(_cost_section(info, m) for m in axes),
        Section("Best reward so far", [("fig-progress", fig_progress(info))]),
        *([Section("Finalists", [("fig-finalists", fig_finalists(info))],
                   note=finalists_note(info))] if info.finalists else []),
        Section(f"Choices of the top {len(info.top)} trials, per stage",
                [("fig-choices", fig_choices(info))],
                note="How many of the top trials (by reward) took each choice in each stage."),
        Section("Top trials", html=_top_html(info)),
        Section(f"B0: finalist trial {chosen.trial}" if chosen is not None else
                f"Best architecture (trial {best['number']})" if best else "Best architecture",
                html=stage_table_html(info.best_stages, table_id="best-stages"),
                note=chosen.arch if chosen is not None else best["arch"] if best else ""),
    ]
    return Page(title=f"Stage 1 search: {run.run_dir.name}", facts=facts, sections=sections)
