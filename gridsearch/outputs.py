"""What a stage-2 run folder holds, from its study: grid.csv, coefficients.json and the family.

- ``grid.csv``/``.parquet``: one row per point (:func:`results.store.trials_frame`, stage 2).
- ``coefficients.json``: the chosen point, how it was chosen (``--select``: best accuracy or
  reward, ties to fewer MACs; with finalists, the best mean over their seeds, and the finalists
  table: per seed, mean, std and the grid's own single-seed score, and the ``verdict``: whether
  the chosen point's lead over the runner-up is within the seeds' noise), the constraint and its
  tolerance, its measured and formula MACs ratios, fvcore's own re-count of the chosen point
  (``fvcore``), the grid, and the single-dimension comparison.
- ``compare_single.json`` and ``compare_single.csv`` (``--compare-single``): compound against
  depth-, width- and resolution-only scaling at the same measured MACs, per variant the seeds'
  accuracies, mean and std, and Welch's t against compound with a verdict
  (:mod:`gridsearch.compare`).
- ``family/b<phi>.json`` and ``family.csv``: the scaled family (:mod:`gridsearch.family`), with
  each member's measured latency once ``--latency`` has timed it (:mod:`gridsearch.latency`;
  ``coefficients.json``'s ``latency`` says on which device and how).
``grid.csv`` is rewritten after every point; the rest is rebuilt from the study, idempotently,
at the run's final write (also after an interrupt), which is when the latency is measured.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from optuna.trial import FrozenTrial, TrialState

from nas.engine import FinalistPlan, FinalistRow, finalist_table, is_finalist
from nas.engine.finalists import choose, chosen, finalist_verdict, verdict_text
from nas.engine.recorder import stale_numbers
from results.rundir import write_json, write_table
from results.store import rank_key, trials_frame
from space import ArchSpec, Counts, compound, count_analytic, count_fvcore

from .compare import ALPHA, compare_rows, summarize
from .family import scale_family, write_family
from .latency import measure_family
from .grid import Enumeration, Point
from .plan import KINDS, Job, job_key

if TYPE_CHECKING:
    import optuna

    from .config import GridSearchConfig

__all__ = ["COEFFICIENTS_FILE", "COMPARE_FILE", "COMPARE_TABLE", "GRID_TABLE", "point_trials",
           "select", "choose_point", "finalists_done", "write_grid", "coefficients_summary",
           "compare_summary", "write_outputs"]

COEFFICIENTS_FILE = "coefficients.json"
COMPARE_FILE = "compare_single.json"
COMPARE_TABLE = "compare_single"
GRID_TABLE = "grid"


class StudySnapshot:
    """One read of a study's trials that answers ``get_trials`` as the study would. Every block
    of one output (grid.csv, coefficients.json, its finalists) reads the same trials, although
    other drivers of a shared study may finish trials between two reads."""

    def __init__(self, study: optuna.Study | StudySnapshot) -> None:
        self._trials = study.get_trials(deepcopy=False)
        self.user_attrs = dict(study.user_attrs)  # what the recorder keeps there (stale trials)

    def get_trials(self, deepcopy: bool = False,
                   states: Sequence[TrialState] | None = None) -> list[FrozenTrial]:
        return [t for t in self._trials if states is None or t.state in states]


def point_trials(study: optuna.Study, kind: str | None = None, *,
                 grid_only: bool = False) -> list[FrozenTrial]:
    """COMPLETE trials with an accuracy, of one kind (all kinds for None), finalist runs left
    out (:func:`choose_point` reads those); ``grid_only`` also leaves out the extra seeds
    (replicates) ``--compare-single`` trains."""
    return [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if "accuracy" in t.user_attrs and (kind is None or t.user_attrs.get("kind") == kind)
            and not is_finalist(t) and not (grid_only and t.user_attrs.get("replicate", 0))]


def select(study: optuna.Study, by: str) -> FrozenTrial | None:
    """The winning compound point: best accuracy (or reward), then fewer MACs, then earlier,
    among the grid's own trainings (one seed each: the comparison's extra seeds of the chosen
    point never re-decide the choice)."""
    return max(point_trials(study, "compound", grid_only=True), key=rank_key(by), default=None)


def finalists_done(study: optuna.Study, plan: FinalistPlan) -> bool:
    """Whether every finalist has all its seeds finished (so the choice is final)."""
    rows = finalist_table(study.get_trials(deepcopy=False), seeds=plan.seeds)
    return bool(rows) and all(r.complete for r in rows)


def choose_point(study: optuna.Study, config: GridSearchConfig
                 ) -> tuple[FrozenTrial | None, FinalistRow | None]:
    """The chosen compound point's grid trial, and its finalist row, by the engine's one
    chooser (:func:`nas.engine.finalists.chosen`): with finalists, the complete finalist with
    the best mean ``--select`` score over its seeds; before any is complete (or without
    finalists), the grid's own best single training (:func:`select`)."""
    trial, row, _ = chosen(study.get_trials(deepcopy=False), config.finalist_plan(),
                           search_best=select(study, config.select), by=config.select)
    return trial, row


