"""Timing on this machine: latency tables for a space and end-to-end benchmarks of one spec.

The pure parts (which entries a space has, the prediction from a table) are in
:mod:`space.latency`; this module runs things. Every timing is a warm-up followed by the median
of repeats, each repeat one forward pass under ``torch.inference_mode`` (or one ONNX Runtime
``run``), timed with ``time.perf_counter``. Runtimes are looked up in :data:`RUNTIMES`;
ONNX Runtime needs the optional extra ``efficientnas[onnx]``.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import nn

# how latency is measured (settings, runtimes, clocks, statistics) lives in the light
# nas.latency_settings (configs and --help read it without torch); re-exported here
from nas.latency_settings import (CLOCKS, RUNTIMES, STATISTICS, LatencySettings,  # noqa: F401
                                  Runner, check_clock, cpu_model, device_info)
from space.builder import BLOCKS, build, conv_bn
from space.latency import LatencyKey, LatencyTable, space_keys
from space.registry import Registry
from space.spec import ArchSpec

log = logging.getLogger(__name__)

__all__ = ["CLOCKS", "RUNTIMES", "STATISTICS", "LatencySettings", "Timing", "check_clock",
           "cpu_model", "device_info", "entry_module", "time_runner", "build_table",
           "bench_spec", "bench_specs", "default_cache_path", "make_table", "table_for"]


def default_cache_path(space: str, device: Mapping[str, Any], resolution: int) -> Path:
    """Where a table for this space, device and resolution is cached between searches."""
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    digest = hashlib.sha256(json.dumps(dict(device), sort_keys=True).encode()).hexdigest()[:12]
    return root / "efficientnas" / "latency" / f"{space}-r{resolution}-{digest}.json"


@dataclass(frozen=True)
class Timing:
    """Latencies (ms) of repeated single forward passes after a warm-up."""

    samples_ms: tuple[float, ...]
    batch: int

    @property
    def median_ms(self) -> float:
        return statistics.median(self.samples_ms)

    @property
    def iqr_ms(self) -> float:
        if len(self.samples_ms) < 2:
            return 0.0
        q = statistics.quantiles(self.samples_ms, n=4, method="inclusive")
        return q[2] - q[0]

    @property
    def throughput(self) -> float:
        """Images per second at the median latency."""
        return self.batch / (self.median_ms / 1e3)

    def to_dict(self) -> dict[str, Any]:
        return {"median_ms": self.median_ms, "iqr_ms": self.iqr_ms,
                "throughput_per_s": self.throughput, "repeats": len(self.samples_ms),
                "batch": self.batch}


def time_runner(run: Runner, *, warmup: int, repeats: int, batch: int = 1,
                clock: str = "wall") -> Timing:
    if repeats < 1 or warmup < 0:
        raise ValueError(f"`repeats >= 1` and `warmup >= 0` must hold, got repeats={repeats}, "
                         f"warmup={warmup}")
    now = CLOCKS.get(clock)
    for _ in range(warmup):
        run()
    samples = []
    for _ in range(repeats):
        t0 = now()
        run()
        samples.append((now() - t0) * 1e3)
    return Timing(tuple(samples), batch)


class _Threads:
    """Set torch's intra-op threads for a block of code and put them back after."""

    def __init__(self, threads: int) -> None:
        if threads < 1:
            raise ValueError(f"`threads >= 1` must hold, got threads={threads}")
        self.threads = threads

    def __enter__(self) -> None:
        self.before = torch.get_num_threads()
        torch.set_num_threads(self.threads)

    def __exit__(self, *exc: Any) -> None:
        torch.set_num_threads(self.before)


# ----------------------------------------------------------------------------- entries
class _Head(nn.Module):
    def __init__(self, key: LatencyKey) -> None:
        super().__init__()
        args = key.block_args()
        self.conv = (conv_bn(key.in_channels, key.out_channels, 1, 1, args)
                     if key.out_channels else nn.Identity())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(key.out_channels or key.in_channels, key.extra)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.conv(x)), 1))


