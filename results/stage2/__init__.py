"""The stage 2 dashboard (EfficientNet Sec. 3.3, Eq. 3): the (alpha, beta, gamma) grid coloured by
accuracy with the constraint surface alpha * beta^2 * gamma^2 = 2; the family's measured MACs
ratio against 2^phi, with each member's deviation written out (the paper's ceil rounding makes
B1 2.55x B0); compound against single-dimension scaling at the same measured MACs, mean +- std
over seeds with the verdict of ``compare_single.json``; the finalists (the top grid points
retrained over seeds: mean +- std beside the grid's single training); the family's latency on
the machine that timed it, against its MACs (``gridsearch --latency``: family.csv's
``latency_ms`` and ``latency_iqr_ms``, and the device from coefficients.json); the scaled family
beside the paper's B0..B7.

Compute, then draw: :func:`stage2_info` turns a :class:`results.store.Run` (and the
``coefficients.json`` / ``family.csv`` the grid search wrote) into NamedTuples of plain lists;
the ``fig_*`` functions only draw them. Files a running search has not written yet become notes.
One module per figure, each with its compute half and its draw half:

=============  ===================================================================================
data           the plain data (NamedTuples) every other module reads; types only
grid           the grid points and the constraint surface (figure)
ratio          the family's measured MACs ratio against 2^phi (figure)
compare        compound against single-dimension scaling (figure)
finalists      coefficients.json's finalists (figure)
latency        the family's latency against its MACs (figure)
family         the family table beside the paper's B0..B7
info           :func:`stage2_info`: the run folder read into :class:`Stage2Info`
page           :func:`stage2_page`: header facts and sections in order
=============  ===================================================================================
"""
from __future__ import annotations

from .compare import fig_compare
from .data import TARGET_PRODUCT, Stage2Info
from .family import family_columns, family_html
from .finalists import fig_finalists
from .grid import constraint_surface, fig_grid
from .info import stage2_info
from .latency import device_text, fig_latency, latency_note
from .page import stage2_page
from .ratio import fig_ratio, ratio_note

__all__ = ["TARGET_PRODUCT", "Stage2Info", "constraint_surface", "device_text", "family_columns",
           "family_html", "fig_compare", "fig_finalists", "fig_grid", "fig_latency", "fig_ratio",
           "latency_note", "ratio_note", "stage2_info", "stage2_page"]
