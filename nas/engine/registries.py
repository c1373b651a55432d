"""The engine's tables: samplers, and pruners with their Ray Tune twin.

One table per choice, shared by both stages and both backends. A pruner row holds the local
Optuna pruner and the Ray Tune scheduler that does the same job, both built from the stage's
fidelity ladder (:mod:`.fidelity`), so a name is either known to both or to neither
(and is checked before a study exists). Optuna and Ray are imported inside the factories:
the tables themselves are cheap to import (``--help`` lists their names).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from space.registry import Registry

from .fidelity import Ladder

__all__ = ["SamplerInfo", "PrunerInfo", "SAMPLERS", "PRUNERS"]


@dataclass(frozen=True)
class SamplerInfo:
    make: Callable[[int | None], Any]  # seed -> optuna.samplers.BaseSampler
    multi_objective: bool
    help: str


def _tpe(seed: int | None) -> Any:
    import optuna

    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=8, multivariate=True,
                                      group=False, constant_liar=True)


def _random(seed: int | None) -> Any:
    import optuna

    return optuna.samplers.RandomSampler(seed=seed)


def _nsga2(seed: int | None) -> Any:
    import optuna

    return optuna.samplers.NSGAIISampler(seed=seed, population_size=8)


def _evolution(seed: int | None) -> Any:
    from .evolution import RegularizedEvolutionSampler

    return RegularizedEvolutionSampler(population_size=12, sample_size=4, seed=seed)


SAMPLERS: Registry[SamplerInfo] = Registry("sampler")
SAMPLERS.add("tpe", SamplerInfo(_tpe, False, "tree-structured Parzen estimator"))
SAMPLERS.add("random", SamplerInfo(_random, False, "uniform random"))
SAMPLERS.add("nsga2", SamplerInfo(_nsga2, True, "accuracy/MACs Pareto front"))
SAMPLERS.add("evolution", SamplerInfo(_evolution, False, "regularized evolution"))


@dataclass(frozen=True)
class PrunerInfo:
    """Early stopping on the per-epoch reward over the stage's fidelity ladder
    (:class:`nas.engine.fidelity.Ladder`): ``local(ladder)`` is the Optuna pruner of a local
    run, ``ray(ladder, study)`` the Ray Tune scheduler of a ``--backend ray`` run."""

    local: Callable[[Ladder], Any]
    ray: Callable[[Ladder, Any], Any]
    help: str


def _asha_local(ladder: Ladder) -> Any:
    from .fidelity import rung_pruner

    return rung_pruner(ladder)


def _asha_ray(ladder: Ladder, study: Any) -> Any:
    from .fidelity import rung_scheduler

    return rung_scheduler(ladder, study)


def _hyperband_local(ladder: Ladder) -> Any:
    import optuna

    return optuna.pruners.HyperbandPruner(min_resource=ladder.rungs[0],
                                          max_resource=ladder.top,
                                          reduction_factor=ladder.reduction_factor)


def _hyperband_ray(ladder: Ladder, study: Any) -> Any:
    # Async successive halving, the Tune counterpart of Hyperband (same reduction factor,
    # first rung after the ladder's first).
    from ray.tune.schedulers import ASHAScheduler

    return ASHAScheduler(time_attr="epoch", max_t=ladder.top, grace_period=ladder.rungs[0],
                         reduction_factor=ladder.reduction_factor)


def _median_local(ladder: Ladder) -> Any:
    import optuna

    return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=ladder.rungs[0])


def _median_ray(ladder: Ladder, study: Any) -> Any:
    from ray.tune.schedulers import MedianStoppingRule

    return MedianStoppingRule(time_attr="epoch", grace_period=ladder.rungs[0],
                              min_samples_required=5)


def _none_local(ladder: Ladder) -> Any:
    import optuna

    return optuna.pruners.NopPruner()


def _none_ray(ladder: Ladder, study: Any) -> Any:
    from ray.tune.schedulers import FIFOScheduler

    return FIFOScheduler()


PRUNERS: Registry[PrunerInfo] = Registry("pruner")
PRUNERS.add("asha", PrunerInfo(_asha_local, _asha_ray, "successive halving on the --rungs "
                               "ladder, the same rule locally and on Ray"))
PRUNERS.add("hyperband", PrunerInfo(_hyperband_local, _hyperband_ray,
                                    "Optuna's Hyperband brackets over the ladder's first and "
                                    "top rung (ASHA on Ray)"))
PRUNERS.add("median", PrunerInfo(_median_local, _median_ray, "median stopping rule"))
PRUNERS.add("none", PrunerInfo(_none_local, _none_ray, "every trial trains fully"))