def _stem(key: LatencyKey) -> nn.Module:
    layers = list(conv_bn(key.in_channels, key.out_channels, key.kernel, key.stride,
                          key.block_args()))
    if key.extra:
        layers.append(nn.MaxPool2d(3, 2, 1))
    return nn.Sequential(*layers)


ENTRY_MODULES: Registry[Callable[[LatencyKey], nn.Module]] = Registry("latency entry kind")
ENTRY_MODULES.add("stem", _stem)
ENTRY_MODULES.add("block", lambda key: BLOCKS.get(key.block)(key.block_args()))
ENTRY_MODULES.add("head", _Head)


def entry_module(key: LatencyKey) -> nn.Module:
    """The module one table entry times, exactly as the builder makes it, in eval mode."""
    return ENTRY_MODULES.get(key.kind)(key).eval()


def build_table(space, *, resolution: int, threads: int, batch: int = 1,
                runtime: str = "torch", warmup: int = 3, repeats: int = 10, rounds: int = 1,
                statistic: str = "median", clock: str = "wall",
                keys: Sequence[LatencyKey] | None = None,
                progress: Callable[[int, int], None] | None = None) -> LatencyTable:
    """Time every entry of ``space`` (or just ``keys``) on this machine.

    Each entry's value is the median (``statistic``, see :data:`STATISTICS`) of ``repeats``
    runs after ``warmup``; with ``rounds > 1``
    the whole table is timed that many times, one pass after another, and the smallest of an
    entry's medians is kept: on a machine shared with other work, a burst of load then spoils
    one pass of an entry, not the entry.
    """
    if rounds < 1:
        raise ValueError(f"`rounds >= 1` must hold, got rounds={rounds}")
    device = device_info(threads=threads, batch=batch, runtime=runtime, clock=clock)
    make = RUNTIMES.get(runtime)
    reduce = STATISTICS.get(statistic)
    keys = list(space_keys(space, resolution) if keys is None else keys)
    entries: dict[str, float] = {}
    t0 = time.perf_counter()
    done, total = 0, rounds * len(keys)
    with _Threads(threads):
        for _ in range(rounds):
            for key in keys:
                x = torch.randn(batch, key.in_channels, key.size, key.size)
                run = make(entry_module(key), x, threads)
                ms = reduce(time_runner(run, warmup=warmup, repeats=repeats,
                                        clock=clock).samples_ms)
                entries[str(key)] = min(ms, entries.get(str(key), ms))
                done += 1
                if progress is not None:
                    progress(done, total)
    meta = {"warmup": warmup, "repeats": repeats, "rounds": rounds, "statistic": statistic,
            "seconds": round(time.perf_counter() - t0, 1),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    return LatencyTable(space=space.name, resolution=resolution, device=device,
                        entries=entries, meta=meta)


def make_table(space, *, resolution: int, threads: int, batch: int = 1, runtime: str = "torch",
               repeats: int = 10, warmup: int = 3, rounds: int = 2, calibrate: int = 10,
               seed: int = 0, statistic: str = "median", clock: str = "wall",
               progress: Callable[[int, int], None] | None = None) -> LatencyTable:
    """A space's table as ``nas latency-table`` makes it: every entry timed
    (:func:`build_table`), then the per-network overhead fitted on ``calibrate`` seeded random
    members timed end to end (:func:`space.latency.fit_overhead`; 0: no overhead)."""
    import dataclasses

    from space.latency import fit_overhead, predict_ms, random_params

    table = build_table(space, resolution=resolution, threads=threads, batch=batch,
                        runtime=runtime, warmup=warmup, repeats=repeats, rounds=rounds,
                        statistic=statistic, clock=clock, progress=progress)
    specs = [space.to_spec(random_params(space, seed=seed + i), name=f"calibration-{i}")
             for i in range(calibrate)]
    sums = [predict_ms(table, spec, overhead=False) for spec in specs]
    measured = bench_specs(specs, resolution=resolution, threads=threads, batch=batch,
                           runtime=runtime, warmup=warmup, repeats=repeats, rounds=rounds,
                           statistic=statistic, clock=clock)
    overhead = fit_overhead(sums, measured) if calibrate else 0.0
    meta = dict(table.meta, calibration={"members": calibrate, "seed": seed,
                                         "sum_ms": sums, "measured_ms": measured})
    return dataclasses.replace(table, overhead_ms=overhead, meta=meta)


def bench_specs(specs: Sequence[ArchSpec], *, resolution: int | None = None, threads: int,
                batch: int = 1, runtime: str = "torch", warmup: int = 3, repeats: int = 10,
                rounds: int = 1, statistic: str = "median", clock: str = "wall"
                ) -> list[float]:
    """End-to-end latency (ms) of several networks, timed round-robin ``rounds`` times; each
    network's value is the smallest of its per-round medians (``statistic``; see
    :func:`build_table`)."""
    reduce = STATISTICS.get(statistic)
    check_clock(clock, threads)
    best: list[float] = [math.inf] * len(specs)
    with _Threads(threads):
        runs = []
        for spec in specs:
            size = int(resolution or spec.resolution)
            x = torch.randn(batch, spec.in_channels, size, size)
            runs.append(RUNTIMES.get(runtime)(build(spec, seed=0).eval(), x, threads))
        for _ in range(rounds):
            for i, run in enumerate(runs):
                samples = time_runner(run, warmup=warmup, repeats=repeats,
                                      clock=clock).samples_ms
                best[i] = min(best[i], reduce(samples))
    return best


def bench_spec(spec: ArchSpec, *, resolution: int | None = None, threads: int,
               batch: int = 1, runtime: str = "torch", warmup: int = 5,
               repeats: int = 30, clock: str = "wall") -> Timing:
    """End-to-end latency of one network on this machine."""
    check_clock(clock, threads)
    model = build(spec, seed=0)
    size = int(resolution or spec.resolution)
    x = torch.randn(batch, spec.in_channels, size, size)
    with _Threads(threads):
        run = RUNTIMES.get(runtime)(model.eval(), x, threads)
        return time_runner(run, warmup=warmup, repeats=repeats, batch=batch, clock=clock)


def table_for(space, *, resolution: int, threads: int, batch: int = 1, runtime: str = "torch",
              clock: str = "wall", path: str | Path | None = None, build: bool = True,
              **timing: Any) -> LatencyTable:
    """The latency table a search on this machine should predict with.

    With ``path`` (``--latency-table F``): that file, which must be for ``space`` and for this
    device (CPU, torch version, threads, batch, runtime) at ``resolution``, else a
    LatencyTableError saying so. Without it: the cached table for this space, device and
    resolution, built (and cached) first when there is none and ``build`` is true. A broken
    file is an error either way, never silently rebuilt over.
    """
    from space.latency import LatencyTableError, load_table, save_table

    device = device_info(threads=threads, batch=batch, runtime=runtime, clock=clock)
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"latency table {str(p)!r} does not exist; build one with "
                                    f"nas latency-table --space {space.name} -o {p}")
        table = load_table(p)
        source = f"latency table {str(p)!r}"
    else:
        p = default_cache_path(space.name, device, resolution)
        if not p.is_file():
            if not build:
                raise FileNotFoundError(f"no cached latency table for space {space.name!r} on "
                                        f"this device at {p}; build one with nas "
                                        f"latency-table --space {space.name}")
            log.info("no cached latency table for %s on this device; timing %d entries and "
                     "fitting the overhead (as nas latency-table does; it is cached at %s)",
                     space.name, len(space_keys(space, resolution)), p)
            table = make_table(space, resolution=resolution, threads=threads, batch=batch,
                               runtime=runtime, clock=clock, **timing)
            p.parent.mkdir(parents=True, exist_ok=True)
            save_table(table, p)
            return table
        table = load_table(p)
        source = f"cached latency table {str(p)!r}"
    table.check(space=space.name, device=device, source=source)
    if table.resolution != resolution:
        raise LatencyTableError(f"{source} was timed at {table.resolution} px, not "
                                f"{resolution}; build one with nas latency-table --space "
                                f"{space.name} --resolution {resolution}")
    return table
