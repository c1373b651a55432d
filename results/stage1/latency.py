"""Latency on the user's device in the stage 1 dashboard (MnasNet Sec. 3: latency measured on the
target device): how the run timed (the device and the latency table it predicted with), and B0
and the finalists at the latency predicted from that table beside the latency measured end to
end at the end of the run, so the table's error on the networks that matter is in plain sight.

Compute, then draw: :func:`latency_info` reads a run folder into a :class:`LatencyInfo`;
:func:`add_timed` draws its timed networks onto the accuracy/latency figure that
:mod:`results.stage1.cost` draws, and :func:`latency_facts` words it for the page header.
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from space.latency import TABLE_ATTR, TABLE_FILE

from ..html import esc, finite, fmt_num
from ..store import Run
from .data import Finalist, LatencyInfo, TableFacts, Timed


def read_table(run: Run) -> Any:
    """The run's latency table (:class:`space.latency.LatencyTable`): its file, else the copy
    the study keeps; None where there is neither."""
    from space.latency import load_table, table_from_dict

    path = run.run_dir / TABLE_FILE
    if path.is_file():
        return load_table(path)
    stored = run.study_attrs.get(TABLE_ATTR)
    return (table_from_dict(stored, source=f"study {run.study_name!r}'s latency table")
            if stored is not None else None)


def _table_facts(table: Any, source: str) -> TableFacts:
    return TableFacts(fingerprint=table.fingerprint(), space=table.space,
                      resolution=int(table.resolution), entries=len(table.entries),
                      overhead_ms=float(table.overhead_ms), source=source)


def timed_networks(*, b0: int | None, finalists: Sequence[Finalist],
                   predicted: Mapping[int, float], search: Mapping[int, tuple[float, str]],
                   meta: Mapping[str, Any]) -> list[Timed]:
    """B0 and the finalists with their predicted and measured latency, B0 first.

    ``predicted``: each search trial's latency_ms; ``search``: each trial's (accuracy, arch),
    for a B0 that is no finalist (a run without finalists); ``meta``: best.json's meta, whose
    ``latency_ms_measured`` (B0's) and finalist rows hold the measured latencies."""
    measured = {int(r["trial"]): r.get("latency_ms_measured")
                for r in meta.get("finalists") or ()}
    if "trial" in meta:
        measured[int(meta["trial"])] = meta.get("latency_ms_measured")

    def ms(trial: int, table: Mapping[int, Any]) -> float:
        v = table.get(trial)
        return float(v) if finite(v) else math.nan

    out = [Timed(trial=f.trial, role="B0" if f.trial == b0 else "finalist",
                 accuracy=f.accuracy_mean, accuracy_std=f.accuracy_std, seeds=len(f.accuracies),
                 predicted_ms=ms(f.trial, predicted), measured_ms=ms(f.trial, measured),
                 arch=f.arch) for f in finalists]
    if b0 is not None and b0 not in [t.trial for t in out] and b0 in search:
        acc, arch = search[b0]
        out.append(Timed(trial=b0, role="B0", accuracy=acc, accuracy_std=math.nan, seeds=1,
                         predicted_ms=ms(b0, predicted), measured_ms=ms(b0, measured),
                         arch=arch))
    return sorted(out, key=lambda t: t.role != "B0")


def latency_info(run: Run, *, b0: int | None, finalists: Sequence[Finalist],
                 predicted: Mapping[int, float],
                 search: Mapping[int, tuple[float, str]]) -> LatencyInfo:
    """What the page shows about latency; see :func:`timed_networks` for the arguments."""
    meta = (run.read_json("best.json") or {}).get("meta") or {}
    table = read_table(run)
    source = TABLE_FILE if (run.run_dir / TABLE_FILE).is_file() else "the study"
    device = dict(table.device) if table is not None else dict(run.config.get("latency") or {})
    return LatencyInfo(
        device=device, table=_table_facts(table, source) if table is not None else None,
        timed=timed_networks(b0=meta.get("trial", b0), finalists=finalists,
                             predicted=predicted, search=search, meta=meta),
        measured_device=meta.get("latency_device"))


# ----------------------------------------------------------------------------- words
def fmt_ms(v: Any) -> str:
    return f"{float(v):.3g} ms" if finite(v) else "-"


def device_text(d: Mapping[str, Any]) -> str:
    """'AMD EPYC, 1 thread(s), batch 1, torch, wall clock (torch 2.13.0)'."""
    parts = [str(d.get("cpu") or d.get("device") or "CPU"),
             f"{d.get('threads', '?')} thread(s)", f"batch {d.get('batch', '?')}",
             str(d.get("runtime", "torch")), f"{d.get('clock', 'wall')} clock"]
    return ", ".join(parts) + (f" (torch {d['torch']})" if d.get("torch") else "")


def _error_text(t: Timed) -> str:
    return f"{100 * t.error:+.1f}%" if finite(t.error) else "-"


def latency_facts(info: LatencyInfo) -> list[tuple[str, str]]:
    """The header's latency lines: the device, the table, and B0's predicted against measured
    latency."""
    facts = [("latency device", device_text(info.device))]
    if info.measured_device and any(info.measured_device.get(k) != v
                                    for k, v in info.device.items()):
        facts.append(("B0 timed on", device_text(info.measured_device)))
    t = info.table
    facts.append(("latency table", "not in the run folder" if t is None else
                  f"fingerprint {t.fingerprint}: {t.entries} entries at {t.resolution} px, "
                  f"overhead {fmt_ms(t.overhead_ms)} ({t.source})"))
    b0 = next((x for x in info.timed if x.role == "B0"), None)
    if b0 is not None:
        facts.append(("B0 latency", f"trial {b0.trial}: predicted {fmt_ms(b0.predicted_ms)}, "
                      + (f"measured {fmt_ms(b0.measured_ms)} ({_error_text(b0)})"
                         if finite(b0.measured_ms) else "measured when the run ends")))
    return facts


# ----------------------------------------------------------------------------- draw
def _hover(t: Timed) -> str:
    acc = (f"acc {fmt_num(t.accuracy)} ± {fmt_num(t.accuracy_std)} over {t.seeds} seeds"
           if t.seeds > 1 else f"acc {fmt_num(t.accuracy)}")
    return (f"{'B0' if t.role == 'B0' else 'finalist'}, trial {t.trial}: {acc}<br>"
            f"predicted {fmt_ms(t.predicted_ms)} (table), measured {fmt_ms(t.measured_ms)} "
            f"end to end ({_error_text(t)})<br>{esc(t.arch)}")


# How each role is marked at its measured latency.
MARKERS = {"B0": dict(symbol="star", size=17, color="crimson"),
           "finalist": dict(symbol="diamond", size=12, color="darkorange")}


def add_timed(fig: Any, timed: Sequence[Timed]) -> None:
    """B0 and the finalists at their measured latency (filled, with their accuracy's one-std
    error bar), their predicted latency (open) and a segment between: its length is the
    table's error. Networks not timed yet are left out."""
    import plotly.graph_objects as go

    done = [t for t in timed if finite(t.measured_ms) and finite(t.predicted_ms)]
    if not done:
        return
    fig.add_trace(go.Scatter(
        x=[x for t in done for x in (t.predicted_ms, t.measured_ms, None)],
        y=[y for t in done for y in (t.accuracy, t.accuracy, None)], mode="lines",
        name="predicted → measured", line=dict(color="#444", width=1.5), hoverinfo="skip"))
    fig.add_trace(go.Scatter(
        x=[t.predicted_ms for t in done], y=[t.accuracy for t in done], mode="markers",
        name="predicted (table)", marker=dict(symbol="circle-open", size=11, color="#444",
                                              line=dict(width=2)),
        hovertext=[_hover(t) for t in done], hoverinfo="text"))
    for role, marker in MARKERS.items():
        mine = [t for t in done if t.role == role]
        if not mine:
            continue
        fig.add_trace(go.Scatter(
            x=[t.measured_ms for t in mine], y=[t.accuracy for t in mine], mode="markers",
            name=f"{role} measured" if role == "B0" else "finalists measured",
            marker=dict(**marker, line=dict(width=1, color="#333")),
            error_y=dict(type="data", visible=True, color=marker["color"], thickness=1.5,
                         width=6, array=[t.accuracy_std if finite(t.accuracy_std) else 0
                                         for t in mine]),
            hovertext=[_hover(t) for t in mine], hoverinfo="text"))
