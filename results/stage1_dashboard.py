"""The stage 1 dashboard (EfficientNet Sec. 4, MnasNet Sec. 3): accuracy against MACs with the
Pareto front, the target T and iso-reward curves ACC x (MACs/T)^w; best reward so far against
trial number and wall time; the choices the top trials took in each stage; the best
architecture's stage table; and the finalists (the top distinct architectures retrained with
several seeds after the search): each seed's reward, the mean with a one-std error bar, and the
search's own score beside it.

Compute, then draw: :func:`stage1_info` turns a :class:`results.store.Run` into a NamedTuple of
plain lists (checked by tests without a browser); the ``fig_*`` functions only draw it.
"""
from __future__ import annotations

import math
from typing import Any, NamedTuple

from .html import (Page, Section, esc, finite, fmt_macs, fmt_num, fmt_params, log_ticks,
                   table_html)
from .pareto import pareto_front
from .store import Run, top_trials

TOP_K = 10  # trials whose choices are counted and listed
ISO_QUANTILES = (0.25, 0.5, 0.75, 1.0)  # iso-reward curves through these reward quantiles
# Per-stage choices counted among the top trials; "expand" follows from the ConvOp.
CHOICE_DIMENSIONS = ("op", "kernel", "se_ratio", "expand", "skip", "filters", "layers")


class Points(NamedTuple):
    number: list[int]
    accuracy: list[float]
    macs: list[int]
    reward: list[float]
    node: list[str]  # where the trial ran (a Ray node id with --backend ray)
    arch: list[str]  # one-line architecture (hover text)


class IsoCurve(NamedTuple):
    reward: float
    macs: list[float]
    accuracy: list[float]  # ACC with ACC x (MACs/T)^w == reward


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


class Finalist(NamedTuple):
    trial: int  # the source search trial
    arch: str
    macs: int | None
    search_reward: float  # the search's own score (NaN when unknown)
    seeds: list[int]  # seed indices of the COMPLETE runs
    rewards: list[float]  # their rewards, in seed order
    mean: float
    std: float  # sample std (n - 1); NaN for fewer than two
    complete: bool  # every planned seed finished


class Stage1Info(NamedTuple):
    target_macs: int
    a: float
    b: float
    points: Points  # COMPLETE trials
    pruned: Points  # PRUNED trials with the accuracy they were stopped at
    front: list[int]  # indices into points, cheapest first
    iso: list[IsoCurve]
    accuracy_range: tuple[float, float]
    progress: Progress
    top: list[dict[str, Any]]  # the top trials: number, reward, accuracy, macs, params, arch
    choices: list[ChoiceGrid]
    best_stages: list[dict[str, Any]]  # space.counting.stage_table rows of the best
    finalists: list[Finalist] = []  # best mean first (complete ones first)
    finalist_seeds: int = 0  # seeds planned per finalist
    floor: float = 0.0  # the hard constraint's floor, a fraction of T (space.objective)


def _finalists(df: Any, specs: _Specs, *, seeds: int) -> list[Finalist]:
    """The finalists of a trial table (its ``finalist`` rows), best mean first."""
    if "finalist" not in df or not df["finalist"].astype(bool).any():
        return []
    fin = df[df["finalist"].astype(bool)]
    search = df[~df["finalist"].astype(bool)]
    out = []
    for src, runs in fin.groupby("finalist_of"):
        done = runs[(runs["state"] == "COMPLETE") & runs["reward"].notna()]
        done = done.sort_values("finalist_seed")
        rewards = [float(v) for v in done["reward"]]
        n = len(rewards)
        mean = sum(rewards) / n if n else math.nan
        std = (math.sqrt(sum((v - mean) ** 2 for v in rewards) / (n - 1)) if n > 1
               else math.nan)
        source = search[search["number"] == int(src)]
        row = source.iloc[0] if len(source) else runs.iloc[0]
        out.append(Finalist(
            trial=int(src), arch=specs.arch(row),
            macs=int(row["macs"]) if finite(row["macs"]) else None,
            search_reward=float(row["reward"]) if len(source) and finite(row["reward"])
            else math.nan,
            seeds=[int(i) for i in done["finalist_seed"]], rewards=rewards, mean=mean, std=std,
            complete=seeds > 0 and n == seeds))
    out.sort(key=lambda f: (not f.complete, -(f.mean if math.isfinite(f.mean) else -1e300),
                            f.trial))
    return out


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
                  reward=[float(r["reward"]) if finite(r["reward"]) else math.nan for r in rows],
                  node=[str(r["node"]) if isinstance(r["node"], str) else "-" for r in rows],
                  arch=[specs.arch(r) for r in rows])


