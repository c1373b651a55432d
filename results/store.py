"""The result store: a run folder of either stage read back, with the trial table of
:mod:`results.table` (its columns are documented there), and what the run chose.

:func:`load_run` reads any run folder of either stage into a :class:`Run`: it finds the stage,
opens the study storage read-only (the run's ``study.journal``, or the ``storage`` URL that
``config.json`` records) and builds the table with :func:`results.table.trials_frame`, so what
``nas results`` and ``nas dashboard`` show is what the study holds. Trials still RUNNING and a
journal being appended to are fine: a reader sees the trials finished so far. Where the study
cannot be read the tables the run wrote (``trials.csv`` / ``grid.csv``) are used, with a
warning, and ``Run.source`` says so.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, NamedTuple, Sequence

from space.errors import UnknownNameError

from .rundir import (CONFIG, JOURNAL, STAGES, StageLayout, open_storage, read_config, read_table,
                     stage_of, storage_url)
# the trial table's schema and writer, read here and imported from here by the stages
from .table import (COLUMNS, EXTRA_COLUMNS, GRID_COLUMNS, INTERRUPTED, INTERRUPTED_STATE,
                    LEADING_COLUMNS, STAGE1_COLUMNS, STAGE2_COLUMNS, STALE_ATTR,
                    interrupted_state, proposed_by, state_name, trial_rows, trials_frame)

__all__ = ["COLUMNS", "EXTRA_COLUMNS", "GRID_COLUMNS", "INTERRUPTED", "INTERRUPTED_STATE",
           "LEADING_COLUMNS", "STAGE1_COLUMNS", "STAGE2_COLUMNS", "STALE_ATTR", "ChoiceVerdict",
           "RANKINGS", "Run", "choice_verdict", "chosen_trial", "load_run", "proposed_by",
           "rank_key", "ranking", "state_name", "top_trials", "trial_roles", "trial_rows",
           "trials_frame"]

log = logging.getLogger(__name__)


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
        df = interrupted_state(df)
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