def write_grid(study: optuna.Study, run_dir: Path) -> None:
    write_table(trials_frame(study.get_trials(deepcopy=False), stage=2,
                             interrupted=stale_numbers(study)), run_dir, GRID_TABLE)


def fvcore_recount(base: ArchSpec, point: Point, phi: float) -> dict[str, Any]:
    """fvcore's own count of the chosen point and the base (the measured constraint used the
    analytic count, which equals it; this records fvcore's figure, never assumed)."""
    spec = compound(base, point.alpha, point.beta, point.gamma, phi)
    fv, fv_base = count_fvcore(spec), count_fvcore(base)
    return {"macs": fv.macs, "params": fv.params, "base_macs": fv_base.macs,
            "ratio": fv.macs / fv_base.macs,
            "equals_analytic": (fv.macs, fv_base.macs) == (count_analytic(spec).macs,
                                                          count_analytic(base).macs),
            "uncounted_ops": dict(fv.uncounted_ops)}


def compare_summary(study: optuna.Study, config: GridSearchConfig,
                    compare: Sequence[Job]) -> dict[str, Any] | None:
    """``compare_single.json``: per variant (compound, depth, width, resolution) of the planned
    comparison ``compare`` (:func:`gridsearch.plan.compare_jobs`), its coefficients and
    measured MACs, each seed's accuracy, mean and std, and the test against compound; None
    until the comparison is planned."""
    if not compare:
        return None
    done = {job_key(t): t for t in point_trials(study)}
    goal = next((done[j.key].user_attrs["macs"] for j in compare
                 if j.kind == "compound" and j.key in done), None)
    accuracies: dict[str, list[float]] = {}
    extra: dict[str, dict[str, Any]] = {}
    for kind in KINDS:
        mine = [j for j in compare if j.kind == kind]
        trials = [done[j.key] for j in mine if j.key in done]
        accuracies[kind] = [float(t.user_attrs["accuracy"]) for t in trials]
        ua = trials[0].user_attrs if trials else {}
        macs = ua.get("macs")
        off = macs / goal - 1.0 if macs is not None and goal else None
        extra[kind] = {"alpha": mine[0].point.alpha, "beta": mine[0].point.beta,
                       "gamma": mine[0].point.gamma,
                       **{k: ua.get(k) for k in ("depth", "width", "resolution",
                                                 "proxy_resolution", "params", "macs",
                                                 "macs_ratio")},
                       "macs_vs_compound": off,
                       "within_tolerance": (None if off is None
                                            else abs(off) <= config.grid.tolerance + 1e-9),
                       "trials": [t.number for t in trials]}
    rows = compare_rows(accuracies, extra)
    return {"seeds_planned": config.compare_seeds, "tolerance": config.grid.tolerance,
            "compound_macs": goal, "alpha_significance": ALPHA,
            "complete": all(r["seeds"] == config.compare_seeds for r in rows),
            "variants": rows}


