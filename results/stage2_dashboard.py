"""The stage 2 dashboard (EfficientNet Sec. 3.3, Eq. 3): the (alpha, beta, gamma) grid coloured by
accuracy with the constraint surface alpha * beta^2 * gamma^2 = 2; the family's measured MACs
ratio against 2^phi, with each member's deviation written out (the paper's ceil rounding makes
B1 2.55x B0); compound against single-dimension scaling at the same measured MACs, mean +- std
over seeds with the verdict of ``compare_single.json``; the finalists (the top grid points
retrained over seeds: mean +- std beside the grid's single training); the family's latency on
the machine that timed it, against its MACs (``gridsearch --latency``: family.csv's
``latency_ms`` and ``latency_iqr_ms``, and the device from coefficients.json); the scaled family
beside the paper's B0..B7.

Compute, then draw: :func:`stage2_info` turns a :class:`results.store.Run` (and the
``coefficients.json`` / ``family.csv`` the grid search wrote) into NamedTuples of plain lists;
the ``fig_*`` functions only draw them. Files a running search has not written yet become notes.
"""
from __future__ import annotations

import math
from typing import Any, NamedTuple

from .html import Page, Section, finite, fmt_macs, fmt_num, fmt_params, log_ticks, table_html
from .store import ChoiceVerdict, Run, choice_verdict

TARGET_PRODUCT = 2.0  # EfficientNet Eq. 3: alpha * beta^2 * gamma^2 ~= 2


class GridPoints(NamedTuple):
    number: list[int]
    alpha: list[float]
    beta: list[float]
    gamma: list[float]
    accuracy: list[float]
    macs_ratio: list[float]
    product: list[float]


class Surface(NamedTuple):
    """gamma = sqrt(product / (alpha beta^2)); None where gamma < 1."""

    alpha: list[float]
    beta: list[float]
    gamma: list[list[float | None]]  # gamma[j][i] at beta[j], alpha[i]


class Ratio(NamedTuple):
    phi: list[float]
    measured: list[float]  # family MACs / base MACs
    formula: list[float]  # (alpha beta^2 gamma^2)^phi
    two_phi: list[float]  # 2^phi
    paper: list[float | None]  # the paper's B{phi} FLOPS / B0's
    rounding: str | None = None  # the family's depth rounding (family.csv), None before it

    @property
    def vs_nominal(self) -> list[float]:
        """measured / 2^phi: 1 where a member doubles exactly per unit of phi."""
        return [m / t for m, t in zip(self.measured, self.two_phi)]


class Compare(NamedTuple):
    kind: list[str]
    accuracy: list[float]  # the mean over seeds
    macs: list[float]
    label: list[str]
    std: list[float] | None = None  # the seeds' std (compare_single.json), else None
    seeds: list[int] | None = None
    verdict: list[str] | None = None  # against compound ("" for compound itself)


class Finalists(NamedTuple):
    """coefficients.json's finalists: one entry per finalist, best mean first."""

    label: list[str]  # 'alpha 1.2 beta 1.1 gamma 1.15'
    mean: list[float]  # accuracy over its COMPLETE seeds
    std: list[float]  # NaN with fewer than 2 seeds
    grid_accuracy: list[float]  # the grid's own single training
    done: list[int]
    seeds: int
    winner: int | None  # index of the chosen finalist


def _finalists(coef: dict[str, Any] | None) -> Finalists | None:
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


class FamilyLatency(NamedTuple):
    """family.csv's measured latency (``gridsearch --latency``), the timed members only."""

    phi: list[int]
    name: list[str]
    macs: list[float]
    median_ms: list[float]
    iqr_ms: list[float]  # NaN where family.csv has none
    device: str  # where and how, from coefficients.json's latency ('' when it is not there)


