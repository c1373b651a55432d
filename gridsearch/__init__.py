"""gridsearch: stage 2 of EfficientNet (Sec. 3.3), compound-scaling coefficients and the family.

Enumerate (alpha, beta, gamma) on a grid under alpha * beta^2 * gamma^2 ~= 2
(:mod:`gridsearch.grid`), train each compound-scaled base on stage 1's proxy task and count it
with fvcore (:mod:`gridsearch.plan` says which points, :mod:`gridsearch.search` what one
point's trial is, run by the engine :mod:`nas.engine`; :mod:`gridsearch.outputs` writes the
run folder), then emit the family B0..B7 as frozen specs
(:mod:`gridsearch.family`). The ``gridsearch`` command is :mod:`gridsearch.cli`.
"""
from __future__ import annotations

from .family import (FAMILY_COLUMNS, PAPER_FAMILY, Member, PaperRow, family_rows, member_name,
                     scale_family, write_family)
from .grid import PAPER, TARGET_PRODUCT, Enumeration, Grid, Point, axis_values, enumerate_grid
from .plan import KINDS, SINGLE_DIMENSION, Job, plan
from .search import SELECTORS, GridSearchConfig, GridSearchResult, Stage2, run_gridsearch

__all__ = [
    "FAMILY_COLUMNS", "PAPER_FAMILY", "Member", "PaperRow", "family_rows", "member_name",
    "scale_family", "write_family",
    "PAPER", "TARGET_PRODUCT", "Enumeration", "Grid", "Point", "axis_values", "enumerate_grid",
    "KINDS", "SINGLE_DIMENSION", "Job", "plan",
    "SELECTORS", "GridSearchConfig", "GridSearchResult", "Stage2", "run_gridsearch",
]

