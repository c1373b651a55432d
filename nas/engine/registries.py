"""The engine's tables: samplers, and pruners with their Ray Tune twin.

One table per choice, shared by both stages and both backends. A pruner row holds the local
Optuna pruner and the Ray Tune scheduler that does the same job, so a name is either known to
both or to neither (and is checked before a study exists). Optuna and Ray are imported inside the
factories: the tables themselves are cheap to import (``--help`` lists their names).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from space.registry import Registry

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
    """Early stopping on the per-epoch reward: ``local(epochs)`` is the Optuna pruner of a
    local run, ``ray(epochs)`` the Ray Tune scheduler of a ``--backend ray`` run."""

    local: Callable[[int], Any]
    ray: Callable[[int], Any]
    help: str


def _hyperband_local(epochs: int) -> Any:
    import optuna

    return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(epochs, 1),
                                          reduction_factor=3)


def _hyperband_ray(epochs: int) -> Any:
    # Async successive halving, the Tune counterpart of Hyperband (same reduction factor 3,
    # first rung after one epoch).
    from ray.tune.schedulers import ASHAScheduler

    return ASHAScheduler(time_attr="epoch", max_t=max(epochs, 1), grace_period=1,
                         reduction_factor=3)


def _median_local(epochs: int) -> Any:
    import optuna

    return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)


def _median_ray(epochs: int) -> Any:
    from ray.tune.schedulers import MedianStoppingRule

    return MedianStoppingRule(time_attr="epoch", grace_period=1, min_samples_required=5)


def _none_local(epochs: int) -> Any:
    import optuna

    return optuna.pruners.NopPruner()


def _none_ray(epochs: int) -> Any:
    from ray.tune.schedulers import FIFOScheduler

    return FIFOScheduler()


PRUNERS: Registry[PrunerInfo] = Registry("pruner")
PRUNERS.add("hyperband", PrunerInfo(_hyperband_local, _hyperband_ray,
                                    "successive halving (ASHA on Ray)"))
PRUNERS.add("median", PrunerInfo(_median_local, _median_ray, "median stopping rule"))
PRUNERS.add("none", PrunerInfo(_none_local, _none_ray, "every trial trains fully"))
