"""The family's latency on the machine that timed it, against its MACs (``gridsearch --latency``:
family.csv's ``latency_ms`` and ``latency_iqr_ms``, and the device from coefficients.json).
"""
from __future__ import annotations

import math
from typing import Any

from ..html import finite, fmt_macs, fmt_num, log_ticks
from .data import FamilyLatency, Stage2Info


def device_text(latency: dict[str, Any] | None) -> str:
    """'AMD EPYC, 1 thread(s), batch 1, torch 2.5.1, wall clock; median of 5 passes after 1
    warm-up' from coefficients.json's ``latency``; '' without it."""
    d = (latency or {}).get("device") or {}
    if not d:
        return ""
    runtime = d.get("runtime", "?")
    version = d.get("onnxruntime") if runtime == "onnxruntime" else d.get("torch")
    how = (f"; median of {latency['repeats']} pass(es) after {latency.get('warmup', '?')} "
           f"warm-up" if "repeats" in latency else "")
    return (f"{d.get('cpu', '?')}, {d.get('threads', '?')} thread(s), batch "
            f"{d.get('batch', '?')}, {runtime} {version or ''}".rstrip()
            + f", {d.get('clock', 'wall')} clock{how}")


def family_latency(family: Any, coef: dict[str, Any] | None) -> FamilyLatency | None:
    if family is None or "latency_ms" not in family:
        return None
    timed = family[family["latency_ms"].map(finite)].sort_values("phi")
    if not len(timed):
        return None
    iqr = timed["latency_iqr_ms"] if "latency_iqr_ms" in timed else [math.nan] * len(timed)
    return FamilyLatency(phi=[int(p) for p in timed["phi"]],
                         name=[str(n) for n in timed["name"]],
                         macs=[float(m) for m in timed["macs"]],
                         median_ms=[float(x) for x in timed["latency_ms"]],
                         iqr_ms=[float(x) if finite(x) else math.nan for x in iqr],
                         device=device_text((coef or {}).get("latency")))


# ----------------------------------------------------------------------------- draw
def fig_latency(info: Stage2Info) -> Any:
    import plotly.graph_objects as go

    lat = info.latency
    hover = [f"{n}<br>{fmt_macs(m)} MACs<br>{ms:.2f} ms median, IQR {fmt_num(q, '.2f')} ms"
             for n, m, ms, q in zip(lat.name, lat.macs, lat.median_ms, lat.iqr_ms)]
    fig = go.Figure(go.Scatter(x=lat.macs, y=lat.median_ms, mode="lines+markers+text",
                               name="median latency", text=[f"B{p}" for p in lat.phi],
                               textposition="top left", marker=dict(size=9),
                               hovertext=hover, hoverinfo="text"))
    fig.update_layout(xaxis=dict(**log_ticks(lat.macs, pad=1.3), title="MACs"),
                      yaxis=dict(type="log", title="latency (ms)"), height=420,
                      margin=dict(t=20))
    return fig


def latency_note(lat: FamilyLatency) -> str:
    """Where it was timed, and the largest member's cost per MAC against the smallest's."""
    where = f"Timed on {lat.device}. " if lat.device else ""
    ms_per_gmac = [ms / (m / 1e9) for ms, m in zip(lat.median_ms, lat.macs) if m > 0]
    trend = ""
    if len(ms_per_gmac) > 1:
        trend = (f" From B{lat.phi[0]} to B{lat.phi[-1]}: {ms_per_gmac[0]:.1f} to "
                 f"{ms_per_gmac[-1]:.1f} ms per GMAC.")
    return (f"{where}Median end-to-end latency of one forward pass at each member's own "
            f"resolution (family.csv's latency_ms; the IQR in the table).{trend}")
