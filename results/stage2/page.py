"""The stage 2 page: the header's facts and the sections in order, each figure drawn by its module
from :func:`results.stage2.info.stage2_info`'s data; files a running search has not written yet
become notes.
"""
from __future__ import annotations

from ..html import Page, Section, fmt_macs, fmt_num, fmt_params
from ..store import Run
from .compare import compare_note, fig_compare
from .family import family_html, family_note
from .finalists import fig_finalists
from .grid import fig_grid
from .info import stage2_info
from .latency import fig_latency, latency_note
from .ratio import fig_ratio, ratio_note


def stage2_page(run: Run) -> Page:
    info = stage2_info(run)
    coef = info.coefficients or {}
    facts: list[tuple[str, str]] = []
    if info.selected:
        a, b, c = info.selected
        facts.append(("selected", f"alpha {a:g}, beta {b:g}, gamma {c:g} (alpha*beta^2*gamma^2 = "
                                  f"{fmt_num(coef.get('product'), '.3f')}, by "
                                  f"{coef.get('selected_by', '?')})"))
    if info.verdict is not None:
        facts.append(("choice", info.verdict.text))
    base = coef.get("base") or {}
    if base:
        facts.append(("base", f"{base.get('name', '?')}: {fmt_macs(base.get('macs'))} MACs, "
                              f"{fmt_params(base.get('params'))} params at "
                              f"{base.get('resolution', '?')} px"))
    grid = coef.get("grid") or {}
    if grid:
        facts.append(("grid", f"{grid.get('points_kept', '?')} of {grid.get('points_total', '?')} "
                              f"points within tolerance {coef.get('tolerance', '?')}, step "
                              f"{grid.get('step', '?')}"))
    missing = "not written yet (the grid search is still running, or stopped early)"
    sections = [
        Section("Grid points in (alpha, beta, gamma)", [("fig-grid", fig_grid(info))],
                note=f"{len(info.grid.number)} complete grid points coloured by accuracy"
                     f"{f', {info.pending} not complete' if info.pending else ''}; the surface is "
                     f"alpha*beta^2*gamma^2 = {info.target_product:g} (EfficientNet Eq. 3)."),
        Section("Measured MACs ratio against 2^phi",
                [("fig-ratio", fig_ratio(info))] if info.ratio else [],
                note=ratio_note(info.ratio) if info.ratio else f"family.csv {missing}."),
        Section("Finalists: the top points retrained over seeds",
                [("fig-finalists", fig_finalists(info))] if info.finalists else [],
                note=(f"Mean +- std over {info.finalists.seeds} seed(s) per finalist, beside the "
                      f"grid's single training (x); the chosen point has the best mean."
                      + (f" {info.verdict.text[0].upper()}{info.verdict.text[1:]}."
                         if info.verdict is not None else "")
                      if info.finalists else "No finalists (gridsearch --finalists 0, or the "
                      "grid has not finished).")),
        Section("Compound against single-dimension scaling",
                [("fig-compare", fig_compare(info))] if info.compare else [],
                note=compare_note(info.compare) if info.compare else
                "Not run: pass --compare-single to gridsearch to scale depth, width and "
                "resolution alone as well, at the chosen point's measured MACs."),
        Section("Latency of the family against its MACs",
                [("fig-latency", fig_latency(info))] if info.latency else [],
                note=latency_note(info.latency) if info.latency else
                "Not measured: pass --latency to gridsearch (or to its --resume) to time every "
                "member end to end on this machine."),
        Section("The scaled family beside the paper's B0..B7",
                html=family_html(info.family) if info.family else "",
                note=family_note(info.family, missing)),
    ]
    return Page(title=f"Stage 2 compound scaling: {run.run_dir.name}",
                facts=facts, sections=sections)
