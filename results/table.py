"""The trial table: one documented table for every run, and its one writer.

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
empty in a MACs-only search); and ``evaluator``: who scored the row, ``proxy`` (trained from
scratch) or ``supernet`` (weights inherited from the run's supernet, ``nas search --evaluator
supernet``; its finalists read ``proxy``), empty in runs from before the column.

Stage 2 (compound-scaling grid search, EfficientNet Sec. 3.3) adds, after those, one column per
grid-point value in :data:`STAGE2_COLUMNS` (``kind`` compound/depth/width/resolution, ``alpha``,
``beta``, ``gamma``, ``phi``, ``product`` = alpha*beta^2*gamma^2, the scaled ``depth``/``width``/
``resolution`` multipliers, ``proxy_resolution``, ``macs_ratio`` measured against the base,
``formula_ratio`` = product^phi, ``replicate`` = the seed index of ``--compare-single``'s extra
trainings, 0 for the grid's own), read from the trial's user attributes (or its params).

:mod:`results.store` reads a run folder back into this table (:func:`results.store.load_run`).
"""
from __future__ import annotations

from typing import Any, Collection, Iterable, Sequence

COLUMNS = ["number", "state", "reward", "accuracy", "macs", "params", "duration_s", "arch_hash",
           "node", "fail_reason", "reused_from", "proposed_by", "finalist", "finalist_of",
           "finalist_seed", "datetime_start", "datetime_complete"]

# Stage 1 adds the candidate's predicted latency on the search's device (a latency search)
# and who scored the row (proxy or supernet).
STAGE1_COLUMNS = ["latency_ms", "evaluator"]

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


def interrupted_state(df: Any) -> Any:
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
