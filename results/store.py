"""The result store: one documented trial table for every run, read from the Optuna study.

Both stages write their run folders through :func:`trials_frame`, so ``trials.csv`` /
``trials.parquet`` and the study storage never disagree. Columns (one row per trial):

=================  ======================================================================
number             Optuna trial number
state              COMPLETE, PRUNED, FAIL, RUNNING or WAITING
reward             ACC x (MACs/T)^w (stage 1); NaN where not finished
accuracy           top-1 on the held-out validation split (last epoch trained)
macs               multiply-adds at the deployment resolution (fvcore's convention)
params             parameter count at deployment (3 channels, 1000 classes by default)
duration_s         wall time of the trial
arch_hash          :meth:`space.ArchSpec.arch_hash` of the candidate
node               host/node the trial ran on
fail_reason        why a FAIL trial failed
reused_from        trial whose identical architecture's result was reused, if any
p_<name>           each sampled parameter (``p_s3_kernel`` ...)
=================  ======================================================================

Stage 2 (compound-scaling grid search, EfficientNet Sec. 3.3) adds, after those, one column per
grid-point value in :data:`STAGE2_COLUMNS` (``kind`` compound/depth/width/resolution, ``alpha``,
``beta``, ``gamma``, ``phi``, ``product`` = alpha*beta^2*gamma^2, the scaled ``depth``/``width``/
``resolution`` multipliers, ``proxy_resolution``, ``macs_ratio`` measured against the base,
``formula_ratio`` = product^phi), read from the trial's user attributes (or its params).

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
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

log = logging.getLogger(__name__)

COLUMNS = ["number", "state", "reward", "accuracy", "macs", "params", "duration_s", "arch_hash",
           "node", "fail_reason", "reused_from", "datetime_start", "datetime_complete"]

STAGE2_COLUMNS = ["kind", "alpha", "beta", "gamma", "phi", "product", "depth", "width",
                  "resolution", "proxy_resolution", "macs_ratio", "formula_ratio"]


def trial_rows(trials: Iterable[Any], *, extra: Sequence[str] = ()) -> list[dict[str, Any]]:
    """One dict per trial: :data:`COLUMNS`, then each ``extra`` column (from the trial's user
    attributes, else its params), then ``p_<name>`` per param."""
    rows = []
    for t in trials:
        ua = t.user_attrs
        dur = t.duration.total_seconds() if t.duration is not None else float("nan")
        row = {
            "number": t.number,
            "state": t.state.name,
            "reward": ua.get("reward", float("nan")),
            "accuracy": ua.get("accuracy", float("nan")),
            "macs": ua.get("macs"),
            "params": ua.get("params"),
            "duration_s": dur,
            "arch_hash": ua.get("arch_hash"),
            "node": ua.get("node"),
            "fail_reason": ua.get("fail_reason"),
            "reused_from": ua.get("reused_from"),
            "datetime_start": t.datetime_start.isoformat() if t.datetime_start else None,
            "datetime_complete": t.datetime_complete.isoformat() if t.datetime_complete else None,
        }
        for k in extra:
            row[k] = ua.get(k, t.params.get(k))
        for k, v in t.params.items():
            row[f"p_{k}"] = v
        rows.append(row)
    return rows


def trials_frame(trials: Iterable[Any], *, extra: Sequence[str] = ()):
    """The trial table (module docstring) as a pandas DataFrame; an empty study gives the
    columns with no rows."""
    import pandas as pd

    rows = trial_rows(trials, extra=extra)
    df = pd.DataFrame(rows)
    if df.empty:
        df = pd.DataFrame(columns=COLUMNS + list(extra))
    for c in ("macs", "params", "reused_from"):
        if c in df:
            df[c] = df[c].astype("Int64")
    return df


def write_table(df, folder: Path, stem: str) -> None:
    """Write ``stem.csv`` and ``stem.parquet`` atomically (readers never see half a file)."""
    folder.mkdir(parents=True, exist_ok=True)
    for suffix, writer in ((".csv", lambda p: df.to_csv(p, index=False)),
                           (".parquet", lambda p: df.to_parquet(p, index=False))):
        final = folder / f"{stem}{suffix}"
        tmp = folder / f".{stem}{suffix}.tmp"
        writer(tmp)
        tmp.replace(final)


def write_json(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(_clean(obj), indent=2) + "\n")
    tmp.replace(path)


def _clean(obj: Any) -> Any:
    """JSON-safe: NaN/inf become null."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


# ----------------------------------------------------------------------------- loading runs
@dataclass(frozen=True)
class StageLayout:
    """What marks a stage's run folder, and where its trials live."""

    study_name: str
    table: str  # the trial table the stage writes (fallback when the study cannot be read)
    markers: tuple[str, ...]  # files only this stage writes
    extra: tuple[str, ...] = ()  # stage-specific columns after COLUMNS


