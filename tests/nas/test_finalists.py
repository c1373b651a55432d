"""Finalists (nas.engine.finalists): the table's mean and std against worked numbers, B0 by the
best mean, finalist runs in the same study and in trials.csv, a kill in the middle of the
finalists losing no finished seed, and --constraint hard landing at >= 0.7 T."""
from __future__ import annotations

import json
import math

import optuna
import pandas as pd
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from nas.engine import FinalistPlan, choose, finalist_table
from nas.engine.finalists import FINALIST, FINALIST_OF, FINALIST_SEED, mean_std, top_distinct
from nas.search import run_search
from space import load_spec

optuna.logging.set_verbosity(optuna.logging.WARNING)


def res_study(out):
    from results.rundir import open_storage, storage_url

    return optuna.load_study(study_name="stage1", storage=open_storage(storage_url(out, None)))


def _trial(number, reward, *, key, state=TrialState.COMPLETE, **attrs):
    t = create_trial(state=state, value=reward if state == TrialState.COMPLETE else None,
                     params={"x": 0.5}, distributions={"x": FloatDistribution(0, 1)},
                     user_attrs={"reward": reward, "accuracy": reward, "train_key": key,
                                 **attrs})
    t.number = number
    return t


def test_mean_and_std_match_worked_numbers():
    # search: trial 0 scored 0.81 (best), trial 1 scored 0.75
    trials = [_trial(0, 0.81, key="a"), _trial(1, 0.75, key="b")]
    n = 2
    for src, key, rewards in ((0, "a", (0.80, 0.60, 0.70)), (1, "b", (0.70, 0.74, 0.72))):
        for i, r in enumerate(rewards):
            trials.append(_trial(n, r, key=f"{key}#{i}", **{FINALIST: True, FINALIST_OF: src,
                                                           FINALIST_SEED: i, "seed": 100 + n}))
            n += 1
    rows = finalist_table(trials, seeds=3)
    by = {r.trial: r for r in rows}
    # (0.80 + 0.60 + 0.70) / 3 = 0.70; deviations 0.1, -0.1, 0: sqrt(0.02 / 2) = 0.1
    assert by[0].mean == pytest.approx(0.70) and by[0].std == pytest.approx(0.10)
    # (0.70 + 0.74 + 0.72) / 3 = 0.72; deviations -0.02, 0.02, 0: sqrt(0.0008 / 2) = 0.02
    assert by[1].mean == pytest.approx(0.72) and by[1].std == pytest.approx(0.02)
    assert by[0].search_reward == 0.81 and by[1].search_reward == 0.75
    assert [r["reward"] for r in by[1].runs] == [0.70, 0.74, 0.72]
    # B0 is the best mean (trial 1), not the best search score (trial 0)
    assert choose(rows).trial == 1 and rows[0].trial == 1
    assert mean_std([0.5]) == (0.5, pytest.approx(float("nan"), nan_ok=True))


def test_an_incomplete_finalist_is_not_chosen():
    trials = [_trial(0, 0.8, key="a"), _trial(1, 0.7, key="b"),
              _trial(2, 0.99, key="a#0", **{FINALIST: True, FINALIST_OF: 0, FINALIST_SEED: 0}),
              _trial(3, 0.70, key="b#0", **{FINALIST: True, FINALIST_OF: 1, FINALIST_SEED: 0}),
              _trial(4, 0.70, key="b#1", **{FINALIST: True, FINALIST_OF: 1, FINALIST_SEED: 1})]
    rows = finalist_table(trials, seeds=2)
    assert {r.trial: r.complete for r in rows} == {0: False, 1: True}
    assert choose(rows).trial == 1


def test_top_distinct_skips_repeats_and_finalists():
    trials = [_trial(0, 0.9, key="a"), _trial(1, 0.9, key="a"), _trial(2, 0.8, key="b"),
              _trial(3, 0.95, key="c", state=TrialState.PRUNED), _trial(4, 0.7, key="d"),
              _trial(5, 0.99, key="a#0", **{FINALIST: True, FINALIST_OF: 0,
                                            FINALIST_SEED: 0})]
    assert [t.number for t in top_distinct(trials, 3)] == [0, 2, 4]