def device_text(latency: dict[str, Any] | None) -> str:
    """'AMD EPYC, 1 thread(s), batch 1, torch 2.5.1, wall clock; median of 5 passes after 1
    warm-up' from coefficients.json's ``latency``; '' without it."""
    d = (latency or {}).get("device") or {}
    if not d:
        return ""
    runtime = d.get("runtime", "?")
    version = d.get("onnxruntime") if runtime == "onnxruntime" else d.get("torch")
    how = (f"; median of {latency['repeats']} pass(es) after {latency.get('warmup', '?')} "
           f"warm-up" if "repeats" in latency else "")
    return (f"{d.get('cpu', '?')}, {d.get('threads', '?')} thread(s), batch "
            f"{d.get('batch', '?')}, {runtime} {version or ''}".rstrip()
            + f", {d.get('clock', 'wall')} clock{how}")


def _family_latency(family: Any, coef: dict[str, Any] | None) -> FamilyLatency | None:
    if family is None or "latency_ms" not in family:
        return None
    timed = family[family["latency_ms"].map(finite)].sort_values("phi")
    if not len(timed):
        return None
    iqr = timed["latency_iqr_ms"] if "latency_iqr_ms" in timed else [math.nan] * len(timed)
    return FamilyLatency(phi=[int(p) for p in timed["phi"]],
                         name=[str(n) for n in timed["name"]],
                         macs=[float(m) for m in timed["macs"]],
                         median_ms=[float(x) for x in timed["latency_ms"]],
                         iqr_ms=[float(x) if finite(x) else math.nan for x in iqr],
                         device=device_text((coef or {}).get("latency")))


class Stage2Info(NamedTuple):
    coefficients: dict[str, Any] | None
    target_product: float  # alpha * beta^2 * gamma^2 the grid aims at (the paper's 2)
    grid: GridPoints  # COMPLETE compound points
    pending: int  # compound points not complete (running, failed, pruned)
    selected: tuple[float, float, float] | None
    surface: Surface
    ratio: Ratio | None
    compare: Compare | None
    family: list[dict[str, Any]] | None
    finalists: Finalists | None = None
    latency: FamilyLatency | None = None
    # whether the chosen point's lead over the runner-up is within the seeds' noise
    # (coefficients.json's)
    verdict: ChoiceVerdict | None = None


def _kind(df: Any) -> Any:
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


def _range(values: list[float], given: Any) -> tuple[float, float]:
    if isinstance(given, (list, tuple)) and len(given) == 2 and all(map(finite, given)):
        return float(given[0]), float(given[1])
    lo, hi = (min(values), max(values)) if values else (1.0, 2.0)
    return (lo, hi) if hi > lo else (lo - 0.05, hi + 0.05)


def _ratio(family: Any, coef: dict[str, Any] | None) -> Ratio | None:
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


def _compare(run: Run, coef: dict[str, Any] | None) -> Compare | None:
    summary = run.read_json("compare_single.json")
    if summary is not None:  # over seeds, at the same measured MACs
        return _compare_seeds(summary)
    done = run.completed()
    kinds = _kind(done)
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


def stage2_info(run: Run) -> Stage2Info:
    """Everything the stage 2 page shows, as plain data."""
    coef = run.read_json("coefficients.json")
    df = run.trials
    grid_rows = _kind(df) == "compound"
    for c in ("finalist", "replicate"):  # retrainings of a point are not grid points
        if c in df:
            grid_rows &= ~df[c].fillna(0).astype(bool)
    compound = df[grid_rows]
    done = compound[(compound["state"] == "COMPLETE") & compound["accuracy"].notna()]

    def col(k: str) -> list[float]:
        return [float(x) for x in done[k]] if k in done else [math.nan] * len(done)

    grid = GridPoints(number=[int(n) for n in done["number"]], alpha=col("alpha"),
                      beta=col("beta"), gamma=col("gamma"), accuracy=col("accuracy"),
                      macs_ratio=col("macs_ratio"), product=col("product"))
    ranges = (coef or {}).get("grid") or {}
    target = float((run.config.get("grid") or {}).get("target", TARGET_PRODUCT))
    surface = constraint_surface(_range(grid.alpha, ranges.get("alpha_range")),
                                 _range(grid.beta, ranges.get("beta_range")), product=target)
    selected = (tuple(float(coef[k]) for k in ("alpha", "beta", "gamma"))
                if coef and all(finite(coef.get(k)) for k in ("alpha", "beta", "gamma"))
                else None)
    family = run.read_table("family")
    return Stage2Info(
        coefficients=coef, target_product=target, grid=grid, pending=len(compound) - len(done),
        selected=selected, surface=surface, ratio=_ratio(family, coef),
        compare=_compare(run, coef), family=None if family is None else family.to_dict("records"),
        finalists=_finalists(coef), latency=_family_latency(family, coef),
        verdict=choice_verdict((coef or {}).get("finalists")))


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


