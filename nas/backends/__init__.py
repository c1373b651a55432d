"""Backends: where a study's trials run, ``local`` (in this process, one at a time, or
``--trials-per-device N`` worker processes: :mod:`.local`, :mod:`.pool`) or ``ray`` (Ray Tune
trials, on this machine or on an existing Ray cluster: :mod:`.ray_tune`).

Each backend implements the engine's :class:`nas.engine.executor.Executor` protocol and is
configured by its :class:`nas.engine.executor.BackendConfig`. The backends import the engine,
never the other way: importing this package registers them in the engine's backend table
(:data:`nas.engine.executor.BACKENDS`), each with an opener that imports its module only when
the backend is chosen, so ``nas --help`` and local runs never pay for Ray.
"""
from __future__ import annotations

from contextlib import AbstractContextManager

from nas.engine.executor import BACKENDS, BackendConfig, Executor, open_backend

__all__ = ["BACKENDS", "BackendConfig", "Executor", "open_backend"]


def _local(config: BackendConfig) -> AbstractContextManager[Executor]:
    from .local import session

    return session(config)


def _ray(config: BackendConfig) -> AbstractContextManager[Executor]:
    from .ray_tune import session

    return session(config)


for _name, _open in (("local", _local), ("ray", _ray)):
    if _name not in BACKENDS:  # registered once, even if this module is imported again
        BACKENDS.add(_name, _open)
