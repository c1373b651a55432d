"""The trial recorder: what every trial of either stage writes into its Optuna trial.

One place for the user attributes both backends and both stages record (the learning curve, a
pruned trial's accuracy, a failure's reason), for the rule that says which trials count as
finished, and for the name of the node a trial ran on. The run folder's tables
(:mod:`results.store`) read these attributes by name.
"""
from __future__ import annotations

import os
import socket
from typing import Any, Iterable

from optuna.trial import FrozenTrial, TrialState

from results.store import INTERRUPTED, STALE_ATTR

__all__ = ["INTERRUPTED", "FINISHED", "MAX_REASON", "failure", "record", "record_curve",
           "record_pruned", "record_failure", "stale_numbers", "interrupted_numbers", "is_interrupted",
           "finished_count", "node_name", "reuse_key", "carried"]

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
MAX_REASON = 500  # characters of a failure's reason kept in the trial


def failure(exc: BaseException | str) -> str:
    """A failure's reason as the trial records it: ``Type: message``, at most MAX_REASON."""
    text = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
    return text[:MAX_REASON]


def record(trial: Any, **attrs: Any) -> None:
    """Set user attributes on a live trial (Optuna's ``Trial``)."""
    for k, v in attrs.items():
        trial.set_user_attr(k, v)


def carried(t: Any, names: Iterable[str]) -> dict[str, Any]:
    """The user attributes ``names`` that ``t`` holds: what a trial was enqueued with (the
    stage's :attr:`nas.engine.Stage.enqueue_attrs` and the finalists' own), which its retry or
    its finalist runs are enqueued with again. The one rule for both; it names no attribute."""
    return {k: t.user_attrs[k] for k in names if k in t.user_attrs}


def record_curve(trial: Any, curve: Iterable[float]) -> None:
    trial.set_user_attr("val_accuracy_per_epoch", [float(a) for a in curve])


def record_pruned(trial: Any, curve: list[float]) -> None:
    """A trial stopped early keeps the accuracy it had reached, and when."""
    record(trial, accuracy=float(curve[-1]), pruned_at_epoch=len(curve))


def stale_numbers(study: Any) -> list[int]:
    """Trials a resumed run failed because a dead driver had left them RUNNING."""
    return list(study.user_attrs.get(STALE_ATTR, []))


def record_failure(trial: Any, reason: BaseException | str) -> str:
    why = failure(reason)
    trial.set_user_attr("fail_reason", why)
    return why


def interrupted_numbers(study: Any) -> set[int]:
    """Trials that did not finish through no fault of their own (Ctrl-C, a dead driver)."""
    stale = set(stale_numbers(study))
    return stale | {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
                    if t.user_attrs.get("fail_reason") == INTERRUPTED}


def is_interrupted(t: FrozenTrial, stale: set[int] | frozenset[int] = frozenset()) -> bool:
    return t.state == TrialState.FAIL and (t.user_attrs.get("fail_reason") == INTERRUPTED
                                           or t.number in stale)


def finished_count(study: Any) -> int:
    """Trials that count against the budget: finished, and not interrupted."""
    stale = set(stale_numbers(study))
    return sum(1 for t in study.get_trials(deepcopy=False, states=FINISHED)
               if not is_interrupted(t, stale))


def reuse_key(t: FrozenTrial) -> str | None:
    """What decides that two trials train identically (same network, proxy task and seed).
    Runs of 0.1 recorded stage 1's as ``arch_hash`` only."""
    ua = t.user_attrs
    return ua.get("train_key", ua.get("arch_hash"))


def node_name() -> str:
    return os.environ.get("EFFICIENTNAS_NODE", socket.gethostname())