def fig_latency(info: Stage2Info) -> Any:
    import plotly.graph_objects as go

    lat = info.latency
    hover = [f"{n}<br>{fmt_macs(m)} MACs<br>{ms:.2f} ms median, IQR {fmt_num(q, '.2f')} ms"
             for n, m, ms, q in zip(lat.name, lat.macs, lat.median_ms, lat.iqr_ms)]
    fig = go.Figure(go.Scatter(x=lat.macs, y=lat.median_ms, mode="lines+markers+text",
                               name="median latency", text=[f"B{p}" for p in lat.phi],
                               textposition="top left", marker=dict(size=9),
                               hovertext=hover, hoverinfo="text"))
    fig.update_layout(xaxis=dict(**log_ticks(lat.macs, pad=1.3), title="MACs"),
                      yaxis=dict(type="log", title="latency (ms)"), height=420,
                      margin=dict(t=20))
    return fig


def latency_note(lat: FamilyLatency) -> str:
    """Where it was timed, and the largest member's cost per MAC against the smallest's."""
    where = f"Timed on {lat.device}. " if lat.device else ""
    ms_per_gmac = [ms / (m / 1e9) for ms, m in zip(lat.median_ms, lat.macs) if m > 0]
    trend = ""
    if len(ms_per_gmac) > 1:
        trend = (f" From B{lat.phi[0]} to B{lat.phi[-1]}: {ms_per_gmac[0]:.1f} to "
                 f"{ms_per_gmac[-1]:.1f} ms per GMAC.")
    return (f"{where}Median end-to-end latency of one forward pass at each member's own "
            f"resolution (family.csv's latency_ms; the IQR in the table).{trend}")


FAMILY_COLUMNS = (("phi", "phi"), ("name", "name"), ("depth", "depth"), ("width", "width"),
                  ("resolution", "resolution"), ("params", "params"), ("macs", "MACs"),
                  ("macs_ratio", "MACs / B0"), ("ratio_vs_nominal", "/ 2^phi"),
                  ("latency_ms", "latency (ms)"), ("latency_iqr_ms", "IQR (ms)"),
                  ("rounding", "rounding"), ("paper_name", "paper"),
                  ("paper_params", "paper params"),
                  ("paper_macs", "paper FLOPS"), ("paper_depth", "paper depth"),
                  ("paper_width", "paper width"), ("paper_resolution", "paper resolution"))


LATENCY_COLUMNS = ("latency_ms", "latency_iqr_ms")


def family_columns(rows: list[dict[str, Any]]) -> tuple[tuple[str, str], ...]:
    """The family table's columns: the latency ones only where a member was timed."""
    timed = any(finite(r.get("latency_ms")) for r in rows)
    return tuple(c for c in FAMILY_COLUMNS if timed or c[0] not in LATENCY_COLUMNS)


def family_html(rows: list[dict[str, Any]]) -> str:
    def cell(k: str, v: Any) -> str:
        if k in ("params", "paper_params"):
            return fmt_params(v)
        if k in ("macs", "paper_macs"):
            return fmt_macs(v)
        if k in LATENCY_COLUMNS:
            return fmt_num(v, ".2f")
        if isinstance(v, float):
            return f"{v:g}" if math.isfinite(v) else "-"
        return "-" if v is None or v != v else str(v)

    columns = family_columns(rows)
    cells = [{k: cell(k, r.get(k)) for k, _ in columns} for r in rows]
    return table_html(columns, cells, table_id="family",
                      numeric=[k for k, _ in columns
                               if k not in ("name", "paper_name", "rounding")])


