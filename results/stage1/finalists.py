"""A stage-1 run's finalists as the dashboard shows them, read from what the search wrote.

The finalists (the top distinct architectures retrained with several seeds after the search,
nas.engine.finalists) are summed up by the search itself in ``summary.json``'s ``finalists``
block: the plan (``k``, ``seeds``), one row per finalist, best mean first (``trial``,
``search_reward``, ``mean``, ``std``, ``seeds_done``), and the ``verdict`` on B0's lead; its
``best`` names B0. :func:`read_finalists` takes those as written, so no statistic of the choice
is computed twice. From the trial table it adds only the raw measurements the block does not
repeat: each seed's reward and accuracy (the dots of the finalists figure), and the source
trial's architecture and MACs.

Two things are computed here, with the one shared :func:`space.stats.mean_std`:

- each finalist's accuracy mean and std over its seeds (the error bars of the latency figure),
  unless the block's rows carry ``accuracy_mean`` / ``accuracy_std``; the search records the
  reward's statistics, not the accuracy's;
- **fallback** for a run folder whose summary.json has no finalists block (a run from before
  finalists, or a folder whose summary.json is missing) while its trial table holds finalist
  runs: mean and std of the reward from the trial table, finalists in trial order, no B0 and no
  verdict. :attr:`Finalists.source` says so, and the page labels it.

The rows are :class:`results.stage1.data.Finalist`: what the finalists figure
(:func:`fig_finalists`, here) and the latency figure (:mod:`results.stage1.latency`) both draw.
"""
from __future__ import annotations

import math
from typing import Any, Callable

from space.stats import mean_std

from ..html import esc, finite, fmt_num
from ..rundir import SUMMARY
from ..store import Run, choice_verdict
from .data import Finalist, Finalists, Stage1Info

__all__ = ["FROM_SUMMARY", "FROM_TRIALS", "Finalist", "Finalists", "fig_finalists",
           "finalists_note", "read_finalists"]


# Finalists.source: where the rows' mean and std come from.
FROM_SUMMARY = "summary.json"
FROM_TRIALS = "trial table (fallback: summary.json has no finalists block)"

NONE = Finalists(rows=[], seeds=0, b0=None, verdict=None, source="")


def _num(v: Any) -> float:
    return float(v) if finite(v) else math.nan


def _runs(df: Any) -> dict[int, Any]:
    """The trial table's COMPLETE finalist runs with a reward, per source trial, seed order."""
    if "finalist" not in df:
        return {}
    fin = df[df["finalist"].astype(bool)]
    done = fin[(fin["state"] == "COMPLETE") & fin["reward"].notna()]
    return {int(src): runs.sort_values("finalist_seed")
            for src, runs in done.groupby("finalist_of")}


def _has_finalist_runs(df: Any) -> bool:
    return "finalist" in df and bool(df["finalist"].astype(bool).any())


