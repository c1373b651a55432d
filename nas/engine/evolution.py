"""Regularized (aging) evolution as an Optuna sampler (Real et al. 2019, Algorithm 1).

The population is the ``population_size`` most recent finished trials. Each new trial draws
``sample_size`` of them at random, takes the fittest as parent and mutates exactly one of its
parameters to a different choice. Until the population is full, trials are sampled at random.
Works with any categorical define-by-run space whose parameter set is fixed (as ours is).

The sampler keeps each running trial's plan (parent, mutated parameter) in memory, keyed by the
trial number, and uses only Optuna's public sampler interface: a trial interrupted with its
driver is sampled again from scratch on ``--resume``.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

class RegularizedEvolutionSampler(BaseSampler):
    def __init__(self, *, population_size: int = 16, sample_size: int = 4,
                 seed: int | None = None) -> None:
        if population_size < 2 or not 1 <= sample_size <= population_size:
            raise ValueError(f"`2 <= population_size` and `1 <= sample_size <= population_size` "
                             f"must hold, but got population_size={population_size}, "
                             f"sample_size={sample_size}")
        self.population_size = population_size
        self.sample_size = sample_size
        self._rng = np.random.RandomState(seed)
        self._random = RandomSampler(seed=seed)
        self._plans: dict[int, tuple[FrozenTrial, str]] = {}  # trial number -> (parent, key)

    def reseed_rng(self) -> None:
        self._rng.seed()
        self._random.reseed_rng()

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial
                                    ) -> dict[str, BaseDistribution]:
        return {}

    def sample_relative(self, study: Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        return {}

    def _population(self, study: Study) -> list[FrozenTrial]:
        done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        done.sort(key=lambda t: t.datetime_complete or t.datetime_start)
        return done[-self.population_size:]

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        if len(study.directions) > 1:
            raise ValueError("sampler 'evolution' is single-objective; use --sampler nsga2 for "
                             "an accuracy/MACs Pareto front")
        pop = self._population(study)
        if len(pop) < self.population_size:
            return
        picks = self._rng.choice(len(pop), size=self.sample_size, replace=False)
        sign = 1 if study.direction == StudyDirection.MAXIMIZE else -1
        parent = max((pop[i] for i in picks), key=lambda t: sign * t.value)
        mutable = [k for k, d in parent.distributions.items()
                   if isinstance(d, CategoricalDistribution) and len(d.choices) > 1]
        if not mutable:
            return
        key = mutable[self._rng.randint(len(mutable))]
        self._plans[trial.number] = (parent, key)

    def sample_independent(self, study: Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        plan = self._plans.get(trial.number)
        if plan is None or param_name not in plan[0].params:
            return self._random.sample_independent(study, trial, param_name, param_distribution)
        parent, mutate = plan
        value = parent.params[param_name]
        if param_name == mutate and isinstance(param_distribution, CategoricalDistribution):
            others = [c for c in param_distribution.choices if c != value]
            value = others[self._rng.randint(len(others))]
        return value

    def after_trial(self, study: Study, trial: FrozenTrial, state: TrialState,
                    values: Sequence[float] | None) -> None:
        self._plans.pop(trial.number, None)
        self._random.after_trial(study, trial, state, values)

