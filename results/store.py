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
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Iterable

COLUMNS = ["number", "state", "reward", "accuracy", "macs", "params", "duration_s", "arch_hash",
           "node", "fail_reason", "reused_from", "datetime_start", "datetime_complete"]


def trial_rows(trials: Iterable[Any]) -> list[dict[str, Any]]:
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
        for k, v in t.params.items():
            row[f"p_{k}"] = v
        rows.append(row)
    return rows


def trials_frame(trials: Iterable[Any]):
    import pandas as pd

    rows = trial_rows(trials)
    df = pd.DataFrame(rows)
    if df.empty:
        df = pd.DataFrame(columns=COLUMNS)
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
