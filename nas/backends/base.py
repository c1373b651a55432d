"""Where trials run: ``local`` (in this process, one at a time) or ``ray`` (Ray Tune trials, on
this machine or on an existing Ray cluster).

A backend only executes trials. The Optuna study in the run folder stays the one source of
truth for both: the same sampler asks for every architecture, the same steps
(:class:`nas.engine.TrialRunner`) record every trial, and the same code writes the run folder,
so a run folder reads the same whichever backend filled it (``--backend ray`` adds the Ray node
id to the ``node`` column and a ``backend`` block to ``summary.json``).

``BACKENDS`` maps a name to the module that runs it; its ``session(config)`` is a context
manager that yields an executor. An executor has ``check_dataset(proxy)`` (fail fast, where the trials will run, on a dataset that
cannot be read), ``optimize(study, runner, ...)`` (run the trials; True when interrupted) and
``report()`` (what ran where, for ``summary.json``). Each backend is imported only when chosen,
so ``nas --help`` and local runs never pay for Ray.
"""
from __future__ import annotations

import importlib
import logging
from dataclasses import asdict, dataclass
from typing import Any, ContextManager

from space.registry import Registry

log = logging.getLogger(__name__)

__all__ = ["BackendConfig", "BACKENDS", "open_backend"]


@dataclass(frozen=True)
class BackendConfig:
    """How trials are executed (not what they compute: changing it never changes a result).

    ``workers`` is the number of trials run at once (None: one for ``local``; as many as the
    cluster's CPUs allow at ``cpus_per_trial`` each for ``ray``). ``max_retries`` bounds how often
    a trial whose worker died (killed, node lost) is started again. ``trials_per_device`` (local
    only) trains that many trials at once on the one device, each in its own process.
    """

    name: str = "local"
    address: str | None = None
    workers: int | None = None
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    max_retries: int = 2
    trials_per_device: int = 1

    def __post_init__(self) -> None:
        BACKENDS.get(self.name)
        if isinstance(self.trials_per_device, bool) or \
                not isinstance(self.trials_per_device, int) or self.trials_per_device < 1:
            raise ValueError(f"`trials_per_device >= 1` must hold, but got "
                             f"trials_per_device={self.trials_per_device!r}; pass e.g. "
                             f"--trials-per-device 2")
        if self.name != "local" and self.trials_per_device > 1:
            raise ValueError("--trials-per-device is for the local backend; with --backend ray "
                             "share a GPU with e.g. --gpus-per-trial 0.5")
        if self.workers is not None and (not isinstance(self.workers, int) or self.workers < 1):
            raise ValueError(f"`workers >= 1` must hold, but got workers={self.workers!r}; pass "
                             f"e.g. --workers 2")
        if not self.cpus_per_trial > 0:
            raise ValueError(f"`cpus_per_trial > 0` must hold, but got "
                             f"cpus_per_trial={self.cpus_per_trial!r}; pass e.g. "
                             f"--cpus-per-trial 1")
        if not self.gpus_per_trial >= 0:
            raise ValueError(f"`gpus_per_trial >= 0` must hold, but got "
                             f"gpus_per_trial={self.gpus_per_trial!r}; pass e.g. "
                             f"--gpus-per-trial 1")
        if not isinstance(self.max_retries, int) or self.max_retries < 0:
            raise ValueError(f"`max_retries >= 0` must hold, but got "
                             f"max_retries={self.max_retries!r}; pass e.g. --max-retries 2")
        if self.name == "local":
            for flag, bad in (("--address", self.address is not None),
                              ("--workers", (self.workers or 1) > 1),
                              ("--gpus-per-trial", self.gpus_per_trial > 0)):
                if bad:
                    raise ValueError(f"{flag} needs --backend ray: the local backend runs one "
                                     f"trial at a time in this process; add --backend ray")

    def trial_device(self, requested: str) -> str:
        """The device trials will train on for ``--device requested``, checked here before
        anything is written: on this machine for ``local``; for ``ray``, the GPU Ray gives a
        trial (``cuda``) when ``--gpus-per-trial`` asks for one, else the CPU."""
        from nas.train.device import resolve_device, trial_device

        if self.name == "local":
            return str(resolve_device(requested))
        if requested.startswith("cuda") and not self.gpus_per_trial > 0:
            raise ValueError(f"--device {requested} with --backend ray needs a GPU per trial; "
                             f"add --gpus-per-trial 1 (or a fraction, e.g. 0.5)")
        return trial_device(requested, gpus=self.gpus_per_trial)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> BackendConfig:
        return cls(**(d or {}))


# name -> the module that runs that backend; it has ``session(config) -> context manager ->
# executor``. Imported by name when chosen, like nas.cli's command table, so ``nas --help`` and
# local runs never pay for Ray.
BACKENDS: Registry[str] = Registry("backend")
BACKENDS.add("local", "nas.backends.local")
BACKENDS.add("ray", "nas.backends.ray_tune")


def open_backend(config: BackendConfig | None) -> ContextManager[Any]:
    """The executor for ``config`` (local when None), as a context manager that releases what
    it started (a local Ray instance) on exit."""
    config = config or BackendConfig()
    return importlib.import_module(BACKENDS.get(config.name)).session(config)
