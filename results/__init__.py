"""results: the run folder and its schema (one reader/writer), Pareto front and dashboards.

It imports only :mod:`space` (plus pandas, plotly and optuna's storage reader): a dashboard reads
a run folder, never the engine. ``import results`` needs neither plotly nor optuna: the dashboards
are imported from :mod:`results.dashboard` where used.
"""
from __future__ import annotations

from .pareto import dominates, pareto_front
from .rundir import (CONFIG, JOURNAL, STAGES, SUMMARY, RunFolderInUse, StageLayout,
                     latest_run_dir, new_run_dir, open_storage, read_config, read_table,
                     run_lock, stage_of, storage_url, write_config, write_json, write_table)
from .store import (COLUMNS, GRID_COLUMNS, STAGE2_COLUMNS, Run, load_run, ranking, top_trials,
                    trial_rows, trials_frame)

__all__ = ["CONFIG", "JOURNAL", "STAGES", "SUMMARY", "RunFolderInUse", "StageLayout",
           "latest_run_dir", "new_run_dir", "open_storage", "read_config", "read_table",
           "run_lock", "stage_of", "storage_url", "write_config", "write_json", "write_table",
           "COLUMNS", "GRID_COLUMNS", "STAGE2_COLUMNS", "Run", "load_run", "ranking",
           "top_trials", "trial_rows", "trials_frame", "dominates", "pareto_front"]
