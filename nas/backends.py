"""Where trials run: ``local`` (in this process, one at a time) or ``ray`` (Ray Tune trials, on
this machine or on an existing Ray cluster).

A backend only executes trials. The Optuna study in the run folder stays the one source of
truth for both: the same sampler asks for every architecture, the same user attributes are
recorded, and the same code writes ``trials.csv``, ``best.json`` and the dashboards, so a run
folder reads the same whichever backend filled it (``--backend ray`` adds the Ray node id to the
``node`` column and a ``backend`` block to ``summary.json``).

``BACKENDS`` maps a name to a factory ``(BackendConfig) -> context manager -> executor``; an
executor has ``check_dataset(proxy)`` (fail fast, where the trials will run, on a dataset that
cannot be read) and ``optimize(study, objective, ...)`` (run stage 1's trials), and
``report()`` (what ran where, for ``summary.json``). Ray is imported only inside the ``ray``
backend, so ``nas --help`` and local runs never pay for it.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any, Callable, ContextManager, Iterator, Sequence

from space.registry import Registry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BackendConfig:
    """How trials are executed (not what they compute: changing it never changes a result).

    ``workers`` is the number of trials run at once (None: one for ``local``; as many as the
    cluster's CPUs allow at ``cpus_per_trial`` each for ``ray``). ``max_retries`` bounds how often
    a trial whose worker died (killed, node lost) is started again.
    """

    name: str = "local"
    address: str | None = None
    workers: int | None = None
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    max_retries: int = 2

    def __post_init__(self) -> None:
        BACKENDS.get(self.name)
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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> BackendConfig:
        return cls(**(d or {}))


@dataclass(frozen=True)
class Candidate:
    """A network, counted and recorded in its Optuna trial, waiting to be trained with ``seed``
    on ``proxy`` (None: the objective's own proxy task). A stage's ``prepare(trial)`` returns
    one to a backend that trains elsewhere (:mod:`nas.ray_backend`)."""

    spec: Any  # space.ArchSpec
    macs: int
    seed: int
    proxy: Any = None  # nas.evaluate.ProxyConfig


# ------------------------------------------------------------------------------------ local
class LocalExecutor:
    """Trials in this process, one at a time (Optuna's own loop)."""

    def __init__(self, config: BackendConfig) -> None:
        self.config = config

    def check_dataset(self, proxy: Any) -> None:
        from .data import load_dataset

        load_dataset(proxy.dataset, data_dir=proxy.data_dir)

    def optimize(self, study: Any, objective: Callable[[Any], Any], *, n_trials: int | None,
                 timeout: float | None, callbacks: Sequence[Callable[[Any, Any], None]],
                 run_dir: Any = None) -> bool:
        """Run the trials; True when interrupted (Ctrl-C)."""
        try:
            study.optimize(objective, n_trials=n_trials, timeout=timeout, catch=(Exception,),
                           callbacks=list(callbacks))
        except KeyboardInterrupt:
            return True
        return False

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        """``(index, fn(item))`` for each item, in order (stage 2's grid points)."""
        for i, item in enumerate(items):
            yield i, fn(item)

    def report(self) -> dict[str, Any]:
        return {"name": "local"}


@contextmanager
def _local(config: BackendConfig) -> Iterator[LocalExecutor]:
    yield LocalExecutor(config)


def _ray(config: BackendConfig) -> ContextManager[Any]:
    from .ray_backend import ray_session

    return ray_session(config)


BACKENDS: Registry[Callable[[BackendConfig], ContextManager[Any]]] = Registry("backend")
BACKENDS.add("local", _local)
BACKENDS.add("ray", _ray)


def open_backend(config: BackendConfig | None) -> ContextManager[Any]:
    """The executor for ``config`` (local when None), as a context manager that releases what
    it started (a local Ray instance) on exit."""
    config = config or BackendConfig()
    return BACKENDS.get(config.name)(config)
