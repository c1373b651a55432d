"""The run's budget (nas.engine.budget): the estimate from the study's own trials (median
durations, the trials seen at once, the finalist runs left), the rule that closes the search,
the search closed early with every finalist still trained, and old run folders without one."""
from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import FrozenTrial, TrialState

from nas.engine import FinalistPlan
from nas.engine.budget import RunBudget, check_budget, concurrency, estimate
from nas.engine.finalists import FINALIST, search_count
from nas.search import SearchConfig, run_search

optuna.logging.set_verbosity(optuna.logging.WARNING)
T0 = datetime(2026, 12, 7, 4, 0, 0)


def _trial(number, start, seconds, *, state=TrialState.COMPLETE, **attrs):
    return FrozenTrial(number=number, state=state,
                       value=0.5 if state == TrialState.COMPLETE else None,
                       datetime_start=T0 + timedelta(seconds=start),
                       datetime_complete=T0 + timedelta(seconds=start + seconds),
                       params={"x": 0.5}, distributions={"x": FloatDistribution(0, 1)},
                       user_attrs=attrs, system_attrs={}, intermediate_values={},
                       trial_id=number)


def test_estimate_reads_medians_waves_and_runs_left():
    trials = [_trial(0, 0, 30), _trial(1, 30, 10, state=TrialState.PRUNED),
              _trial(2, 40, 50), _trial(3, 90, 40),
              _trial(4, 130, 0.1, reused_from=0),  # cost no training: not counted
              _trial(5, 131, 2, evaluator="supernet")]  # inherited weights: no stand-alone
    e = estimate(trials, FinalistPlan(4, 3))
    # search trials 0,1,2,3,5: durations 30, 10, 50, 40, 2 -> median 30
    assert e.trial == 30
    # stand-alone trainings to the top rung: 30, 50, 40 -> median 40
    assert e.finalist == 40 and e.runs_left == 12 and e.at_once == 1
    assert e.finalists == 12 * 40
    # once finalist runs finish, they are what a finalist run costs, and fewer are left
    done = trials + [_trial(6, 200, 60, **{FINALIST: True}),
                     _trial(7, 200, 70, **{FINALIST: True})]
    e = estimate(done, FinalistPlan(4, 3))
    assert e.finalist == 65 and e.runs_left == 10 and e.at_once == 2
    assert e.finalists == 5 * 65  # 10 runs, 2 at a time
    assert estimate(trials, FinalistPlan(0)).finalists == 0.0


def test_longer_finalists_are_estimated_per_epoch_until_one_finishes():
    curve = {"val_accuracy_per_epoch": [0.5, 0.6]}
    trials = [_trial(0, 0, 30, **curve), _trial(1, 30, 50, **curve), _trial(2, 80, 40, **curve),
              _trial(3, 120, 10, state=TrialState.PRUNED, val_accuracy_per_epoch=[0.1])]
    # stand-alone search trials: 15, 25, 20 s per epoch -> median 20; finalists train 8 epochs
    e = estimate(trials, FinalistPlan(2, 3, 8))
    assert e.finalist == 20 * 8 and e.finalists == 6 * 160
    # as long as the search's: the search trials' own median, as without the setting
    assert estimate(trials, FinalistPlan(2, 3)).finalist == 40
    # once a finalist run finishes, it is what a finalist run costs
    done = trials + [_trial(4, 200, 100, **{FINALIST: True}, val_accuracy_per_epoch=[0.5] * 8)]
    assert estimate(done, FinalistPlan(2, 3, 8)).finalist == 100


def test_nothing_trained_to_the_top_means_no_estimate():
    trials = [_trial(0, 0, 10, state=TrialState.PRUNED), _trial(1, 10, 10, evaluator="supernet")]
    e = estimate(trials, FinalistPlan(2, 2))
    assert e.finalist is None and e.finalists is None


def test_concurrency_counts_overlaps_not_touching_ends():
    assert concurrency([]) == 1
    assert concurrency([_trial(0, 0, 10), _trial(1, 10, 10)]) == 1  # one ends as one starts
    assert concurrency([_trial(0, 0, 10), _trial(1, 5, 10), _trial(2, 6, 1),
                        _trial(3, 20, 1)]) == 3


class _Study:
    def __init__(self, trials):
        self.trials = trials

    def get_trials(self, deepcopy=False):
        return self.trials


def test_the_budget_closes_when_one_more_trial_would_crowd_the_finalists(caplog):
    now = [0.0]
    study = _Study([_trial(0, 0, 20), _trial(1, 20, 40), _trial(2, 60, 30)])  # median 30
    b = RunBudget(600.0, FinalistPlan(2, 3), start=0.0, clock=lambda: now[0])
    # finalists: 6 runs x 30 s = 180 s, one more trial 30 s: closes once less than 210 s left
    now[0] = 390.0
    assert not b.closes(study)
    now[0] = 390.5
    with caplog.at_level(logging.INFO, logger="nas.engine.driver"):
        assert b.closes(study) and b.closes(study)
    said = [r.getMessage() for r in caplog.records if "search stops" in r.getMessage()]
    assert len(said) == 1  # logged once
    assert "210 s of the 600 s budget left" in said[0] and "6 run(s) of 30 s" in said[0]
    # no estimate yet: the budget does not stop the search, however late it is
    now[0] = 10_000.0
    assert not RunBudget(600.0, FinalistPlan(2, 3), start=0.0,
                         clock=lambda: now[0]).closes(_Study([]))


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf"), "780", True])
def test_bad_budgets_say_the_rule(bad):
    with pytest.raises(ValueError, match="budget >= 0"):
        check_budget(bad)


def test_zero_is_none_and_old_runs_had_none(tiny_config):
    assert check_budget(0) is None and check_budget(12) == 12.0
    assert tiny_config(budget=0).budget is None
    d = tiny_config().to_dict()
    assert d["budget"] == 780.0
    del d["budget"]  # a config.json from before the setting
    assert SearchConfig.from_dict(d).budget is None


class _Slow:
    """A fake trainer that takes ``seconds`` of wall time per training."""

    def __init__(self, inner, seconds):
        self.inner, self.seconds, self.finalists = inner, seconds, 0

    def __call__(self, spec, proxy, **kw):
        time.sleep(self.seconds)
        return self.inner(spec, proxy, **kw)


def test_the_budget_closes_the_search_and_the_finalists_still_train(tiny_config,
                                                                    curve_evaluator, tmp_path,
                                                                    caplog):
    from results.rundir import open_storage, storage_url

    out = tmp_path / "run"
    ev = _Slow(curve_evaluator(noise=0.05), 0.25)
    cfg = tiny_config(trials=60, finalists=2, finalist_seeds=2, budget=8)
    with caplog.at_level(logging.INFO, logger="nas.engine.driver"):
        run_search(cfg, out=out, evaluate=ev)
    study = optuna.load_study(study_name="stage1", storage=open_storage(storage_url(out, None)))
    # each training takes >= 0.25 s, so 8 s hold at most 32 of the 60 trials
    assert 2 <= search_count(study) <= 32
    finals = [t for t in study.trials if t.user_attrs.get(FINALIST)]
    assert len(finals) == 4 and all(t.state == TrialState.COMPLETE for t in finals)
    assert any("the search stops here" in r.getMessage() for r in caplog.records)
