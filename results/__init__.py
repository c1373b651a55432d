"""results: the result store (one trial table for every run), Pareto front and dashboards."""
from __future__ import annotations

from .store import COLUMNS, trial_rows, trials_frame, write_json, write_table

__all__ = ["COLUMNS", "trial_rows", "trials_frame", "write_json", "write_table"]
