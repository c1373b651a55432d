"""The fidelity ladder: successive halving over the training budget, for both stages and both
backends.

A :class:`Ladder` is the list of **rungs**, the epochs after which trials are compared
(``(1, 3, 9)``: after epoch 1, after epoch 3, and the full 9). The top rung is the full
training length (the proxy task's ``epochs``). At every rung below the top, a trial goes on
training only while its reward is in the best ``1/reduction_factor`` of the rewards recorded at
that rung so far (at least the best one goes on): asynchronous successive halving (ASHA; Li et
al., "A System for Massively Parallel Hyperparameter Tuning", 2020; the rule of Optuna's
``SuccessiveHalvingPruner``). A stopped trial is PRUNED and keeps the accuracy it reached.

Two numbers, kept apart: the **keep fraction** (``reduction_factor``, ``--reduction-factor``:
keep the best 1/N at each rung; each stage's config sets it and records it) and the **rung
spacing** of the default ladder (:data:`RUNG_SPACING`: rungs 1, 3, 9, ... below the training
length, whatever the keep fraction). ASHA ties the two to one eta; here a stage may keep the
best half (stage 1's default, issue 23: over 24 networks x 3 seeds, rung 1 keeping half kept
3.62 of the top 4, keeping a third 2.37; BENCHMARKS.md) without spacing the rungs 1, 2, 4, 8.

One rule, :meth:`Ladder.promotes`, decides for both backends: the local backend through the
Optuna pruner :class:`RungPruner`, the Ray backend through the Tune scheduler
:func:`rung_scheduler`. Both read the rung values from the study (the one source of truth), so
a resumed run compares against every trial it has, whichever backend ran it. Finalists
(:mod:`.finalists`) are never compared or stopped: they train to the top rung.

How a stage uses it: give the stage a ``ladder`` attribute (a :class:`Ladder` whose top rung is
``proxy.train.epochs``) and ``pruner = "asha"``; the engine builds the pruner from it
(:func:`ladder_of`; a stage without one gets :meth:`Ladder.of_epochs`). The stage's trials report
the reward after every epoch (``reports_epochs = True``); only the rungs are compared.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

__all__ = ["Ladder", "RUNG_SPACING", "check_reduction_factor", "parse_reduction_factor",
           "parse_rungs", "rung_values", "rung_pruner", "rung_scheduler", "ladder_of"]

FINALIST = "finalist"  # the user attribute marking a finalist run (see .finalists)
# The default ladder's rungs are 1, 3, 9, ... below the training length: the spacing every
# run has had, kept apart from the keep fraction so that changing one leaves the other.
RUNG_SPACING = 3


def _is_reduction_factor(value: object) -> bool:
    """The one rule for a keep fraction 1/N: N is a whole number >= 2."""
    return not isinstance(value, bool) and isinstance(value, int) and value >= 2


def check_reduction_factor(value: object) -> int:
    """The keep fraction 1/N as N, a whole number >= 2 (one-line error otherwise)."""
    if not _is_reduction_factor(value):
        raise ValueError(f"`reduction_factor >= 2` must hold (a whole number: keep the best 1/N "
                         f"at each rung), but got reduction_factor={value!r}; pass e.g. "
                         f"--reduction-factor 2 (keep the best half)")
    return value


def parse_reduction_factor(text: str | int) -> int:
    """``--reduction-factor``'s text: ``"2"`` -> 2; anything but a whole number >= 2 (``"1"``,
    ``"-2"``, ``"2.5"``, ``"abc"``) is one line naming it, the rule and a fix."""
    try:
        value = int(text.strip()) if isinstance(text, str) else text
    except ValueError:
        value = None
    if not _is_reduction_factor(value):
        raise ValueError(f"--reduction-factor must be a whole number >= 2 (keep the best 1/N at "
                         f"each rung), but got {text!r}; pass e.g. --reduction-factor 2 (keep "
                         f"the best half) or 3 (a third)")
    return value


@dataclass(frozen=True)
class Ladder:
    """Rungs in epochs (strictly increasing, positive; the last is the full training length)
    and the reduction factor (keep the best 1/reduction_factor at each rung; 3 unless a stage
    says otherwise: stage 1's config sets 2, gridsearch's 3)."""

    rungs: tuple[int, ...]
    reduction_factor: int = 3

    def __post_init__(self) -> None:
        rungs = tuple(self.rungs)
        object.__setattr__(self, "rungs", rungs)
        text = ",".join(str(r) for r in rungs)
        if not rungs or any(not isinstance(r, int) or isinstance(r, bool) or r < 1
                            for r in rungs):
            raise ValueError(f"rungs must be whole epochs >= 1, but got --rungs {text or '(none)'}"
                             f"; pass e.g. --rungs 1,3,9")
        if any(b <= a for a, b in zip(rungs, rungs[1:])):
            raise ValueError(f"rungs must increase (the epochs after which trials are "
                             f"compared), but got --rungs {text}; pass e.g. --rungs 1,3,9")
        check_reduction_factor(self.reduction_factor)

    @classmethod
    def of_epochs(cls, epochs: int, *, reduction_factor: int = 3,
                  spacing: int = RUNG_SPACING) -> Ladder:
        """The default ladder of an ``epochs``-long training: 1, spacing, spacing^2, ... below
        ``epochs``, then ``epochs`` (2 epochs: (1, 2); 9: (1, 3, 9); 4: (1, 3, 4)), keeping the
        best 1/``reduction_factor`` at each rung; the spacing does not follow the keep
        fraction (:data:`RUNG_SPACING`)."""
        if isinstance(spacing, bool) or not isinstance(spacing, int) or spacing < 2:
            raise ValueError(f"`spacing >= 2` must hold (rungs 1, spacing, spacing^2, ...), but "
                             f"got spacing={spacing!r}; pass e.g. spacing=3")
        epochs = max(int(epochs), 1)
        rungs, r = [], 1
        while r < epochs:
            rungs.append(r)
            r *= spacing
        return cls((*rungs, epochs), reduction_factor)

    @property
    def top(self) -> int:
        return self.rungs[-1]

    @property
    def compared(self) -> tuple[int, ...]:
        """The rungs at which a trial may be stopped (all but the top)."""
        return self.rungs[:-1]

    def promotes(self, value: float, others: Sequence[float]) -> bool:
        """Whether a trial with reward ``value`` at a rung goes on, given the rewards
        ``others`` other trials recorded there: it must be among the best
        ``max(1, n // reduction_factor)`` of the ``n`` values (its own included). A NaN never
        goes on."""
        if not math.isfinite(value):
            return False
        pool = sorted([v for v in others if math.isfinite(v)] + [value], reverse=True)
        keep = max(1, len(pool) // self.reduction_factor)
        return value >= pool[keep - 1]

    def to_text(self) -> str:
        return ",".join(str(r) for r in self.rungs)

    def describe(self) -> str:
        """``"1,3,9 keeping the best 1/2"``, for the run's log."""
        return f"{self.to_text()} keeping the best 1/{self.reduction_factor}"


def parse_rungs(text: str | Iterable[int], *, epochs: int | None = None) -> tuple[int, ...]:
    """``"1,3,9"`` -> ``(1, 3, 9)``, validated by :class:`Ladder` (one-line errors); with
    ``epochs`` (the proxy's training length), the top rung must equal it."""
    if isinstance(text, str):
        parts = [p.strip() for p in text.split(",") if p.strip()]
        try:
            rungs = tuple(int(p) for p in parts)
        except ValueError:
            raise ValueError(f"--rungs must be comma-separated whole epochs, but got "
                             f"{text!r}; pass e.g. --rungs 1,3,9") from None
    else:
        rungs = tuple(text)
    ladder = Ladder(rungs)
    if epochs is not None and ladder.rungs[-1] != epochs:
        raise ValueError(f"the top rung is the full training: --rungs {ladder.to_text()} needs "
                         f"--epochs {ladder.rungs[-1]}, but got --epochs {epochs}; drop --epochs "
                         f"or end the rungs at it")
    return ladder.rungs


def rung_values(trials: Iterable[Any], rung: int, *, exclude: int | None = None) -> list[float]:
    """The rewards the race's trials (not finalists, not trial ``exclude``) reported at
    ``rung``."""
    from optuna.trial import TrialState

    racing = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
    return [t.intermediate_values[rung] for t in trials
            if t.state in racing and t.number != exclude and rung in t.intermediate_values
            and not t.user_attrs.get(FINALIST)]


def rung_pruner(ladder: Ladder) -> Any:
    """The local backend's ladder: an Optuna pruner that stops a trial at a rung where
    :meth:`Ladder.promotes` says no (Optuna is imported here, so the tables stay cheap)."""
    import optuna

    class RungPruner(optuna.pruners.BasePruner):
        def __init__(self) -> None:
            self.ladder = ladder

        def prune(self, study: Any, trial: Any) -> bool:
            step = trial.last_step
            if step is None or step not in ladder.compared or trial.user_attrs.get(FINALIST):
                return False
            others = rung_values(study.get_trials(deepcopy=False), step, exclude=trial.number)
            return not ladder.promotes(trial.intermediate_values[step], others)

    return RungPruner()


def rung_scheduler(ladder: Ladder, study: Any) -> Any:
    """The Ray backend's ladder: a Tune scheduler that stops a trial at a rung where
    :meth:`Ladder.promotes` says no, against the rung values in ``study`` (the driver records
    every epoch there). Finalists (``config['finalist']``) always go on."""
    from ray.tune.schedulers import FIFOScheduler, TrialScheduler

    class RungScheduler(FIFOScheduler):
        def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
            epoch = result.get("epoch")
            if trial.config.get(FINALIST) or epoch not in ladder.compared:
                return TrialScheduler.CONTINUE
            others = rung_values(study.get_trials(deepcopy=False), int(epoch),
                                 exclude=trial.config.get("number"))
            go_on = ladder.promotes(float(result.get("reward", float("nan"))), others)
            return TrialScheduler.CONTINUE if go_on else TrialScheduler.STOP

    return RungScheduler()


def ladder_of(stage: Any) -> Ladder:
    """The stage's ladder (its ``ladder`` attribute), else the default ladder of its proxy
    task's epochs."""
    ladder = getattr(stage, "ladder", None)
    return ladder if ladder is not None else Ladder.of_epochs(stage.proxy.train.epochs)