def _finalists_summary(study: optuna.Study, config: GridSearchConfig) -> dict[str, Any] | None:
    """coefficients.json's finalists block: the plan, each finalist's point, seeds, mean, std
    and the grid's own score of it, and the winner's trial; None without finalists."""
    plan = config.finalist_plan()
    if not plan.enabled:
        return None
    trials = study.get_trials(deepcopy=False)
    by_number = {t.number: t for t in trials}
    rows = finalist_table(trials, seeds=plan.seeds)
    # the winner from the same snapshot as the rows: with several drivers, a second read of the
    # study may hold a finalist that completed since, which the rows do not (choose_point's
    # rule, on these trials)
    winner = choose(rows, by=config.select)
    out = []
    for r in rows:
        ua = by_number[r.trial].user_attrs
        acc = [x["accuracy"] for x in r.runs if x["reward"] is not None]
        out.append({"alpha": ua.get("alpha"), "beta": ua.get("beta"), "gamma": ua.get("gamma"),
                    "macs": ua.get("macs"), "grid_accuracy": ua.get("accuracy"),
                    "accuracy_std": summarize(acc).std if len(acc) > 1 else None,
                    **r.to_dict()})
    return {"k": plan.k, "seeds": plan.seeds, "ranked_by": "reward",
            "chosen_by": f"best mean {config.select} over the seeds",
            "complete": bool(rows) and all(r.complete for r in rows),
            "winner": None if winner is None else winner.trial, "rows": out,
            "verdict": None if winner is None else choice_verdict(rows, winner, by_number,
                                                                  by=config.select)}


def _point_label(ua: dict[str, Any]) -> str:
    return f"alpha {ua.get('alpha'):g}, beta {ua.get('beta'):g}, gamma {ua.get('gamma'):g}"


def choice_verdict(rows: Sequence[FinalistRow], winner: FinalistRow,
                   by_number: dict[int, FrozenTrial], *, by: str) -> dict[str, Any]:
    """Whether the chosen point's mean ``--select`` score leads the runner-up's by more than
    their combined seed spread (:func:`nas.engine.finalists.noise_verdict`), as data and in
    words (``text``)."""
    v = finalist_verdict(rows, winner, measure=by)
    chosen = f"the chosen point ({_point_label(by_number[v.chosen].user_attrs)})"
    other = (None if v.runner_up is None else
             f"point {_point_label(by_number[v.runner_up].user_attrs)} (trial {v.runner_up})")
    return {**v.to_dict(), "text": verdict_text(v, chosen=chosen, runner_up=other)}


def write_compare(summary: dict[str, Any], run_dir: Path) -> None:
    import pandas as pd

    write_json(summary, run_dir / COMPARE_FILE)
    rows = [{**r, "accuracies": " ".join(f"{a:.6g}" for a in r["accuracies"]),
             "trials": " ".join(str(n) for n in r["trials"])} for r in summary["variants"]]
    write_table(pd.DataFrame(rows), run_dir, COMPARE_TABLE)


