"""The stage 1 dashboard (EfficientNet Sec. 4, MnasNet Sec. 3): accuracy against MACs and, in a
run that predicts latency, against latency on the user's device (:mod:`results.stage1.latency`);
the objective (the target T and iso-reward curves ACC x (COST/T)^w) is drawn on the axis of the
run's metric, the Pareto front on the axis of its second objective; best reward so far against
trial number and wall time; the choices the top trials took in each stage; the best
architecture's stage table; and the finalists (the top distinct architectures retrained with
several seeds after the search): each seed's reward, the mean with a one-std error bar, and the
search's own score beside it.

Compute, then draw: :func:`stage1_info` turns a :class:`results.store.Run` into a NamedTuple of
plain lists (checked by tests without a browser); the ``fig_*`` functions only draw it. One module
per figure, each with its compute half and its draw half:

=============  ===================================================================================
data           the plain data (NamedTuples) every other module reads; types only
specs          trial rows to architectures through the run's own space (one-line ``arch_line``)
cost           accuracy against MACs / latency: points, iso-reward curves, Pareto front (figure)
latency        the device, the latency table, B0 and the finalists predicted against measured
progress       best reward so far (figure)
finalists      summary.json's finalists block read, with each seed's values (figure)
choices        the top trials' choices per stage (figure)
tables         the top trials and the stage table
info           :func:`stage1_info`: the run folder read into :class:`Stage1Info`
page           :func:`stage1_page`: header facts and sections in order
=============  ===================================================================================
"""
from __future__ import annotations

from .choices import fig_choices
from .cost import fig_latency, fig_search, iso_curve
from .data import Finalist, LatencyInfo, Stage1Info, Timed
from .finalists import fig_finalists, read_finalists
from .info import stage1_info
from .page import stage1_page
from .progress import fig_progress

__all__ = ["Finalist", "LatencyInfo", "Stage1Info", "Timed", "fig_choices", "fig_finalists",
           "fig_latency", "fig_progress", "fig_search", "iso_curve", "read_finalists",
           "stage1_info", "stage1_page"]