def read_finalists(run: Run, *, arch: Callable[[Any], str]) -> Finalists:
    """The run's finalists: summary.json's block with the trial table's per-seed values
    (``arch``: a trial row's one-line architecture), else the labelled fallback, else none."""
    df = run.trials
    summary = run.read_json(SUMMARY) or {}
    block = summary.get("finalists")
    if block is None and not _has_finalist_runs(df):
        return NONE
    search = df[~df["finalist"].astype(bool)] if "finalist" in df else df
    runs = _runs(df)
    planned = int(block["seeds"]) if block is not None else int(
        run.config.get("finalist_seeds") or 0)

    def finalist(trial: int, row: dict[str, Any] | None) -> Finalist:
        mine = runs.get(trial)
        rewards = [] if mine is None else [float(v) for v in mine["reward"]]
        accuracies = [] if mine is None else [float(v) for v in mine["accuracy"]]
        seeds = [] if mine is None else [int(i) for i in mine["finalist_seed"]]
        source = search[search["number"] == trial]
        src = source.iloc[0] if len(source) else None
        if row is not None:  # as the search wrote it
            mean, std, done = _num(row.get("mean")), _num(row.get("std")), row.get("seeds_done")
            search_reward = _num(row.get("search_reward"))
        else:  # the fallback: from the trial table
            (mean, std), done = mean_std(rewards), len(rewards)
            search_reward = _num(src["reward"]) if src is not None else math.nan
        acc_mean, acc_std = mean_std(accuracies)
        if row is not None and "accuracy_mean" in row:
            acc_mean, acc_std = _num(row.get("accuracy_mean")), _num(row.get("accuracy_std"))
        shown = src if src is not None else (mine.iloc[0] if mine is not None else None)
        return Finalist(
            trial=trial, arch=arch(shown) if shown is not None else "(architecture unknown)",
            macs=int(shown["macs"]) if shown is not None and finite(shown["macs"]) else None,
            search_reward=search_reward, seeds=seeds, rewards=rewards, mean=mean, std=std,
            complete=planned > 0 and done == planned, accuracies=accuracies,
            accuracy_mean=acc_mean, accuracy_std=acc_std)

    if block is not None:
        rows = [finalist(int(r["trial"]), r) for r in block.get("table") or ()]
        best = summary.get("best") or {}
        b0 = (int(best["trial"]) if best.get("chosen_by") == "finalists"
              and best.get("trial") is not None else None)
        return Finalists(rows=rows, seeds=planned, b0=b0, verdict=choice_verdict(block),
                         source=FROM_SUMMARY)
    rows = [finalist(trial, None) for trial in sorted(
        {int(v) for v in df[df["finalist"].astype(bool)]["finalist_of"]})]
    return Finalists(rows=rows, seeds=planned, b0=None, verdict=None, source=FROM_TRIALS)


# ----------------------------------------------------------------------------- draw
def fig_finalists(info: Stage1Info) -> Any:
    """Each finalist's reward per seed, its mean with a one-std error bar, and the search's own
    score (usually above the mean: the search kept the luckiest of many noisy numbers)."""
    import plotly.graph_objects as go

    fins = info.finalists
    labels = [f"trial {f.trial}" for f in fins]
    fig = go.Figure()
    fig.add_trace(go.Scatter(
        x=[labels[i] for i, f in enumerate(fins) for _ in f.rewards],
        y=[r for f in fins for r in f.rewards], mode="markers", name="one seed",
        marker=dict(color="#999", size=7),
        hovertext=[f"trial {f.trial} seed {s}: reward {r:.4f}" for f in fins
                   for s, r in zip(f.seeds, f.rewards)], hoverinfo="text"))
    fig.add_trace(go.Scatter(
        x=labels, y=[f.mean for f in fins], mode="markers", name="mean ± std",
        marker=dict(color="crimson", size=12, symbol="line-ew-open", line=dict(width=3)),
        error_y=dict(type="data", array=[f.std if math.isfinite(f.std) else 0 for f in fins],
                     visible=True, color="crimson", thickness=2, width=10),
        hovertext=[f"trial {f.trial}: mean {fmt_num(f.mean)} ± {fmt_num(f.std)} over "
                   f"{len(f.rewards)} seed(s)<br>{esc(f.arch)}" for f in fins],
        hoverinfo="text"))
    fig.add_trace(go.Scatter(
        x=labels, y=[f.search_reward for f in fins], mode="markers", name="search's score",
        marker=dict(symbol="diamond-open", size=11, color="#1f77b4", line=dict(width=2))))
    order = "in trial order" if info.finalists_from == FROM_TRIALS else "best mean first"
    fig.update_layout(xaxis=dict(title=f"finalist (its search trial), {order}",
                                 type="category"),
                      yaxis=dict(title="reward"), height=420, margin=dict(t=40),
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0))
    return fig


def finalists_note(info: Stage1Info) -> str:
    """What the finalists figure draws, and where its statistics come from."""
    note = (f"The top {len(info.finalists)} distinct architectures retrained with "
            f"{info.finalist_seeds} seeds each: grey, one seed; red, the mean with a one-std "
            f"error bar; blue diamond, the search's own score.")
    if info.finalists_from == FROM_TRIALS:
        return note + (" This run folder's summary.json has no finalists block (a run from "
                       "before finalists were summed up there, or its summary.json is "
                       "missing), so the mean and std are computed here from the trial table, "
                       "and no B0 or verdict is shown.")
    note += " B0 is the best mean (summary.json's finalists block)."
    if info.verdict is not None:
        note += f" {info.verdict.text[0].upper()}{info.verdict.text[1:]}."
    return note