def coefficients_summary(study: optuna.Study, config: GridSearchConfig, base: ArchSpec,
                         base_counts: Counts, enum: Enumeration | None, jobs: Sequence[Job], *,
                         count: Callable[[ArchSpec], Counts],
                         compare: Sequence[Job] = ()) -> dict[str, Any] | None:
    """``coefficients.json``: the chosen point and how it was chosen; None while no compound
    point has finished (and none was given). Every part reads one snapshot of the study."""
    study = StudySnapshot(study)
    phi = config.phi
    if config.coefficients is not None:
        point = config.coefficients
        trained = [t for t in point_trials(study, "compound", grid_only=True)
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
        chosen, _ = choose_point(study, config)
        if chosen is None:
            return None
        ua = dict(chosen.user_attrs)
        point = Point(ua["alpha"], ua["beta"], ua["gamma"])
    finalists = _finalists_summary(study, config)
    compound_jobs = [j for j in jobs if j.kind == "compound" and j.replicate == 0]
    # a point is done when it trained fully or the ladder stopped it (a failure is not)
    done = {job_key(t) for t in study.get_trials(
        deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)) if not is_finalist(t)}
    comparison = compare_summary(study, config, compare) if config.compare_single else None
    return {
        "alpha": point.alpha, "beta": point.beta, "gamma": point.gamma, "phi": phi,
        "product": point.product,
        "constraint": None if enum is None else config.grid.constraint,
        "tolerance": None if enum is None else config.grid.tolerance,
        "grid": None if enum is None else enum.summary(),
        "macs_ratio": ua.get("macs_ratio"), "formula_ratio": point.product ** phi,
        "nominal_ratio": 2.0 ** phi,
        "fvcore": fvcore_recount(base, point, phi),
        "selected_by": config.selected_by,
        "chosen_by": ("finalists" if finalists and finalists["winner"] is not None
                      else "given" if config.coefficients is not None else "grid"),
        "finalists": finalists,
        **{k: ua.get(k) for k in ("accuracy", "reward", "macs", "params", "resolution",
                                  "proxy_resolution")},
        "trial": None if chosen is None else chosen.number,
        "points_done": sum(1 for j in compound_jobs if j.key in done),
        "points_to_train": len(compound_jobs),
        "complete": all(j.key in done for j in compound_jobs)
        and (finalists is None or finalists["complete"]),
        "base": {"name": base.name, "source": config.base, "arch_hash": base.arch_hash(),
                 "macs": base_counts.macs, "params": base_counts.params,
                 "resolution": base.resolution},
        # the single variants' rows of compare_single.json (accuracy: the mean over seeds)
        "compare_single": None if comparison is None else [
            {**r, "accuracy": r["accuracy_mean"] if r["seeds"] else None}
            for r in comparison["variants"] if r["kind"] != "compound"],
        "proxy": config.proxy.to_dict(), "seed": config.seed,
        "macs_counter": "fvcore",
        # the family's measured latency: where and how (gridsearch.latency.latency_summary);
        # None until gridsearch --latency has timed it
        "latency": None,
    }


def write_outputs(study: optuna.Study, config: GridSearchConfig, base: ArchSpec,
                  base_counts: Counts, enum: Enumeration | None, jobs: Sequence[Job],
                  run_dir: Path, *, count: Callable[[ArchSpec], Counts],
                  compare: Sequence[Job] = (), time_family: bool = False
                  ) -> tuple[dict[str, Any] | None, list[ArchSpec]]:
    """grid.csv/.parquet, coefficients.json, compare_single.json/.csv, family/b*.json and
    family.csv (idempotent). With ``time_family`` (and ``config.latency`` set) the family is
    then timed on this machine (:mod:`gridsearch.latency`) and written again with its
    latency: a Ctrl-C while it is timed leaves the files as they were before. The files are
    written from one snapshot of the study (:class:`StudySnapshot`)."""
    study = StudySnapshot(study)
    write_grid(study, run_dir)
    comparison = compare_summary(study, config, compare) if config.compare_single else None
    if comparison is not None:
        write_compare(comparison, run_dir)
    coef = coefficients_summary(study, config, base, base_counts, enum, jobs, count=count,
                                compare=compare)
    if coef is None:
        return None, []
    write_json(coef, run_dir / COEFFICIENTS_FILE)
    point = Point(coef["alpha"], coef["beta"], coef["gamma"])
    provenance = {"selected_by": coef["selected_by"], "accuracy": coef["accuracy"],
                  "search_phi": config.phi, "run": str(run_dir)}
    members = scale_family(base, point, phis=config.family, provenance=provenance,
                           rounding=config.rounding)
    write_family(run_dir, base, members)
    if time_family and config.latency is not None and members:
        members, coef["latency"] = measure_family(members, config.latency,
                                                  repeats=config.latency_repeats)
        write_family(run_dir, base, members)
        write_json(coef, run_dir / COEFFICIENTS_FILE)
    return coef, [m.spec for m in members]