STAGES: dict[int, StageLayout] = {
    1: StageLayout("stage1", "trials", ("best.json", "trials.csv", "trials.parquet")),
    2: StageLayout("stage2", "grid", ("coefficients.json", "grid.csv", "grid.parquet",
                                      "family.csv"), tuple(STAGE2_COLUMNS)),
}


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
    def study_name(self) -> str:
        return STAGES[self.stage].study_name

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
        return _read_table(self.run_dir, stem)


def _read_table(folder: Path, stem: str):
    import pandas as pd

    if (folder / f"{stem}.parquet").is_file():
        return pd.read_parquet(folder / f"{stem}.parquet")
    if (folder / f"{stem}.csv").is_file():
        return pd.read_csv(folder / f"{stem}.csv")
    return None


def load_run(run_dir: str | Path, *, stage: int | None = None) -> Run:
    """Load a run folder of stage 1 (``nas search``) or stage 2 (``gridsearch``).

    The stage is ``stage`` if given, else ``config.json``'s ``stage``, else the study the
    storage holds (``stage1`` / ``stage2``), else the files the run wrote. Raises
    FileNotFoundError for a folder that is not a run folder.
    """
    from nas.runs import CONFIG, JOURNAL, storage_url

    run_dir = Path(run_dir)
    cfg_path = run_dir / CONFIG
    if not run_dir.is_dir() or not (cfg_path.is_file() or (run_dir / JOURNAL).is_file()):
        raise FileNotFoundError(f"{str(run_dir)!r} is not a run folder (no {CONFIG} or {JOURNAL} "
                                f"in it); pass the --out folder of a `nas search` or `gridsearch` "
                                f"run")
    config = json.loads(cfg_path.read_text()) if cfg_path.is_file() else {}
    url = storage_url(run_dir, config.get("storage"))
    storage = _open_storage(url)
    names = _study_names(storage, url) if storage is not None else []
    stage = stage or config.get("stage") or _stage_from(names, run_dir)
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {sorted(STAGES)}, but got stage={stage!r}")
    layout = STAGES[stage]
    if layout.study_name in names:
        import optuna

        study = optuna.load_study(study_name=layout.study_name, storage=storage)
        df = trials_frame(study.get_trials(deepcopy=False), extra=layout.extra)
        return Run(run_dir=run_dir, stage=stage, config=config, trials=df, source="study",
                   storage=url, directions=tuple(d.name.lower() for d in study.directions),
                   study_attrs=dict(study.user_attrs))
    df = _read_table(run_dir, layout.table)
    if df is None:
        df = trials_frame([], extra=layout.extra)
        source = "none"
    else:
        source = f"{layout.table}.csv"
        log.warning("%s: no study %r in %s; read the trials from %s instead", run_dir,
                    layout.study_name, url, source)
    return Run(run_dir=run_dir, stage=stage, config=config, trials=df, source=source,
               storage=url)


def _open_storage(url: str) -> Any:
    """The storage, or None when there is none to read. A journal file that does not exist is
    not created (a reader must not write)."""
    from nas.runs import make_storage

    if url.startswith("journal:") and not Path(url[len("journal:"):]).is_file():
        return None
    try:
        return make_storage(url)
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
    found = [s for s, lay in STAGES.items() if lay.study_name in names]
    if len(found) == 1:
        return found[0]
    found = [s for s, lay in STAGES.items() if any((run_dir / m).is_file() for m in lay.markers)]
    if len(found) == 1:
        return found[0]
    raise ValueError(f"cannot tell which stage {str(run_dir)!r} ran: expected one study named "
                     f"{' or '.join(repr(l.study_name) for l in STAGES.values())} (found "
                     f"{sorted(names) or 'none'}) or the files of one stage; pass the folder of "
                     f"a `nas search` or `gridsearch` run")


def top_trials(df: Any, k: int | None = None, *, by: str | None = None) -> Any:
    """The best COMPLETE trials, best first: by ``by`` (``reward`` or ``accuracy``; default
    reward where the run has rewards, else accuracy), ties to fewer MACs, then to the earlier
    trial (the order stage 1's best.json and stage 2's ``--select`` use)."""
    done = df[df["state"] == "COMPLETE"]
    if by is None:
        by = "reward" if done["reward"].notna().any() else "accuracy"
    if by not in ("reward", "accuracy"):
        raise KeyError(f"unknown ranking {by!r}; known: reward, accuracy")
    done = done.sort_values([by, "macs", "number"], ascending=[False, True, True],
                            na_position="last")
    return done if k is None else done.head(k)


def ranking(run: Run) -> str | None:
    """What a run ranks its trials by: stage 2's ``select`` setting (accuracy by default),
    stage 1's reward."""
    if run.stage == 2:
        return str(run.config.get("select") or "accuracy")
    return None