def test_bad_plans_say_the_rule():
    with pytest.raises(ValueError, match="--finalists 4"):
        FinalistPlan(-1)
    with pytest.raises(ValueError, match="--finalist-seeds 3"):
        FinalistPlan(2, 0)


# ------------------------------------------------------------------- a real run with finalists
def test_finalists_run_in_the_same_study_and_b0_is_the_best_mean(tiny_config, curve_evaluator,
                                                                 tmp_path):
    out = tmp_path / "r"
    ev = curve_evaluator(noise=0.05)
    res = run_search(tiny_config(trials=6, finalists=2, finalist_seeds=3), out=out, evaluate=ev)
    df = pd.read_csv(out / "trials.csv")
    search, fin = df[~df.finalist], df[df.finalist]
    assert len(search) == 6 and len(fin) == 6 and (fin.state == "COMPLETE").all()
    sources = sorted(set(fin.finalist_of))
    done = search[search.state == "COMPLETE"].sort_values("reward", ascending=False)
    assert sources == sorted(done.drop_duplicates("arch_hash").number[:2])
    best = load_spec(out / "best.json")
    table = best.meta["finalists"]
    seed_of = {t.number: t.user_attrs["seed"] for t in res_study(out).trials}
    for src in sources:  # each source: seed indices 0..2, three fresh training seeds
        runs = fin[fin.finalist_of == src]
        assert sorted(runs.finalist_seed) == [0, 1, 2]
        assert (runs.arch_hash == df[df.number == src].arch_hash.iloc[0]).all()
        seeds = {seed_of[n] for n in runs.number}
        assert len(seeds) == 3 and seed_of[src] not in seeds
        row = next(r for r in table if r["trial"] == src)
        assert {r["seed"] for r in row["runs"]} == seeds
    assert [r["trial"] for r in table] == [r["trial"] for r in
                                           sorted(table, key=lambda r: -r["mean"])]
    for r in table:
        rewards = list(fin[fin.finalist_of == r["trial"]].sort_values("finalist_seed").reward)
        assert [x["reward"] for x in r["runs"]] == pytest.approx(rewards)
        assert r["mean"] == pytest.approx(sum(rewards) / 3)
        assert r["std"] == pytest.approx(pd.Series(rewards).std(ddof=1))
        assert r["search_reward"] == pytest.approx(
            float(df[df.number == r["trial"]].reward.iloc[0]))
    assert best.meta["chosen_by"] == "finalists" and best.meta["trial"] == table[0]["trial"]
    assert best.meta["reward"] == pytest.approx(table[0]["mean"])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["finalists"]["complete"] == 2 and summary["best"]["trial"] == table[0]["trial"]
    assert res.best.arch_hash() == best.arch_hash()


