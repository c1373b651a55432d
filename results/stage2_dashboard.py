"""The stage 2 dashboard's old address: the page is now the package :mod:`results.stage2`, one
module per figure. Its public names stay importable from here.
"""
from __future__ import annotations

from .stage2 import (TARGET_PRODUCT, Stage2Info, constraint_surface, device_text, family_columns,
                     family_html, fig_compare, fig_finalists, fig_grid, fig_latency, fig_ratio,
                     latency_note, ratio_note, stage2_info, stage2_page)

__all__ = ["TARGET_PRODUCT", "Stage2Info", "constraint_surface", "device_text", "family_columns",
           "family_html", "fig_compare", "fig_finalists", "fig_grid", "fig_latency", "fig_ratio",
           "latency_note", "ratio_note", "stage2_info", "stage2_page"]
