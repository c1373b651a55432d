"""gridsearch: stage 2 of EfficientNet (Sec. 3.3), compound-scaling coefficients and the family.

Enumerate (alpha, beta, gamma) on a grid, keeping the points whose measured MACs ratio is within
a tolerance of 2^phi (or, the paper's rule, alpha * beta^2 * gamma^2 ~= 2) (:mod:`gridsearch.grid`,
measured by :mod:`gridsearch.measure`), train each compound-scaled base on stage 1's proxy task
and count it with fvcore (:mod:`gridsearch.plan` says which points, :mod:`gridsearch.search` what
one point's trial is, run by the engine :mod:`nas.engine`; :mod:`gridsearch.outputs` writes the
run folder), optionally compare the chosen point with single-dimension scaling at the same
measured MACs over seeds (:mod:`gridsearch.compare`), then emit the family B0..B7 as frozen specs
(:mod:`gridsearch.family`), and with ``--latency`` time it end to end on this machine
(:mod:`gridsearch.latency`). The ``gridsearch`` command is :mod:`gridsearch.cli`.
"""
from __future__ import annotations

from .compare import summarize, welch
from .family import (FAMILY_COLUMNS, PAPER_FAMILY, ROUNDINGS, Member, PaperRow, family_rows,
                     member_name, scale_family, write_family)
from .grid import (CONSTRAINTS, PAPER, TARGET_PRODUCT, Enumeration, Grid, Point, axis_values,
                   enumerate_grid)
from .latency import measure_family
from .measure import MacsRatio, solve_single
from .plan import KINDS, SINGLE_DIMENSION, Job, compare_jobs, plan
from .search import SELECTORS, GridSearchConfig, GridSearchResult, Stage2, run_gridsearch

__all__ = [
    "summarize", "welch",
    "FAMILY_COLUMNS", "PAPER_FAMILY", "ROUNDINGS", "Member", "PaperRow", "family_rows",
    "member_name", "scale_family", "write_family",
    "CONSTRAINTS", "PAPER", "TARGET_PRODUCT", "Enumeration", "Grid", "Point", "axis_values",
    "enumerate_grid", "measure_family", "MacsRatio", "solve_single",
    "KINDS", "SINGLE_DIMENSION", "Job", "compare_jobs", "plan",
    "SELECTORS", "GridSearchConfig", "GridSearchResult", "Stage2", "run_gridsearch",
]

