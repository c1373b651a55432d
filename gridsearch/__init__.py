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

from space.lazy import exports, lazy_exports

# name -> the module that defines it, imported on first use (so --help needs no torch)
__getattr__, __dir__, __all__ = lazy_exports(__name__, globals(), {
    **exports("compare", ("summarize", "welch")),
    **exports("family", ("FAMILY_COLUMNS", "PAPER_FAMILY", "ROUNDINGS", "Member", "PaperRow",
                         "family_rows", "member_name", "scale_family", "write_family")),
    **exports("grid", ("CONSTRAINTS", "PAPER", "TARGET_PRODUCT", "Enumeration", "Grid", "Point",
                       "axis_values", "enumerate_grid")),
    **exports("latency", ("measure_family",)),
    **exports("measure", ("MacsRatio", "solve_single")),
    **exports("plan", ("KINDS", "SINGLE_DIMENSION", "Job", "compare_jobs", "plan")),
    **exports("config", ("SELECTORS", "GridSearchConfig")),
    **exports("search", ("GridSearchResult", "Stage2", "run_gridsearch")),
})
