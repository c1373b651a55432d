"""The stage 1 page: the header's facts and the sections in order, each figure drawn by its module
from :func:`results.stage1.info.stage1_info`'s data.
"""
from __future__ import annotations

from typing import Any

from ..html import Page, Section, finite, fmt_macs, fmt_num, fmt_params
from ..store import Run
from .choices import fig_choices
from .cost import METRIC_WORDS, cost_section
from .data import Stage1Info
from .finalists import fig_finalists, finalists_note
from .info import stage1_info
from .latency import fmt_ms, latency_facts
from .progress import fig_progress
from .tables import stage_table_html, top_html


def _objective_facts(info: Stage1Info, cfg: dict[str, Any]) -> list[tuple[str, str]]:
    cost = METRIC_WORDS[info.metric]
    target = (fmt_macs(info.target) + " MACs" if info.metric == "macs"
              else f"{fmt_ms(info.target)} on this device")
    facts = [("target T", target),
             ("objective", f"ACC x ({cost}/T)^w, w = {info.a:g} if {cost} <= T else {info.b:g}"
                           + (f"; x {cost}/({info.floor:g}T) below {info.floor:g}T"
                              if info.floor else ""))]
    if cfg.get("objectives"):
        facts.append(("objectives", ", ".join(cfg["objectives"]) + " (the Pareto front)"))
    return facts


def stage1_page(run: Run) -> Page:
    info = stage1_info(run)
    cfg = run.config
    best = info.top[0] if info.top else None
    facts = [*_objective_facts(info, cfg),
             ("space", str(cfg.get("space", "?"))), ("sampler", str(cfg.get("sampler", "?"))),
             ("dataset", str(cfg.get("proxy", {}).get("dataset", "?")))]
    if info.latency is not None:
        facts += latency_facts(info.latency)
    chosen = next((f for f in info.finalists if f.trial == info.b0), None)
    if chosen is not None:
        facts.append(("B0", f"finalist trial {chosen.trial}: mean reward {fmt_num(chosen.mean)}"
                            f" ± {fmt_num(chosen.std)} over {len(chosen.rewards)} seeds "
                            f"(search's score {fmt_num(chosen.search_reward)})"))
    if info.verdict is not None:
        facts.append(("choice", info.verdict.text))
    if best is not None:
        ms = (f", {fmt_ms(best['latency_ms'])} predicted" if finite(best["latency_ms"])
              else "")
        facts.append(("best", f"trial {best['number']}: reward {fmt_num(best['reward'])}, "
                              f"acc {fmt_num(best['accuracy'])}, {fmt_macs(best['macs'])} MACs"
                              f"{ms}, {fmt_params(best['params'])} params"))
    axes = ["macs", "latency"] if info.latency is not None else ["macs"]
    axes.sort(key=lambda m: m != info.metric)  # the objective's figure first
    sections = [
        *(cost_section(info, m) for m in axes),
        Section("Best reward so far", [("fig-progress", fig_progress(info))]),
        *([Section("Finalists", [("fig-finalists", fig_finalists(info))],
                   note=finalists_note(info))] if info.finalists else []),
        Section(f"Choices of the top {len(info.top)} trials, per stage",
                [("fig-choices", fig_choices(info))],
                note="How many of the top trials (by reward) took each choice in each stage."),
        Section("Top trials", html=top_html(info)),
        Section(f"B0: finalist trial {chosen.trial}" if chosen is not None else
                f"Best architecture (trial {best['number']})" if best else "Best architecture",
                html=stage_table_html(info.best_stages, table_id="best-stages"),
                note=chosen.arch if chosen is not None else best["arch"] if best else ""),
    ]
    return Page(title=f"Stage 1 search: {run.run_dir.name}", facts=facts, sections=sections)
