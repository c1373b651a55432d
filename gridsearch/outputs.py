"""What a stage-2 run folder holds, from its study: grid.csv, coefficients.json and the family.

- ``grid.csv``/``.parquet``: one row per point (:func:`results.store.trials_frame`, stage 2).
- ``coefficients.json``: the chosen point, how it was chosen (``--select``: best accuracy or
  reward, ties to fewer MACs), its measured (fvcore) and formula MACs ratios, the grid, and the
  single-dimension comparison.
- ``family/b<phi>.json`` and ``family.csv``: the scaled family (:mod:`gridsearch.family`).
All of it is rebuilt from the study, idempotently, after every point.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from optuna.trial import FrozenTrial, TrialState

from nas.engine.recorder import stale_numbers
from results.rundir import write_json, write_table
from results.store import rank_key, trials_frame
from space import ArchSpec, Counts, compound

from .family import scale_family, write_family
from .grid import Enumeration, Point
from .plan import SINGLE_DIMENSION, Job, job_key

if TYPE_CHECKING:
    import optuna

    from .search import GridSearchConfig

__all__ = ["COEFFICIENTS_FILE", "GRID_TABLE", "point_trials", "select", "write_grid",
           "coefficients_summary", "write_outputs"]

COEFFICIENTS_FILE = "coefficients.json"
GRID_TABLE = "grid"


def point_trials(study: optuna.Study, kind: str | None = None) -> list[FrozenTrial]:
    """COMPLETE trials with an accuracy, of one kind (all kinds for None)."""
    return [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if "accuracy" in t.user_attrs and (kind is None or t.user_attrs.get("kind") == kind)]


def select(study: optuna.Study, by: str) -> FrozenTrial | None:
    """The winning compound point: best accuracy (or reward), then fewer MACs, then earlier."""
    return max(point_trials(study, "compound"), key=rank_key(by), default=None)


def write_grid(study: optuna.Study, run_dir: Path) -> None:
    write_table(trials_frame(study.get_trials(deepcopy=False), stage=2,
                             interrupted=stale_numbers(study)), run_dir, GRID_TABLE)


def _single_summary(study: optuna.Study, jobs: Sequence[Job]) -> list[dict[str, Any]]:
    out = []
    for kind in SINGLE_DIMENSION:
        if not any(j.kind == kind for j in jobs):
            continue
        done = point_trials(study, kind)
        ua = done[-1].user_attrs if done else {}
        p = SINGLE_DIMENSION[kind]
        out.append({"kind": kind, "alpha": p.alpha, "beta": p.beta, "gamma": p.gamma,
                    **{k: ua.get(k) for k in ("depth", "width", "resolution",
                                              "proxy_resolution", "accuracy", "macs", "params",
                                              "macs_ratio", "reward")},
                    "trial": done[-1].number if done else None})
    return out


def coefficients_summary(study: optuna.Study, config: GridSearchConfig, base: ArchSpec,
                         base_counts: Counts, enum: Enumeration | None, jobs: Sequence[Job], *,
                         count: Callable[[ArchSpec], Counts]) -> dict[str, Any] | None:
    """``coefficients.json``: the chosen point and how it was chosen; None while no compound
    point has finished (and none was given)."""
    phi = config.phi
    if config.coefficients is not None:
        point = config.coefficients
        trained = [t for t in point_trials(study, "compound")
                   if (t.user_attrs["alpha"], t.user_attrs["beta"], t.user_attrs["gamma"])
                   == (point.alpha, point.beta, point.gamma)]
        chosen = trained[-1] if trained else None
        if chosen is None:
            counts = count(compound(base, point.alpha, point.beta, point.gamma, phi))
            ua: dict[str, Any] = {"macs": counts.macs, "params": counts.params,
                                  "macs_ratio": counts.macs / base_counts.macs}
        else:
            ua = dict(chosen.user_attrs)
    else:
        chosen = select(study, config.select)
        if chosen is None:
            return None
        ua = dict(chosen.user_attrs)
        point = Point(ua["alpha"], ua["beta"], ua["gamma"])
    compound_jobs = [j for j in jobs if j.kind == "compound"]
    done = {job_key(t) for t in point_trials(study, "compound")}
    return {
        "alpha": point.alpha, "beta": point.beta, "gamma": point.gamma, "phi": phi,
        "product": point.product,
        "tolerance": None if enum is None else config.grid.tolerance,
        "grid": None if enum is None else enum.summary(),
        "macs_ratio": ua.get("macs_ratio"), "formula_ratio": point.product ** phi,
        "nominal_ratio": 2.0 ** phi,
        "selected_by": config.selected_by,
        **{k: ua.get(k) for k in ("accuracy", "reward", "macs", "params", "resolution",
                                  "proxy_resolution")},
        "trial": None if chosen is None else chosen.number,
        "points_done": sum(1 for j in compound_jobs if j.key in done),
        "points_to_train": len(compound_jobs),
        "complete": all(j.key in done for j in compound_jobs),
        "base": {"name": base.name, "source": config.base, "arch_hash": base.arch_hash(),
                 "macs": base_counts.macs, "params": base_counts.params,
                 "resolution": base.resolution},
        "compare_single": _single_summary(study, jobs) if config.compare_single else None,
        "proxy": config.proxy.to_dict(), "seed": config.seed,
        "macs_counter": "fvcore",
    }


def write_outputs(study: optuna.Study, config: GridSearchConfig, base: ArchSpec,
                  base_counts: Counts, enum: Enumeration | None, jobs: Sequence[Job],
                  run_dir: Path, *, count: Callable[[ArchSpec], Counts]
                  ) -> tuple[dict[str, Any] | None, list[ArchSpec]]:
    """grid.csv/.parquet, coefficients.json, family/b*.json and family.csv (idempotent)."""
    write_grid(study, run_dir)
    coef = coefficients_summary(study, config, base, base_counts, enum, jobs, count=count)
    if coef is None:
        return None, []
    write_json(coef, run_dir / COEFFICIENTS_FILE)
    point = Point(coef["alpha"], coef["beta"], coef["gamma"])
    provenance = {"selected_by": coef["selected_by"], "accuracy": coef["accuracy"],
                  "search_phi": config.phi, "run": str(run_dir)}
    members = scale_family(base, point, phis=config.family, provenance=provenance)
    write_family(run_dir, base, members)
    return coef, [m.spec for m in members]
