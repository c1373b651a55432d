"""results: the result store (one trial table for every run), Pareto front and dashboards.

``import results`` needs neither plotly nor optuna: the dashboards are imported from
:mod:`results.dashboard` where used.
"""
from __future__ import annotations

from .pareto import dominates, pareto_front
from .store import (COLUMNS, STAGE2_COLUMNS, STAGES, Run, load_run, ranking, top_trials,
                    trial_rows, trials_frame, write_json, write_table)

__all__ = ["COLUMNS", "STAGE2_COLUMNS", "STAGES", "Run", "load_run", "ranking", "top_trials",
           "trial_rows", "trials_frame", "write_json", "write_table", "dominates", "pareto_front"]
