"""The result store: one documented trial table for every run, read from the Optuna study.

Both stages write their run folders through :func:`trials_frame`, so ``trials.csv`` /
``trials.parquet`` and the study storage never disagree. Columns (one row per trial):

=================  ======================================================================
number             Optuna trial number
state              COMPLETE, PRUNED, FAIL, INTERRUPTED, RUNNING or WAITING (INTERRUPTED: a
                   trial stopped by Ctrl-C or a dead driver, which Optuna holds as FAIL;
                   ``--resume`` runs it again, and it never counts as a failure)
reward             ACC x (MACs/T)^w (stage 1); NaN where not finished
accuracy           top-1 on the held-out validation split (last epoch trained)
macs               multiply-adds at the deployment resolution (fvcore's convention)
params             parameter count at deployment (3 channels, 1000 classes by default)
duration_s         wall time of the trial
arch_hash          :meth:`space.ArchSpec.arch_hash` of the candidate
node               host/node the trial ran on
fail_reason        why a FAIL trial failed
reused_from        trial whose identical architecture's result was reused, if any
proposed_by        where the trial's architecture came from (:func:`proposed_by`): ``sampler``
                   (this driver's sampler drew it; with ``reused_from`` set, the sampler truly
                   proposed a network the study already held), ``enqueued`` (``--enqueue``,
                   stage 2's grid points), ``retry`` (an interrupted trial run again) or
                   ``finalist``
finalist           True for a finalist run (the top distinct candidates retrained with several
                   seeds after the search, nas.engine.finalists), else False
finalist_of        a finalist run's source trial (the search trial it retrains)
finalist_seed      a finalist run's seed index (0 .. seeds-1)
p_<name>           each sampled parameter (``p_s3_kernel`` ...)
=================  ======================================================================

Stage 1 adds ``latency_ms``: the candidate's latency in ms on the search's device, predicted from
the run's latency table (``nas search --target-latency`` or ``--objectives accuracy,latency``;
empty in a MACs-only search).

Stage 2 (compound-scaling grid search, EfficientNet Sec. 3.3) adds, after those, one column per
grid-point value in :data:`STAGE2_COLUMNS` (``kind`` compound/depth/width/resolution, ``alpha``,
``beta``, ``gamma``, ``phi``, ``product`` = alpha*beta^2*gamma^2, the scaled ``depth``/``width``/
``resolution`` multipliers, ``proxy_resolution``, ``macs_ratio`` measured against the base,
``formula_ratio`` = product^phi, ``replicate`` = the seed index of ``--compare-single``'s extra
trainings, 0 for the grid's own), read from the trial's user attributes (or its params).

:func:`load_run` reads any run folder of either stage into a :class:`Run`: it finds the stage,
opens the study storage read-only (the run's ``study.journal``, or the ``storage`` URL that
``config.json`` records) and builds the table with :func:`trials_frame`, so what ``nas results``
and ``nas dashboard`` show is what the study holds. Trials still RUNNING and a journal being
appended to are fine: a reader sees the trials finished so far. Where the study cannot be read
the tables the run wrote (``trials.csv`` / ``grid.csv``) are used, with a warning, and
``Run.source`` says so.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Collection, Iterable, NamedTuple, Sequence

from space.errors import UnknownNameError

from .rundir import (CONFIG, JOURNAL, STAGES, StageLayout, open_storage, read_config, read_table,
                     stage_of, storage_url)

log = logging.getLogger(__name__)

COLUMNS = ["number", "state", "reward", "accuracy", "macs", "params", "duration_s", "arch_hash",
           "node", "fail_reason", "reused_from", "proposed_by", "finalist", "finalist_of",
           "finalist_seed", "datetime_start", "datetime_complete"]

# Stage 1 adds the candidate's predicted latency on the search's device (a latency search).
STAGE1_COLUMNS = ["latency_ms"]

STAGE2_COLUMNS = ["kind", "alpha", "beta", "gamma", "phi", "product", "depth", "width",
                  "resolution", "proxy_resolution", "macs_ratio", "formula_ratio", "replicate"]


# The fail_reason of a trial stopped by Ctrl-C or a dead driver (it is run again on --resume).
INTERRUPTED = "interrupted"
# The study attribute listing trials a resumed run failed because a dead driver had left them
# RUNNING (Optuna's public API cannot set a user attribute on a trial another process owns).
STALE_ATTR = "interrupted_trials"
# The table's state of such a trial: Optuna holds it as FAIL, but it did not fail.
INTERRUPTED_STATE = "INTERRUPTED"


def state_name(t: Any, interrupted: Collection[int] = ()) -> str:
    """A trial's state as the tables and the state counts name it: Optuna's, except that a
    FAIL trial that was interrupted (its ``fail_reason`` :data:`INTERRUPTED`, or its number in
    ``interrupted``, the study's :data:`STALE_ATTR`) is :data:`INTERRUPTED_STATE`."""
    name = t.state.name
    if name == "FAIL" and (t.user_attrs.get("fail_reason") == INTERRUPTED
                           or t.number in interrupted):
        return INTERRUPTED_STATE
    return name


def _interrupted_state(df: Any) -> Any:
    """A table written before interrupted trials had their own state (FAIL with fail_reason
    :data:`INTERRUPTED`) as it reads today."""
    if len(df) and "fail_reason" in df and "state" in df:
        df.loc[(df["state"] == "FAIL") & (df["fail_reason"] == INTERRUPTED),
               "state"] = INTERRUPTED_STATE
    return df


def proposed_by(t: Any) -> str:
    """Where a trial's architecture came from: ``finalist``, ``retry`` (an interrupted trial
    enqueued again: ``retry_of``, or Optuna's stale-trial retry), ``enqueued`` (fixed params
    given before the trial: ``--enqueue``, stage 2's points) or ``sampler``. Every driver, and
    every resume, samples with its own seed (nas.engine.study.driver_seed), so a ``sampler``
    trial that reuses an earlier result is a true re-proposal, not a replay."""
    ua, sa = t.user_attrs, getattr(t, "system_attrs", {}) or {}
    if ua.get("finalist"):
        return "finalist"
    if "retry_of" in ua or "failed_trial" in sa:
        return "retry"
    if "enqueued" in ua or "fixed_params" in sa:
        return "enqueued"
    return "sampler"


def trial_rows(trials: Iterable[Any], *, extra: Sequence[str] = (),
               interrupted: Iterable[int] = ()) -> list[dict[str, Any]]:
    """One dict per trial: :data:`COLUMNS`, then each ``extra`` column (from the trial's user
    attributes, else its params), then ``p_<name>`` per param. Trials in ``interrupted`` (the
    study's :data:`STALE_ATTR`) read ``fail_reason`` :data:`INTERRUPTED`."""
    stale = set(interrupted)
    rows = []
    for t in trials:
        ua = t.user_attrs
        dur = t.duration.total_seconds() if t.duration is not None else float("nan")
        row = {
            "number": t.number,
            "state": state_name(t, stale),
            "reward": ua.get("reward", float("nan")),
            "accuracy": ua.get("accuracy", float("nan")),
            "macs": ua.get("macs"),
            "params": ua.get("params"),
            "duration_s": dur,
            "arch_hash": ua.get("arch_hash"),
            "node": ua.get("node"),
            "fail_reason": ua.get("fail_reason",
                                  INTERRUPTED if t.number in stale else None),
            "reused_from": ua.get("reused_from"),
            "proposed_by": proposed_by(t),
            "finalist": bool(ua.get("finalist", False)),
            "finalist_of": ua.get("finalist_of"),
            "finalist_seed": ua.get("finalist_seed"),
            "datetime_start": t.datetime_start.isoformat() if t.datetime_start else None,
            "datetime_complete": t.datetime_complete.isoformat() if t.datetime_complete else None,
        }
        for k in extra:
            row[k] = ua.get(k, t.params.get(k))
        for k, v in t.params.items():
            row[f"p_{k}"] = v
        rows.append(row)
    return rows


# grid.csv leads with the point's coordinates (the dashboard reads them by name).
GRID_COLUMNS = ["number", "state", "kind", "alpha", "beta", "gamma", "phi", "product", "depth",
                "width", "resolution", "proxy_resolution", "accuracy", "macs", "params",
                "macs_ratio", "formula_ratio", "reward", "duration_s", "node", "fail_reason",
                "arch_hash"]

# Per stage: the columns after COLUMNS, and the leading column order of its table.
EXTRA_COLUMNS: dict[int, tuple[str, ...]] = {1: tuple(STAGE1_COLUMNS), 2: tuple(STAGE2_COLUMNS)}
LEADING_COLUMNS: dict[int, list[str]] = {1: COLUMNS, 2: GRID_COLUMNS}
_INTEGER_COLUMNS = ("macs", "params", "reused_from", "finalist_of", "finalist_seed", "resolution",
                    "proxy_resolution")


def trials_frame(trials: Iterable[Any], *, stage: int = 1, interrupted: Iterable[int] = ()):
    """The trial table (module docstring) of a stage's study as a pandas DataFrame: stage 1's
    ``trials.csv``, stage 2's ``grid.csv``. An empty study gives the columns with no rows."""
    import pandas as pd

    extra, leading = EXTRA_COLUMNS[stage], LEADING_COLUMNS[stage]
    df = pd.DataFrame(trial_rows(trials, extra=extra, interrupted=interrupted))
    if df.empty:
        df = pd.DataFrame(columns=list(dict.fromkeys([*leading, *COLUMNS, *extra])))
    df = df[leading + [c for c in df.columns if c not in leading]]
    for c in _INTEGER_COLUMNS:
        if c in df:
            df[c] = df[c].astype("Int64")
    return df


# ----------------------------------------------------------------------------- loading runs
@dataclass(frozen=True)
class Run:
    """A run folder of either stage, loaded: its settings and its trial table."""

    run_dir: Path
    stage: int
    config: dict[str, Any]
    trials: Any  # pandas DataFrame in the schema of the module docstring
    source: str  # "study", or the table file read when the study could not be
    storage: str  # the study's storage URL
    directions: tuple[str, ...] = ()
    study_attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def layout(self) -> StageLayout:
        return STAGES.get(str(self.stage))

    @property
    def study_name(self) -> str:
        return str(self.layout.study_name)

    def states(self) -> dict[str, int]:
        """Trials per state, e.g. ``{'COMPLETE': 7, 'RUNNING': 1}``."""
        return {str(k): int(v) for k, v in self.trials["state"].value_counts().items()}

    def completed(self):
        """COMPLETE trials that have an accuracy."""
        df = self.trials
        return df[(df["state"] == "COMPLETE") & df["accuracy"].notna()]

    def read_json(self, name: str) -> dict[str, Any] | None:
        """A JSON file the run wrote (``summary.json``, ``coefficients.json``), or None while
        it is not there yet."""
        p = self.run_dir / name
        return json.loads(p.read_text()) if p.is_file() else None

    def read_table(self, stem: str):
        """``stem.parquet`` (or ``stem.csv``) the run wrote, or None while it is not there."""
        return read_table(self.run_dir, stem)


def load_run(run_dir: str | Path, *, stage: int | None = None) -> Run:
    """Load a run folder of stage 1 (``nas search``) or stage 2 (``gridsearch``).

    The stage is ``stage`` if given, else ``config.json``'s ``stage``, else the study the
    storage holds (``stage1`` / ``stage2``), else the files the run wrote. Raises
    FileNotFoundError for a folder that is not a run folder.
    """
    run_dir = Path(run_dir)
    cfg_path = run_dir / CONFIG
    if not run_dir.is_dir() or not (cfg_path.is_file() or (run_dir / JOURNAL).is_file()):
        raise FileNotFoundError(f"{str(run_dir)!r} is not a run folder (no {CONFIG} or {JOURNAL} "
                                f"in it); pass the --out folder of a `nas search` or `gridsearch` "
                                f"run")
    config = read_config(run_dir) if cfg_path.is_file() else {}
    url = storage_url(run_dir, config.get("storage"))
    storage = _open_storage(url)
    names = _study_names(storage, url) if storage is not None else []
    found = stage_of(config)
    stage = stage or (int(found) if found in ("1", "2") else None) or _stage_from(names, run_dir)
    if stage not in EXTRA_COLUMNS:
        what = f"a {STAGES.get(found).command} run" if found in STAGES else f"stage={stage!r}"
        raise ValueError(f"{str(run_dir)!r} is {what}, not a search; pass the --out folder of "
                         f"a `nas search` or `gridsearch` run")
    layout = STAGES.get(str(stage))
    study_name = config.get("study_name") or layout.study_name
    if study_name in names:
        import optuna

        study = optuna.load_study(study_name=study_name, storage=storage)
        df = trials_frame(study.get_trials(deepcopy=False), stage=stage,
                          interrupted=study.user_attrs.get(STALE_ATTR, ()))
        return Run(run_dir=run_dir, stage=stage, config=config, trials=df, source="study",
                   storage=url, directions=tuple(d.name.lower() for d in study.directions),
                   study_attrs=dict(study.user_attrs))
    df = read_table(run_dir, str(layout.table))
    if df is None:
        df = trials_frame([], stage=stage)
        source = "none"
    else:
        df = _interrupted_state(df)
        source = f"{layout.table}.csv"
        log.warning("%s: no study %r in %s; read the trials from %s instead", run_dir,
                    study_name, url, source)
    return Run(run_dir=run_dir, stage=stage, config=config, trials=df, source=source,
               storage=url)


def _open_storage(url: str) -> Any:
    """The storage, or None when there is none to read. A journal file that does not exist is
    not created (a reader must not write)."""
    if url.startswith("journal:") and not Path(url[len("journal:"):]).is_file():
        return None
    try:
        return open_storage(url)
    except Exception as e:  # an unreachable database: fall back to the written tables
        log.warning("cannot open the study storage %s: %s", url, e)
        return None


def _study_names(storage: Any, url: str) -> list[str]:
    import optuna

    try:
        return list(optuna.get_all_study_names(storage))
    except Exception as e:
        log.warning("cannot read the study storage %s: %s", url, e)
        return []


def _stage_from(names: Sequence[str], run_dir: Path) -> int:
    layouts = {s: STAGES.get(str(s)) for s in EXTRA_COLUMNS}
    found = [s for s, lay in layouts.items() if lay.study_name in names]
    if len(found) == 1:
        return found[0]
    found = [s for s, lay in layouts.items() if any((run_dir / m).is_file() for m in lay.markers)]
    if len(found) == 1:
        return found[0]
    raise ValueError(f"cannot tell which stage {str(run_dir)!r} ran: expected one study named "
                     f"{' or '.join(repr(l.study_name) for l in layouts.values())} (found "
                     f"{sorted(names) or 'none'}) or the files of one stage; pass the folder of "
                     f"a `nas search` or `gridsearch` run")


class ChoiceVerdict(NamedTuple):
    """Whether a run's choice (stage 1's B0, stage 2's point) leads the runner-up by more than
    the seeds' noise, as the run wrote it (summary.json's or coefficients.json's
    ``finalists.verdict``, made by nas.engine.finalists.noise_verdict); the dashboards show it,
    never recompute it."""

    text: str  # the verdict in words
    within_noise: bool | None  # None: cannot be judged (one seed, or no runner-up)
    chosen: int  # source trials
    runner_up: int | None
    lead: float | None  # chosen mean - runner-up mean
    spread: float | None  # their combined seed std


def choice_verdict(finalists: dict[str, Any] | None) -> ChoiceVerdict | None:
    """The verdict of a run file's ``finalists`` block; None where it has none (no finalists,
    none complete yet, or a run written before verdicts were recorded)."""
    v = (finalists or {}).get("verdict")
    if not v:
        return None
    return ChoiceVerdict(text=str(v["text"]), within_noise=v.get("within_noise"),
                         chosen=int(v["chosen"]), runner_up=v.get("runner_up"),
                         lead=v.get("lead"), spread=v.get("spread"))


def chosen_trial(run: Run) -> int | None:
    """The trial the run chose: stage 1's B0 (summary.json's ``best``), stage 2's point
    (coefficients.json's ``trial``); None until the run has written it."""
    if run.stage == 2:
        trial = (run.read_json("coefficients.json") or {}).get("trial")
    else:
        trial = ((run.read_json("summary.json") or {}).get("best") or {}).get("trial")
    return None if trial is None else int(trial)


def trial_roles(df: Any, *, chosen: int | None, chosen_name: str = "B0") -> list[str]:
    """What each row of a trial table is, in words, row for row: ``chosen_name`` (the run's
    choice, :func:`chosen_trial`), ``finalist`` (a search trial retrained as a finalist),
    ``finalist run of trial N, seed i`` (one of those retrainings; ``of B0`` for the chosen
    one's), or '' (a trial of the search). Tables written before the finalists have no
    ``finalist`` column: every row is then a search trial."""
    import pandas as pd

    def col(name: str) -> list[Any]:
        return [None if pd.isna(v) else v for v in df[name]] if name in df else [None] * len(df)

    is_run = [bool(v) for v in col("finalist")]
    of, seed = col("finalist_of"), col("finalist_seed")
    sources = {int(o) for o, r in zip(of, is_run) if r and o is not None}
    out = []
    for n, run_, o, i in zip(col("number"), is_run, of, seed):
        if run_ and o is not None:
            which = chosen_name if int(o) == chosen else f"trial {int(o)}"
            out.append(f"finalist run of {which}" + ("" if i is None else f", seed {int(i)}"))
        elif chosen is not None and int(n) == chosen:
            out.append(chosen_name)
        elif int(n) in sources:
            out.append("finalist")
        else:
            out.append("")
    return out


# How trials rank, best first: by the value (reward or accuracy), ties to fewer MACs, then to
# the earlier trial. Stage 1's best.json, stage 2's --select and `nas results` all use it.
RANKINGS = ("reward", "accuracy")


def rank_key(by: str) -> Callable[[Any], tuple[float, float, int]]:
    """A sort key over finished trials (Optuna FrozenTrials) that ranks by ``by``; the larger
    key is the better trial."""
    if by not in RANKINGS:
        raise UnknownNameError(f"unknown ranking {by!r}; known: {', '.join(RANKINGS)}")
    return lambda t: (t.user_attrs[by], -(t.user_attrs.get("macs") or 0), -t.number)


def top_trials(df: Any, k: int | None = None, *, by: str | None = None) -> Any:
    """The best COMPLETE trials, best first: by ``by`` (``reward`` or ``accuracy``; default
    reward where the run has rewards, else accuracy), ties to fewer MACs, then to the earlier
    trial (the order stage 1's best.json and stage 2's ``--select`` use)."""
    done = df[df["state"] == "COMPLETE"]
    if by is None:
        by = "reward" if done["reward"].notna().any() else "accuracy"
    if by not in RANKINGS:
        raise UnknownNameError(f"unknown ranking {by!r}; known: {', '.join(RANKINGS)}")
    done = done.sort_values([by, "macs", "number"], ascending=[False, True, True],
                            na_position="last")
    return done if k is None else done.head(k)


def ranking(run: Run) -> str | None:
    """What a run ranks its trials by: stage 2's ``select`` setting (accuracy by default),
    stage 1's reward."""
    if run.stage == 2:
        return str(run.config.get("select") or "accuracy")
    return None