def iso_curve(reward: float, *, target_macs: int, a: float, b: float,
              macs: list[float], floor: float = 0.0) -> IsoCurve:
    """The accuracies that score ``reward`` at each MACs: ACC = reward x (MACs/T)^-w, with
    w = a at or below T and b above (MnasNet Eq. 2); below ``floor`` x T (the hard
    constraint's floor, space.objective) the reward was also multiplied by MACs/(floor T),
    so the accuracy needed grows by (floor T)/MACs."""
    low = floor * target_macs
    acc = [reward * (m / target_macs) ** -(a if m <= target_macs else b)
           * (low / m if m < low else 1.0) for m in macs]
    return IsoCurve(reward=reward, macs=list(macs), accuracy=acc)


def _iso_curves(points: Points, *, span: list[int], target_macs: int, a: float,
                b: float, floor: float = 0.0) -> list[IsoCurve]:
    """Curves through the reward quartiles, across every MACs drawn (``span``) and T."""
    import numpy as np

    rewards = [r for r in points.reward if math.isfinite(r)]
    if not rewards:
        return []
    lo = min(*span, target_macs) / 1.5
    hi = max(*span, target_macs) * 1.5
    grid = sorted(set(np.geomspace(lo, hi, 80).tolist()) | {float(target_macs)})
    levels = sorted({round(float(np.quantile(rewards, q)), 6) for q in ISO_QUANTILES})
    grid = sorted(set(grid) | ({floor * target_macs} if floor else set()))
    return [iso_curve(r, target_macs=target_macs, a=a, b=b, macs=grid, floor=floor)
            for r in levels]


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
    from space.objective import make_objective
    from space.counting import stage_table

    cfg = run.config
    objective = make_objective(int(cfg["target_macs"]), constraint=cfg.get("constraint", "soft"),
                               a=cfg.get("a"), b=cfg.get("b"))
    specs = _Specs(cfg)
    everything = run.trials
    seeds = int(cfg.get("finalist_seeds") or 0)
    finalists = _finalists(everything, specs, seeds=seeds)
    df = (everything[~everything["finalist"].astype(bool)] if "finalist" in everything
          else everything)  # the search's own trials; the finalists are drawn apart
    done = df[(df["state"] == "COMPLETE") & df["accuracy"].notna()]
    points = _points(done, specs)
    pruned = _points(df[df["state"] == "PRUNED"], specs)
    front = pareto_front(list(zip(points.accuracy, points.macs)))
    accs = points.accuracy + pruned.accuracy
    pad = max(0.02, 0.1 * (max(accs) - min(accs))) if accs else 0.05
    top = top_trials(done, top_k)
    top_rows = [{"number": int(r["number"]), "reward": r["reward"], "accuracy": r["accuracy"],
                 "macs": r["macs"], "params": r["params"], "arch": specs.arch(r)}
                for _, r in top.iterrows()]
    best_stages: list[dict[str, Any]] = []
    chosen = next((f for f in finalists if f.complete), None)  # B0 when there are finalists
    b0 = done[done["number"] == chosen.trial] if chosen is not None else top
    if len(b0):
        best = specs.spec(b0.iloc[0], name=f"trial-{int(b0.iloc[0]['number'])}")
        best_stages = stage_table(best) if best is not None else []
    return Stage1Info(
        target_macs=objective.target_macs, a=objective.a, b=objective.b, points=points,
        pruned=pruned, front=front,
        iso=_iso_curves(points, span=points.macs + pruned.macs, target_macs=objective.target_macs,
                        a=objective.a, b=objective.b, floor=objective.floor),
        accuracy_range=(min(accs, default=0.0) - pad, max(accs, default=1.0) + pad),
        progress=_progress(done), top=top_rows, choices=_choices(top, specs),
        best_stages=best_stages, finalists=finalists, finalist_seeds=seeds,
        floor=objective.floor)


# ----------------------------------------------------------------------------- draw
def _hover(p: Points, i: int) -> str:
    return (f"trial {p.number[i]}: acc {p.accuracy[i]:.4f}, {fmt_macs(p.macs[i])} MACs, "
            f"reward {fmt_num(p.reward[i])}, node {esc(p.node[i])}<br>{esc(p.arch[i])}")


