"""Compute: :func:`stage2_info` reads a :class:`results.store.Run` (and the coefficients.json /
family.csv the grid search wrote) into the page's plain data
(:class:`results.stage2.data.Stage2Info`), through each figure module's compute half.
"""
from __future__ import annotations

import math

from ..html import finite
from ..store import Run, choice_verdict
from .compare import compare_of
from .data import TARGET_PRODUCT, GridPoints, Stage2Info
from .finalists import finalists_of
from .grid import axis_range, constraint_surface, kind_of
from .latency import family_latency
from .ratio import ratio_of


def stage2_info(run: Run) -> Stage2Info:
    """Everything the stage 2 page shows, as plain data."""
    coef = run.read_json("coefficients.json")
    df = run.trials
    grid_rows = kind_of(df) == "compound"
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
    surface = constraint_surface(axis_range(grid.alpha, ranges.get("alpha_range")),
                                 axis_range(grid.beta, ranges.get("beta_range")), product=target)
    selected = (tuple(float(coef[k]) for k in ("alpha", "beta", "gamma"))
                if coef and all(finite(coef.get(k)) for k in ("alpha", "beta", "gamma"))
                else None)
    family = run.read_table("family")
    return Stage2Info(
        coefficients=coef, target_product=target, grid=grid, pending=len(compound) - len(done),
        selected=selected, surface=surface, ratio=ratio_of(family, coef),
        compare=compare_of(run, coef), family=None if family is None else family.to_dict("records"),
        finalists=finalists_of(coef), latency=family_latency(family, coef),
        verdict=choice_verdict((coef or {}).get("finalists")))
