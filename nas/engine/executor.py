"""What the driver runs trials on: the :class:`Executor` protocol, :class:`BackendConfig` and
the backend table :data:`BACKENDS`.

A backend only executes trials. The Optuna study in the run folder stays the one source of
truth for every backend: the same sampler asks for every architecture, the same steps
(:class:`nas.engine.TrialRunner`) record every trial, and the same code writes the run folder,
so a run folder reads the same whichever backend filled it (``--backend ray`` adds the Ray node
id to the ``node`` column and a ``backend`` block to ``summary.json``).

The engine names no backend. The backends (:mod:`nas.backends`: ``local`` and ``ray``) import
the engine and register themselves here, each under its name with a function that opens a
session: ``open(config)`` is a context manager that yields an :class:`Executor` and releases
what it started (a local Ray instance) on exit. Importing :mod:`nas.backends` registers them,
and each opener imports its backend's module only when called, so ``nas --help`` and local runs
never pay for Ray.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Callable, ContextManager, Protocol

from space.registry import Registry

if TYPE_CHECKING:
    from pathlib import Path

    import optuna

    from nas.proxy import ProxyConfig

    from .trial import TrialRunner

log = logging.getLogger(__name__)

__all__ = ["BACKENDS", "BackendConfig", "Executor", "SessionOpener", "open_backend"]


class Executor(Protocol):
    """What the driver (:func:`nas.engine.run_study`) calls on a backend's executor."""

    def check_dataset(self, proxy: ProxyConfig) -> None:
        """Fail fast, where the trials will run, on a dataset that cannot be read there."""
        ...

    def optimize(self, study: optuna.Study, runner: TrialRunner, *, n_trials: int | None,
                 timeout: float | None,
                 after_trial: Callable[[optuna.trial.FrozenTrial], None],
                 run_dir: Path | None = None, prune: bool = True) -> bool:
        """Run up to ``n_trials`` trials of ``study`` through ``runner`` (None: until the
        stage's budget is spent), starting none after ``timeout`` seconds, calling
        ``after_trial`` with each finished one; ``prune=False`` (the finalists' phase) runs
        every trial to the top rung. True when interrupted before the budget ran out."""
        ...

    def report(self) -> dict[str, Any]:
        """What ran where, for ``summary.json``'s ``backend`` block."""
        ...


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
        _opener(self.name)  # an unknown name fails here
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


# A backend's session opener: ``open(config)`` is a context manager that yields its executor.
SessionOpener = Callable[[BackendConfig], ContextManager[Executor]]

# name -> the backend's session opener; the backends register into it (:mod:`nas.backends`).
BACKENDS: Registry[SessionOpener] = Registry("backend")


def _opener(name: str) -> SessionOpener:
    if not len(BACKENDS):
        raise LookupError(f"no backend is registered, so backend {name!r} cannot be found; "
                          f"import nas.backends first (it registers local and ray)")
    return BACKENDS.get(name)


def open_backend(config: BackendConfig | None) -> ContextManager[Executor]:
    """The executor for ``config`` (local when None), as a context manager that releases what
    it started (a local Ray instance) on exit."""
    config = config or BackendConfig()
    return _opener(config.name)(config)
