"""gridsearch: stage 2 of EfficientNet (Sec. 3.3), compound-scaling coefficients and the family.

Enumerate (alpha, beta, gamma) on a grid under alpha * beta^2 * gamma^2 ~= 2
(:mod:`gridsearch.grid`), train each compound-scaled base on stage 1's proxy task and count it
with fvcore (:mod:`gridsearch.search`), then emit the family B0..B7 as frozen specs
(:mod:`gridsearch.family`). The ``gridsearch`` command is :mod:`gridsearch.cli`.
"""
from __future__ import annotations

from .family import (FAMILY_COLUMNS, PAPER_FAMILY, Member, PaperRow, family_rows, member_name,
                     scale_family, write_family)
from .grid import PAPER, TARGET_PRODUCT, Enumeration, Grid, Point, axis_values, enumerate_grid
from .search import (GRID_COLUMNS, KINDS, SELECTORS, SINGLE_DIMENSION, GridSearchConfig,
                     GridSearchResult, Job, plan, run_gridsearch)

__all__ = [
    "FAMILY_COLUMNS", "PAPER_FAMILY", "Member", "PaperRow", "family_rows", "member_name",
    "scale_family", "write_family",
    "PAPER", "TARGET_PRODUCT", "Enumeration", "Grid", "Point", "axis_values", "enumerate_grid",
    "GRID_COLUMNS", "KINDS", "SELECTORS", "SINGLE_DIMENSION", "GridSearchConfig",
    "GridSearchResult", "Job", "plan", "run_gridsearch",
]

