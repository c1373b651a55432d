"""The stage 1 dashboard's old address: the page is now the package :mod:`results.stage1`, one
module per figure. Its public names stay importable from here.
"""
from __future__ import annotations

from .stage1 import (Finalist, LatencyInfo, Stage1Info, Timed, fig_choices, fig_finalists,
                     fig_latency, fig_progress, fig_search, iso_curve, read_finalists,
                     stage1_info, stage1_page)

__all__ = ["Finalist", "LatencyInfo", "Stage1Info", "Timed", "fig_choices", "fig_finalists",
           "fig_latency", "fig_progress", "fig_search", "iso_curve", "read_finalists",
           "stage1_info", "stage1_page"]
