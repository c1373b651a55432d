"""A latency search's set-up (stage 1, ``--target-latency-ms``): the table it predicts with,
checked before anything is written (:func:`prepare_latency`) and kept in the study so every
driver and resume predicts with the one it started with (:func:`study_table`); B0 and the
finalists timed end to end at the end (:func:`measure_latency`), and summary.json's latency
block (:func:`latency_summary`). The timing itself is :mod:`nas.latency`.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from nas.latency_settings import LatencySettings
from space.deploy import deployment_spec
from space.latency import (TABLE_ATTR, TABLE_FILE, LatencyTable, predict_ms, random_params,
                           table_from_dict)
from space.search_space import SearchSpace, load_space

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

    from .config import SearchConfig

# stage 1 logs under its front door's name, as a run has always printed it
log = logging.getLogger("nas.search")

__all__ = ["LATENCY_FILE", "LATENCY_ATTR", "MEASURE_TIMING", "prepare_latency", "study_table",
           "measure_latency", "latency_summary"]

# The table a latency search predicted with, in the run folder and in the study: every driver
# of a study, and every resume, predicts with the one table the study started with.
LATENCY_FILE, LATENCY_ATTR = TABLE_FILE, TABLE_ATTR

# How B0 and the finalists are timed at the end of a latency search: a few round-robin rounds,
# each network keeping its smallest median (nas.latency.bench_specs), as the table was timed.
MEASURE_TIMING = {"warmup": 3, "repeats": 10, "rounds": 3}


def latency_summary(table: LatencyTable, provenance: Mapping[str, Any],
                    config: SearchConfig) -> dict[str, Any]:
    """summary.json's latency block: the device, the table predicted with, and B0's
    predicted against measured latency."""
    predicted, measured = provenance.get("latency_ms"), provenance.get("latency_ms_measured")
    return {
        "target_ms": config.target_latency_ms,
        "device": provenance.get("latency_device") or config.latency.device(),
        "table": {"space": table.space, "resolution": table.resolution,
                  "device": dict(table.device), "entries": len(table.entries),
                  "overhead_ms": table.overhead_ms, "fingerprint": table.fingerprint(),
                  "file": LATENCY_FILE},
        "best": {"predicted_ms": predicted, "measured_ms": measured,
                 "error": (measured / predicted - 1) if predicted and measured else None},
    }


def prepare_latency(config: SearchConfig, space: SearchSpace | None = None
                    ) -> tuple[SearchConfig, LatencyTable | None]:
    """A fresh latency search's table and its settings, checked before anything is written.

    The table is ``--latency-table`` (which must be for this space, resolution and device),
    else the cached table for this device, built when missing (:func:`nas.latency.table_for`).
    With a table file and no ``--latency-*`` flags, the settings are the table's own. A member
    of the space is predicted once, so a table that does not cover the deployment fails here,
    not at the first trial."""
    if not config.uses_latency:
        return config, None
    from dataclasses import replace

    from nas.latency import table_for
    from space.latency import load_table

    space = space or load_space(config.space)
    settings = config.latency
    if settings is None:
        given = config.latency_table
        settings = (LatencySettings.of_device(load_table(given).device)
                    if given is not None and Path(given).is_file() else LatencySettings())
        config = replace(config, latency=settings)
    table = table_for(space, resolution=config.deploy.resolution, threads=settings.threads,
                      batch=settings.batch, runtime=settings.runtime, clock=settings.clock,
                      path=config.latency_table)
    probe = deployment_spec(space, random_params(space, seed=0), config.deploy, "probe")
    predict_ms(table, probe)  # a MissingEntryError names the entry the table lacks
    return config, table


def study_table(study: optuna.Study, given: LatencyTable | None, config: SearchConfig,
                space: SearchSpace) -> LatencyTable:
    """The table this study predicts with: the one it started with (kept in the study, so a
    resumed run and every ``--join``-ed driver predict exactly as the first did), else
    ``given`` (or :func:`prepare_latency`'s), which the study then keeps."""
    stored = study.user_attrs.get(LATENCY_ATTR)
    if stored is None:
        table = given if given is not None else prepare_latency(config, space)[1]
        study.set_user_attr(LATENCY_ATTR, table.to_dict())
        return table
    table = table_from_dict(stored, source=f"study {study.study_name!r}'s latency table")
    if given is not None and given.fingerprint() != table.fingerprint():
        log.warning("the study predicts with the latency table it started with (%s), not "
                    "the one given now: one study, one table", table.fingerprint())
    return table


def measure_latency(space: SearchSpace, config: SearchConfig,
                    by_number: Mapping[int, FrozenTrial], numbers: list[int]
                    ) -> dict[int, float]:
    """End-to-end latency (ms) on this device of the trials ``numbers`` (B0, then the
    finalists), timed round-robin (nas.latency.bench_specs) with the search's latency
    settings."""
    from nas.latency import bench_specs

    numbers = list(dict.fromkeys(numbers))
    specs = [deployment_spec(space, by_number[n].params, config.deploy,
                             f"trial-{n}") for n in numbers]
    s = config.latency
    log.info("timing B0 and %d finalist(s) end to end on this device (%d thread(s), "
             "batch %d, %s)", len(numbers) - 1, s.threads, s.batch, s.runtime)
    ms = bench_specs(specs, threads=s.threads, batch=s.batch, runtime=s.runtime,
                     clock=s.clock, **MEASURE_TIMING)
    return dict(zip(numbers, ms))
