"""How latency is measured on this machine (:class:`LatencySettings`) and the tables it names:
runtimes, clocks and the statistic of repeats; the device key a timing depends on
(:func:`device_info`). The timing itself is :mod:`nas.latency`, which re-exports these names.

Light on purpose: torch is imported where a runtime runs, so configs and ``--help`` (the
``--latency-runtime`` and ``--latency-clock`` choices) read these tables without torch.
"""
from __future__ import annotations

import platform
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from space.registry import Registry

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["CLOCKS", "RUNTIMES", "STATISTICS", "Runner", "LatencySettings", "check_clock",
           "cpu_model", "device_info"]


# ----------------------------------------------------------------------------- the device
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def device_info(*, device: str = "cpu", threads: int, batch: int, runtime: str = "torch",
                clock: str = "wall") -> dict[str, Any]:
    """What a timing depends on: the key a table is stored under and checked against."""
    if device != "cpu":
        raise ValueError(f"latency tables are measured on the CPU only for now, got --device "
                         f"{device!r}; pass --device cpu")
    RUNTIMES.get(runtime)
    check_clock(clock, threads)
    import torch  # here: a config (and --help) needs no torch

    info = {"device": device, "cpu": cpu_model(), "torch": torch.__version__,
            "threads": int(threads), "batch": int(batch), "runtime": runtime, "clock": clock}
    if runtime == "onnxruntime":
        from nas.onnx_export import require_onnx

        require_onnx()
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    return info


@dataclass(frozen=True)
class LatencySettings:
    """How latency is measured on this machine, for a search or a family: the intra-op
    ``threads``, the ``batch`` and the ``runtime`` (``torch`` or ``onnxruntime``), timed by
    ``clock``. A latency table is keyed by these (:meth:`device`), so a search's predictions
    and its measured latencies are of one and the same setting. The defaults are a single
    image on one thread, the setting MnasNet measured on a phone's single big core."""

    threads: int = 1
    batch: int = 1
    runtime: str = "torch"
    clock: str = "wall"

    def __post_init__(self) -> None:
        for name, flag in (("threads", "--latency-threads"), ("batch", "--latency-batch")):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"`{name} >= 1` must hold, but got {name}={v!r}; pass e.g. "
                                 f"{flag} 1")
        RUNTIMES.get(self.runtime)  # an unknown name lists the known ones
        check_clock(self.clock, self.threads, flags=("--latency-clock", "--latency-threads"))

    def device(self) -> dict[str, Any]:
        """The device key of this setting here (:func:`device_info`); ``onnxruntime`` without
        the extra is an error saying how to install it."""
        return device_info(threads=self.threads, batch=self.batch, runtime=self.runtime,
                           clock=self.clock)

    def to_dict(self) -> dict[str, Any]:
        return {"threads": self.threads, "batch": self.batch, "runtime": self.runtime,
                "clock": self.clock}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> "LatencySettings | None":
        return None if d is None else cls(**{k: d[k] for k in ("threads", "batch", "runtime",
                                                                "clock") if k in d})

    @classmethod
    def of_device(cls, device: Mapping[str, Any]) -> "LatencySettings":
        """The setting a table's ``device`` was timed with."""
        return cls(threads=int(device.get("threads", 1)), batch=int(device.get("batch", 1)),
                   runtime=str(device.get("runtime", "torch")),
                   clock=str(device.get("clock", "wall")))


# ----------------------------------------------------------------------------- runtimes
# A runtime turns (module, example input) into a zero-argument callable running one forward.
Runner = Callable[[], Any]
RUNTIMES: Registry[Callable[[nn.Module, torch.Tensor, int], Runner]] = Registry("runtime")


@RUNTIMES.register("torch")
def _torch_runner(module: nn.Module, x: torch.Tensor, threads: int) -> Runner:
    import torch

    module.eval()

    def run() -> Any:
        with torch.inference_mode():
            return module(x)

    return run


@RUNTIMES.register("onnxruntime")
def _ort_runner(module: nn.Module, x: torch.Tensor, threads: int) -> Runner:
    from nas.onnx_export import export_onnx_module, require_onnx

    require_onnx()
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.onnx"
        export_onnx_module(module.eval(), x, path)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: x.numpy()}
    return lambda: session.run(None, feed)


# How one measurement's repeats become its value. The median is the default (the issue's
# "median of repeats"); the minimum is for a machine shared with other work, where load only
# ever adds time, so the fastest run is the least-disturbed one.
STATISTICS: Registry[Callable[[Sequence[float]], float]] = Registry("timing statistic")
STATISTICS.add("median", statistics.median)
STATISTICS.add("min", min)


# What a run's time is read from. wall: time.perf_counter, the latency a user sees. cpu: the
# calling thread's CPU time (time.thread_time), which does not advance while the scheduler runs
# other work, so it measures the compute on a machine shared with other jobs. With one intra-op
# thread torch runs every op on the calling thread, so on a quiet machine the two agree; with
# more threads the calling thread's CPU time misses the others' work, so cpu needs threads 1.
CLOCKS: Registry[Callable[[], float]] = Registry("clock")
CLOCKS.add("wall", time.perf_counter)
CLOCKS.add("cpu", time.thread_time)


def check_clock(clock: str, threads: int, *, flags: tuple[str, str] = ("--clock", "--threads")
                ) -> None:
    """``clock`` is known, and ``cpu`` times one thread; ``flags`` name the clock and threads
    options the user typed, for the message."""
    CLOCKS.get(clock)
    clock_flag, threads_flag = flags
    if clock == "cpu" and threads != 1:
        raise ValueError(f"{clock_flag} cpu reads the timing thread's CPU time, so it needs "
                         f"{threads_flag} 1, got {threads_flag} {threads}; pass {clock_flag} "
                         f"wall")
