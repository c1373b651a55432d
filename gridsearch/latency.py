"""The family's end-to-end latency on this machine (``gridsearch --latency``, issue 14).

The paper reports the family's FLOPS (Table 2) and, for the scaled-down members, their latency
on one CPU (Sec. 5.2: B1 5.7x faster than ResNet-152 on a Pixel 1 CPU, one thread). MACs are a
proxy; this module measures the real thing: each member of the emitted family, built with
random weights, runs whole forward passes at its own resolution, timed by
:func:`nas.latency.bench_spec` as :class:`nas.latency.LatencySettings` says (intra-op threads,
batch, runtime, clock): :data:`WARMUP` untimed passes, then ``repeats`` timed ones, of which the
median is the member's latency and the interquartile range its spread. It is timed on the CPU of
the process that runs ``gridsearch`` (with ``--backend ray``, the driver's machine), whatever
device the points trained on.

Each member's ``meta["latency"]`` holds its timing and the device it was measured on
(:meth:`LatencySettings.device`: CPU model, torch version, threads, batch, runtime, clock);
:func:`latency_summary` is what ``coefficients.json`` records of the whole measurement.
"""
from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any, Sequence

from nas.latency import LatencySettings, bench_spec

# the timing's defaults live in the light .config (--help states them)
from .config import DEFAULT_REPEATS, WARMUP
from .family import Member

log = logging.getLogger(__name__)

__all__ = ["WARMUP", "DEFAULT_REPEATS", "measure_family", "latency_summary"]



def measure_family(members: Sequence[Member], settings: LatencySettings, *,
                   repeats: int = DEFAULT_REPEATS, warmup: int = WARMUP
                   ) -> tuple[tuple[Member, ...], dict[str, Any]]:
    """Time every member end to end; the members with ``meta["latency"]`` set, and the
    summary for ``coefficients.json``."""
    device = settings.device()  # onnxruntime without the extra: one line saying how to install
    passes = sum(m.macs for m in members) * (warmup + repeats) / 1e9
    log.info("latency: timing %d family member(s) on %s, %d thread(s), batch %d, %s, %s clock: "
             "%d warm-up + %d timed pass(es) each, %.0f GMACs of forward passes in all",
             len(members), device["cpu"], settings.threads, settings.batch, settings.runtime,
             settings.clock, warmup, repeats, passes * settings.batch)
    t0 = time.perf_counter()
    timed = []
    for m in members:
        timing = bench_spec(m.spec, threads=settings.threads, batch=settings.batch,
                            runtime=settings.runtime, warmup=warmup, repeats=repeats,
                            clock=settings.clock)
        record = {**timing.to_dict(), "warmup": warmup, "resolution": m.spec.resolution,
                  "statistic": "median", "spread": "iqr", "device": device}
        log.info("latency: b%d %s at %d px: %.2f ms median, IQR %.2f ms over %d pass(es)",
                 m.phi, m.spec.name, m.spec.resolution, timing.median_ms, timing.iqr_ms,
                 repeats)
        timed.append(replace(m, spec=m.spec.replace(meta={**m.spec.meta, "latency": record})))
    seconds = time.perf_counter() - t0
    log.info("latency: %d member(s) timed in %.1f s", len(members), seconds)
    return tuple(timed), latency_summary(settings, device=device, repeats=repeats,
                                         warmup=warmup, seconds=seconds)


def latency_summary(settings: LatencySettings, *, device: dict[str, Any], repeats: int,
                    warmup: int, seconds: float) -> dict[str, Any]:
    """``coefficients.json``'s ``latency``: the setting, where it was measured and how."""
    return {"settings": settings.to_dict(), "device": device, "warmup": warmup,
            "repeats": repeats, "statistic": "median", "spread": "iqr",
            "seconds": round(seconds, 2)}