def fig_search(info: Stage1Info) -> Any:
    """Accuracy against MACs (log axis): trials coloured by reward, Pareto front, T, iso-reward."""
    import plotly.graph_objects as go

    p = info.points
    fig = go.Figure()
    for c in info.iso:
        fig.add_trace(go.Scatter(x=c.macs, y=c.accuracy, mode="lines",
                                 name=f"reward {c.reward:.4f}",
                                 line=dict(width=1, dash="dot", color="#999"), hoverinfo="name",
                                 legendgroup="iso", legendgrouptitle_text="iso-reward"))
    if info.pruned.number:
        q = info.pruned
        fig.add_trace(go.Scatter(x=q.macs, y=q.accuracy, mode="markers", name="pruned",
                                 marker=dict(symbol="x", color="#bbb", size=7),
                                 hovertext=[_hover(q, i) for i in range(len(q.number))],
                                 hoverinfo="text"))
    fig.add_trace(go.Scatter(
        x=p.macs, y=p.accuracy, mode="markers", name="trials",
        marker=dict(color=p.reward, colorscale="Viridis", size=9, showscale=True,
                    colorbar=dict(title="reward"), line=dict(width=0.5, color="#333")),
        hovertext=[_hover(p, i) for i in range(len(p.number))], hoverinfo="text"))
    fig.add_trace(go.Scatter(x=[p.macs[i] for i in info.front],
                             y=[p.accuracy[i] for i in info.front],
                             mode="lines+markers", name="Pareto front", line_shape="hv",
                             line=dict(color="crimson", width=2),
                             marker=dict(symbol="circle-open", size=14, color="crimson"),
                             hovertext=[_hover(p, i) for i in info.front], hoverinfo="text"))
    fig.add_vline(x=info.target_macs, line=dict(color="black", dash="dash"),
                  annotation_text=f"T = {fmt_macs(info.target_macs)}")
    xaxis = log_ticks([*p.macs, *info.pruned.macs, info.target_macs], pad=1.3)
    fig.update_layout(xaxis=dict(**xaxis, title="MACs (multiply-adds, deployment resolution)"),
                      yaxis=dict(title="validation accuracy", range=list(info.accuracy_range)),
                      height=580, margin=dict(t=60),
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0),
                      hoverlabel=dict(align="left"))
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
    fig.update_layout(xaxis=dict(title="finalist (its search trial), best mean first",
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
             "accuracy": fmt_num(t["accuracy"]),
             "macs": fmt_macs(t["macs"]), "params": fmt_params(t["params"]), "arch": t["arch"]}
            for t in info.top]
    return table_html((("number", "trial"), ("reward", "reward"), ("accuracy", "accuracy"),
                       ("macs", "MACs"), ("params", "params"), ("arch", "architecture")),
                      rows, numeric=("number", "reward", "accuracy", "macs", "params"),
                      table_id="top-trials")


def stage1_page(run: Run) -> Page:
    info = stage1_info(run)
    cfg = run.config
    best = info.top[0] if info.top else None
    facts = [("target T", fmt_macs(info.target_macs) + " MACs"),
             ("objective", f"ACC x (MACs/T)^w, w = {info.a:g} if MACs <= T else {info.b:g}"
                           + (f"; x MACs/({info.floor:g}T) below {info.floor:g}T" if info.floor
                              else "")),
             ("space", str(cfg.get("space", "?"))), ("sampler", str(cfg.get("sampler", "?"))),
             ("dataset", str(cfg.get("proxy", {}).get("dataset", "?")))]
    chosen = next((f for f in info.finalists if f.complete), None)
    if chosen is not None:
        facts.append(("B0", f"finalist trial {chosen.trial}: mean reward {fmt_num(chosen.mean)}"
                            f" ± {fmt_num(chosen.std)} over {len(chosen.rewards)} seeds "
                            f"(search's score {fmt_num(chosen.search_reward)})"))
    if best is not None:
        facts.append(("best", f"trial {best['number']}: reward {fmt_num(best['reward'])}, "
                              f"acc {fmt_num(best['accuracy'])}, {fmt_macs(best['macs'])} MACs, "
                              f"{fmt_params(best['params'])} params"))
    sections = [
        Section("Accuracy against MACs", [("fig-search", fig_search(info))],
                note=f"{len(info.points.number)} complete trials, {len(info.front)} on the "
                     f"Pareto front (ringed). Dotted: iso-reward curves. Hover a point for its "
                     f"architecture."),
        Section("Best reward so far", [("fig-progress", fig_progress(info))]),
        *([Section("Finalists", [("fig-finalists", fig_finalists(info))],
                   note=f"The top {len(info.finalists)} distinct architectures retrained with "
                        f"{info.finalist_seeds} seeds each: grey, one seed; red, the mean with "
                        f"a one-std error bar; blue diamond, the search's own score. B0 is the "
                        f"best mean.")] if info.finalists else []),
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
