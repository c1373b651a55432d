"""Compute: :func:`stage1_info` reads a :class:`results.store.Run` into the page's plain data
(:class:`results.stage1.data.Stage1Info`), through each figure module's compute half; the
finalists as the search wrote them (:func:`results.stage1.finalists.read_finalists`).
"""
from __future__ import annotations

from typing import Any

from ..html import finite
from ..store import Run, top_trials
from .choices import choice_grids
from .cost import costs, front_metric, front_of, iso_curves, points_of, run_objective
from .data import Stage1Info
from .finalists import read_finalists
from .latency import latency_info
from .progress import progress_of
from .specs import Specs

TOP_K = 10  # trials whose choices are counted and listed


def stage1_info(run: Run, *, top_k: int = TOP_K) -> Stage1Info:
    """Everything the stage 1 page shows, as plain data."""
    from space.counting import stage_table

    cfg = run.config
    objective = run_objective(cfg)
    specs = Specs(cfg)
    everything = run.trials
    fin = read_finalists(run, arch=specs.arch)  # summary.json's finalists block
    finalists = fin.rows
    df = (everything[~everything["finalist"].astype(bool)] if "finalist" in everything
          else everything)  # the search's own trials; the finalists are drawn apart
    done = df[(df["state"] == "COMPLETE") & df["accuracy"].notna()]
    points = points_of(done, specs)
    pruned = points_of(df[df["state"] == "PRUNED"], specs)
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
        iso=iso_curves(points.reward, objective=objective,
                        span=costs(points, objective.metric) + costs(pruned, objective.metric)),
        accuracy_range=(min(accs, default=0.0) - pad, max(accs, default=1.0) + pad),
        progress=progress_of(done), top=top_rows, choices=choice_grids(top, specs),
        best_stages=best_stages, finalists=finalists, finalist_seeds=fin.seeds,
        finalists_from=fin.source, b0=fin.b0,
        floor=objective.floor, metric=objective.metric, target=objective.target,
        front_metric=along, latency=latency,
        verdict=fin.verdict)