def _compare_note(c: Compare) -> str:
    if not c.verdict:
        return "One training per network (a run from before --compare-seeds): no spread."
    lines = [f"{k}: {v}" for k, v in zip(c.kind, c.verdict) if v]
    n = max(c.seeds or [0])
    return (f"Mean +- std over {n} seed(s) at the same measured MACs (compare_single.json); "
            f"against compound, Welch's t: {'; '.join(lines)}.")


def _family_note(family: list[dict[str, Any]] | None, missing: str) -> str:
    if not family:
        return f"family.csv {missing}."
    if not any(isinstance(r.get("paper_name"), str) for r in family):
        return "The paper's columns are filled when the base is EfficientNet-B0."
    return ""


def stage2_page(run: Run) -> Page:
    info = stage2_info(run)
    coef = info.coefficients or {}
    facts: list[tuple[str, str]] = []
    if info.selected:
        a, b, c = info.selected
        facts.append(("selected", f"alpha {a:g}, beta {b:g}, gamma {c:g} (alpha*beta^2*gamma^2 = "
                                  f"{fmt_num(coef.get('product'), '.3f')}, by "
                                  f"{coef.get('selected_by', '?')})"))
    if info.verdict is not None:
        facts.append(("choice", info.verdict.text))
    base = coef.get("base") or {}
    if base:
        facts.append(("base", f"{base.get('name', '?')}: {fmt_macs(base.get('macs'))} MACs, "
                              f"{fmt_params(base.get('params'))} params at "
                              f"{base.get('resolution', '?')} px"))
    grid = coef.get("grid") or {}
    if grid:
        facts.append(("grid", f"{grid.get('points_kept', '?')} of {grid.get('points_total', '?')} "
                              f"points within tolerance {coef.get('tolerance', '?')}, step "
                              f"{grid.get('step', '?')}"))
    missing = "not written yet (the grid search is still running, or stopped early)"
    sections = [
        Section("Grid points in (alpha, beta, gamma)", [("fig-grid", fig_grid(info))],
                note=f"{len(info.grid.number)} complete grid points coloured by accuracy"
                     f"{f', {info.pending} not complete' if info.pending else ''}; the surface is "
                     f"alpha*beta^2*gamma^2 = {info.target_product:g} (EfficientNet Eq. 3)."),
        Section("Measured MACs ratio against 2^phi",
                [("fig-ratio", fig_ratio(info))] if info.ratio else [],
                note=ratio_note(info.ratio) if info.ratio else f"family.csv {missing}."),
        Section("Finalists: the top points retrained over seeds",
                [("fig-finalists", fig_finalists(info))] if info.finalists else [],
                note=(f"Mean +- std over {info.finalists.seeds} seed(s) per finalist, beside the "
                      f"grid's single training (x); the chosen point has the best mean."
                      + (f" {info.verdict.text[0].upper()}{info.verdict.text[1:]}."
                         if info.verdict is not None else "")
                      if info.finalists else "No finalists (gridsearch --finalists 0, or the "
                      "grid has not finished).")),
        Section("Compound against single-dimension scaling",
                [("fig-compare", fig_compare(info))] if info.compare else [],
                note=_compare_note(info.compare) if info.compare else
                "Not run: pass --compare-single to gridsearch to scale depth, width and "
                "resolution alone as well, at the chosen point's measured MACs."),
        Section("Latency of the family against its MACs",
                [("fig-latency", fig_latency(info))] if info.latency else [],
                note=latency_note(info.latency) if info.latency else
                "Not measured: pass --latency to gridsearch (or to its --resume) to time every "
                "member end to end on this machine."),
        Section("The scaled family beside the paper's B0..B7",
                html=family_html(info.family) if info.family else "",
                note=_family_note(info.family, missing)),
    ]
    return Page(title=f"Stage 2 compound scaling: {run.run_dir.name}",
                facts=facts, sections=sections)