def test_a_kill_mid_finalists_loses_no_finished_seed_and_resume_finishes(tiny_config,
                                                                         curve_evaluator,
                                                                         tmp_path):
    out = tmp_path / "r"
    cfg = tiny_config(trials=5, finalists=2, finalist_seeds=3)
    first = curve_evaluator(noise=0.05, interrupt_on=None)
    run_search(tiny_config(trials=5, finalists=0), out=tmp_path / "probe", evaluate=first)
    searched = len(first.calls)  # how many trainings the search itself needs (5, no repeats)
    ev = curve_evaluator(noise=0.05, interrupt_on=searched + 4)  # the 5th finalist run
    res = run_search(cfg, out=out, evaluate=ev)
    assert res.interrupted
    df = pd.read_csv(out / "trials.csv")
    fin = df[df.finalist]
    finished = fin[fin.state == "COMPLETE"]
    assert len(finished) == 4 and fin[fin.state == "FAIL"].fail_reason.tolist() == ["interrupted"]
    seed_of = {t.number: t.user_attrs.get("seed") for t in res_study(out).trials}
    kept = {(r.finalist_of, r.finalist_seed): (seed_of[r.number], r.reward)
            for r in finished.itertuples()}

    again = curve_evaluator(noise=0.05)
    res2 = run_search(cfg, out=out, resume=True, evaluate=again)
    assert not res2.interrupted
    assert len(again.calls) == 2  # only the two missing seeds were trained; no new search trial
    df2 = pd.read_csv(out / "trials.csv")
    assert (~df2.finalist).sum() == 5
    fin2 = df2[df2.finalist & (df2.state == "COMPLETE")]
    assert len(fin2) == 6
    seed_of = {t.number: t.user_attrs.get("seed") for t in res_study(out).trials}
    for (src, i), (seed, reward) in kept.items():  # finished seeds untouched
        row = fin2[(fin2.finalist_of == src) & (fin2.finalist_seed == i)]
        assert len(row) == 1 and seed_of[row.number.iloc[0]] == seed
        assert row.reward.iloc[0] == reward
    assert {(r.finalist_of, r.finalist_seed) for r in fin2.itertuples()} == \
        {(s, i) for s in set(fin2.finalist_of) for i in range(3)}
    best = load_spec(out / "best.json")
    assert all(r["complete"] for r in best.meta["finalists"])
    # a second resume has nothing left to do
    third = curve_evaluator()
    run_search(cfg, out=out, resume=True, evaluate=third)
    assert third.calls == []


def test_finalists_zero_is_the_search_best(tiny_config, curve_evaluator, tmp_path):
    out = tmp_path / "r"
    run_search(tiny_config(trials=4, finalists=0), out=out, evaluate=curve_evaluator())
    df = pd.read_csv(out / "trials.csv")
    best = load_spec(out / "best.json")
    assert not df.finalist.any() and best.meta["chosen_by"] == "search"
    assert best.meta["reward"] == pytest.approx(df.reward.max())
    assert "finalists" not in best.meta


# ----------------------------------------------------------------------- the hard constraint
def _macs_of(space_file):
    """The MACs of every member of the tiny space at the test deployment (32 px)."""
    import itertools

    from space import count_analytic
    from space.deploy import Deployment, deployment_spec
    from space.search_space import load_space

    sp = load_space(space_file)

    class Fixed:
        def __init__(self, values):
            self.values = iter(values)

        def suggest_categorical(self, name, choices):
            return next(self.values)

    probe = []

    class Record:
        def suggest_categorical(self, name, choices):
            probe.append(list(choices))
            return choices[0]

    sp.sample(Record())
    out = []
    for combo in itertools.islice(itertools.product(*probe), 0, None, 97):
        spec = deployment_spec(sp, sp.sample(Fixed(combo)), Deployment(resolution=32), "x")
        out.append(count_analytic(spec).macs)
    return sorted(out)


@pytest.mark.parametrize("constraint", ["hard", "soft"])
def test_the_hard_constraint_lands_at_70_percent_of_t_or_more(constraint, tiny_config,
                                                              tiny_space_file, curve_evaluator,
                                                              tmp_path):
    macs = _macs_of(tiny_space_file)
    target = macs[int(0.8 * len(macs))]  # a target the space can fill
    smallest = macs[0]

    def small_is_better(spec):  # on a short proxy small nets often train best
        from space import count_analytic

        return 0.9 - 0.2 * count_analytic(spec.with_task(resolution=32)).macs / macs[-1]

    cfg = tiny_config(trials=40, target_macs=target, constraint=constraint, sampler="tpe")
    run_search(cfg, out=tmp_path / "r", evaluate=curve_evaluator(level=small_is_better))
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    frac = summary["macs_vs_target"]["fraction"]
    assert summary["best"]["macs"] == summary["macs_vs_target"]["macs"]
    if constraint == "hard":
        assert 0.7 <= frac <= 1.0, (frac, smallest / target)
        assert "hard constraint" in summary["macs_vs_target"]["why"]
    else:  # soft: the same evaluator makes the search land well below T, and says why
        assert frac < 0.7 and math.isfinite(frac)
        assert "land well below T" in summary["macs_vs_target"]["why"]
