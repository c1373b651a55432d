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
    for bad in (0, -1, True, 2.0):
        with pytest.raises(ValueError, match="--finalist-epochs 8"):
            FinalistPlan(2, 3, bad)
    with pytest.raises(ValueError, match="but --finalists 0 trains none"):
        FinalistPlan(0, 3, 8)


def test_the_finalists_task_is_the_search_s_unless_epochs_are_given():
    from nas.proxy import ProxyConfig

    proxy = ProxyConfig()
    assert FinalistPlan(2, 3).task(proxy) is proxy
    assert FinalistPlan(2, 3, proxy.train.epochs).task(proxy) is proxy
    longer = FinalistPlan(2, 3, 8).task(proxy)
    assert longer.train.epochs == 8 and longer.train.lr == proxy.train.lr
    assert longer.train_samples == proxy.train_samples and longer.resolution == proxy.resolution


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


def test_finalist_epochs_train_the_finalists_longer_and_the_search_as_before(
        tiny_config, curve_evaluator, tmp_path, capsys):
    from nas.cli import main
    from nas.search import SearchConfig

    class Epochs:  # records how many epochs each training was given, by training seed
        def __init__(self):
            self.inner, self.epochs = curve_evaluator(noise=0.05), {}

        def __call__(self, spec, proxy, *, seed, **kw):
            self.epochs[seed] = proxy.train.epochs
            return self.inner(spec, proxy, seed=seed, **kw)

    out, ev = tmp_path / "r", Epochs()
    cfg = tiny_config(trials=4, epochs=1, finalists=2, finalist_seeds=2, finalist_epochs=3)
    run_search(cfg, out=out, evaluate=ev)
    trials = res_study(out).trials
    fin = [t for t in trials if t.user_attrs.get("finalist")]
    search = [t for t in trials if not t.user_attrs.get("finalist")]
    assert len(fin) == 4 and all(t.state.name == "COMPLETE" for t in fin)
    assert {ev.epochs[t.user_attrs["seed"]] for t in search} == {1}
    assert {ev.epochs[t.user_attrs["seed"]] for t in fin} == {3}
    assert all(len(t.user_attrs["val_accuracy_per_epoch"]) == 3 for t in fin)
    saved = json.loads((out / "config.json").read_text())
    assert saved["finalist_epochs"] == 3
    assert SearchConfig.from_dict(saved).finalist_plan().epochs == 3
    # a run folder from before the setting trains its finalists as its search did
    saved.pop("finalist_epochs")
    assert SearchConfig.from_dict(saved).finalist_plan().epochs is None
    # a resumed run keeps its own: another value is one line and exit 2
    assert main(["search", "--resume", "--out", str(out), "--finalist-epochs", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--finalist-epochs 2 differs from the resumed run's 3" in err[0]


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
    assert len(finished) == 4 and fin[fin.state == "INTERRUPTED"].fail_reason.tolist() == [
        "interrupted"]
    assert not (df.state == "FAIL").any()
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


# ------------------------------------------------------- is the choice within the seeds' noise?
def test_noise_verdict_within_noise_and_clear_lead_against_worked_numbers():
    from nas.engine.finalists import noise_verdict, verdict_text

    # trial 1: (0.70, 0.74, 0.72), mean 0.72, std 0.02; trial 0: (0.80, 0.60, 0.70), mean
    # 0.70, std 0.10. Lead 0.02, spread sqrt(0.02^2 + 0.10^2) = sqrt(0.0104) = 0.10198
    v = noise_verdict({0: [0.80, 0.60, 0.70], 1: [0.70, 0.74, 0.72]}, 1)
    assert (v.chosen, v.runner_up, v.measure) == (1, 0, "reward")
    assert v.lead == pytest.approx(0.02) and v.spread == pytest.approx(math.sqrt(0.0104))
    assert v.within_noise is True
    text = verdict_text(v, chosen="B0 (trial 1)")
    assert text.startswith("B0 (trial 1) and trial 0 are within noise (0.02 apart in mean "
                           "reward, combined seed std 0.1)")
    # trial 2: (0.90, 0.92, 0.94), mean 0.92, std 0.02, against trial 1 (mean 0.72, std 0.02):
    # lead 0.20 > sqrt(0.0008) = 0.0283; trial 0 (mean 0.70) is not the runner-up
    v = noise_verdict({0: [0.80, 0.60, 0.70], 1: [0.70, 0.74, 0.72], 2: [0.90, 0.92, 0.94]}, 2)
    assert v.runner_up == 1 and v.lead == pytest.approx(0.20)
    assert v.spread == pytest.approx(math.sqrt(0.0008)) and v.within_noise is False
    assert verdict_text(v, chosen="B0 (trial 2)") == (
        "B0 (trial 2) leads trial 1 by 0.2 in mean reward, more than their combined seed std "
        "0.028")
    # a tie with no spread at all is within noise, not a clear lead of 0
    assert noise_verdict({3: [0.5, 0.5], 4: [0.5, 0.5]}, 3).within_noise is True
    # the runner-up of two equal means is the earlier trial
    assert noise_verdict({9: [0.5, 0.6], 7: [0.4, 0.5], 5: [0.4, 0.5]}, 9).runner_up == 5


def test_noise_verdict_cannot_judge_one_seed_or_one_finalist():
    from nas.engine.finalists import noise_verdict, verdict_text

    v = noise_verdict({0: [0.81], 1: [0.75]}, 0)
    assert (v.runner_up, v.lead, v.spread, v.within_noise) == (1, pytest.approx(0.06), None,
                                                               None)
    assert "cannot be judged" in verdict_text(v, chosen="B0 (trial 0)")
    assert "--finalist-seeds" in verdict_text(v, chosen="B0 (trial 0)")
    v = noise_verdict({4: [0.8, 0.7, 0.75]}, 4)
    assert (v.runner_up, v.lead, v.spread, v.within_noise) == (None, None, None, None)
    assert verdict_text(v, chosen="B0 (trial 4)") == (
        "B0 (trial 4) is the only complete finalist: there is no runner-up to compare it with")
    with pytest.raises(KeyError, match="trial 3"):
        noise_verdict({4: [0.8]}, 3)


def test_finalist_verdict_reads_the_table_and_skips_incomplete_finalists():
    from nas.engine.finalists import finalist_verdict

    trials = [_trial(0, 0.81, key="a"), _trial(1, 0.75, key="b"), _trial(2, 0.9, key="c")]
    n = 3
    for src, key, rewards in ((0, "a", (0.80, 0.60, 0.70)), (1, "b", (0.70, 0.74, 0.72)),
                              (2, "c", (0.99, None, None))):  # trial 2: one seed of three
        for i, r in enumerate(rewards):
            state = TrialState.COMPLETE if r is not None else TrialState.RUNNING
            trials.append(_trial(n, r, key=f"{key}#{i}", state=state, **{
                FINALIST: True, FINALIST_OF: src, FINALIST_SEED: i}))
            n += 1
    rows = finalist_table(trials, seeds=3)
    v = finalist_verdict(rows, choose(rows))
    assert (v.chosen, v.runner_up) == (1, 0) and v.lead == pytest.approx(0.02)
    assert v.within_noise is True


def _offset_levels(offsets, base=None):
    """A CurveEvaluator level: each architecture's own level (``base``, default the fixture's),
    its first training (the search's) at that level and its finalist seeds at level + offsets
    in turn, so a finalist's mean is its level and its std the offsets' std."""
    import collections

    seen: collections.Counter = collections.Counter()

    def level(spec):
        h = spec.arch_hash()
        i, seen[h] = seen[h], seen[h] + 1
        lv = base(spec) if base else 0.3 + (int(h, 16) % 600) / 1000
        return lv + (offsets[(i - 1) % len(offsets)] if i else 0.0)

    return level


def test_the_lead_splits_into_accuracy_and_the_cost_term_against_worked_numbers():
    from nas.engine import FinalistRow
    from nas.stage1.outputs import lead_split, split_text

    # B0: accuracy 0.80 at factor 1.05 (reward 0.84); runner-up: 0.82 at factor 1.00 (0.82)
    rows = [FinalistRow(trial=3, key=None, search_reward=None, mean=0.84, accuracy_mean=0.80),
            FinalistRow(trial=7, key=None, search_reward=None, mean=0.82, accuracy_mean=0.82)]
    s = lead_split(rows, 3, 7)
    assert s["accuracy"] == pytest.approx((1.05 + 1.00) / 2 * -0.02)  # -0.0205
    assert s["cost"] == pytest.approx((0.80 + 0.82) / 2 * 0.05)  # +0.0405
    assert s["accuracy"] + s["cost"] == pytest.approx(0.02)  # the lead, exactly
    assert split_text(s) == ("Of the lead, accuracy gives -0.0205 (0.8000 against 0.8200) and "
                             "the MACs term +0.0405: B0 wins on its MACs, with the lower accuracy")
    # the other way round: more accurate, and bigger
    rows = [FinalistRow(trial=3, key=None, search_reward=None, mean=0.86, accuracy_mean=0.90),
            FinalistRow(trial=7, key=None, search_reward=None, mean=0.85, accuracy_mean=0.85)]
    assert split_text(lead_split(rows, 3, 7), "latency").endswith(
        ": B0 wins on accuracy, with the higher latency")
    rows[0] = FinalistRow(trial=3, key=None, search_reward=None, mean=0.90, accuracy_mean=0.86)
    assert split_text(lead_split(rows, 3, 7)).endswith(": both favour B0")
    assert lead_split(rows, 3, None) is None  # no runner-up
    rows[1] = FinalistRow(trial=7, key=None, search_reward=None, mean=0.0, accuracy_mean=0.0)
    assert lead_split(rows, 3, 7) is None  # no accuracy to divide by


@pytest.mark.parametrize("case", ["within", "clear", "one-seed", "one-finalist"])
def test_summary_cli_and_dashboard_say_whether_b0_is_within_noise(case, tiny_config,
                                                                  curve_evaluator, tmp_path,
                                                                  capsys):
    from nas.commands.search import _report
    from nas.engine.finalists import noise_verdict
    from results.dashboard import write_dashboard
    from results.html import esc
    from results.stage1_dashboard import stage1_info
    from results.store import load_run

    out = tmp_path / "r"
    k, seeds, level = {
        # every architecture at 0.5, its seeds at 0.5 +- 0.3: the reward's MACs factor
        # (within ~1.2x) moves the means far less than the seeds' spread (~0.4)
        "within": (2, 3, _offset_levels((0.3, -0.3, 0.0), base=lambda spec: 0.5)),
        # levels 0.001 apart or more, seeds +- 0.0001 around them
        "clear": (2, 3, _offset_levels((1e-4, -1e-4, 0.0))),
        "one-seed": (2, 1, _offset_levels((0.0,))),
        "one-finalist": (1, 3, _offset_levels((0.01, -0.01, 0.0))),
    }[case]
    res = run_search(tiny_config(trials=6, finalists=k, finalist_seeds=seeds), out=out,
                     evaluate=curve_evaluator(level=level))
    summary = json.loads((out / "summary.json").read_text())
    verdict = summary["finalists"]["verdict"]
    df = pd.read_csv(out / "trials.csv")
    fin = df[df.finalist & (df.state == "COMPLETE")]
    values = {int(s): list(g.sort_values("finalist_seed").reward)
              for s, g in fin.groupby("finalist_of")}
    b0 = summary["best"]["trial"]
    expected = noise_verdict(values, b0)  # the rule, on the table the run wrote
    assert {k: verdict[k] for k in ("chosen", "runner_up", "within_noise")} == {
        "chosen": expected.chosen, "runner_up": expected.runner_up,
        "within_noise": expected.within_noise}
    assert verdict["chosen"] == b0 and verdict["text"].startswith(f"B0 (trial {b0})")
    want = {"within": True, "clear": False, "one-seed": None, "one-finalist": None}[case]
    assert verdict["within_noise"] is want
    words = {"within": "are within noise", "clear": "more than their combined seed std",
             "one-seed": "cannot be judged", "one-finalist": "no runner-up"}[case]
    assert words in verdict["text"]
    if case in ("within", "clear"):
        assert verdict["lead"] == pytest.approx(expected.lead)
        assert verdict["spread"] == pytest.approx(expected.spread)
    if case != "one-finalist":
        # the lead splits exactly into accuracy and the MACs term, and the words say so
        split = verdict["lead_split"]
        assert split["accuracy"] + split["cost"] == pytest.approx(verdict["lead"])
        chosen, other = (fin[fin.finalist_of == n] for n in (b0, expected.runner_up))
        assert split["accuracy_chosen"] == pytest.approx(chosen.accuracy.mean())
        assert split["accuracy_runner_up"] == pytest.approx(other.accuracy.mean())
        assert ". Of the lead, accuracy gives " in verdict["text"]
        assert " and the MACs term " in verdict["text"]
    else:
        assert verdict["lead_split"] is None and "Of the lead" not in verdict["text"]
    # the CLI's last lines say it in the same words
    capsys.readouterr()
    _report(res)
    assert f"choice: {verdict['text']}" in capsys.readouterr().out.splitlines()
    # and the dashboard reads it from summary.json, never recomputing it
    info = stage1_info(load_run(out))
    assert info.verdict.text == verdict["text"] and info.verdict.within_noise is want
    assert esc(verdict["text"]) in write_dashboard(out).read_text()


# ------------------------------------------------------------- the printed numbers say what
def test_the_last_line_labels_the_finalists_mean_apart_from_the_search_score(
        tiny_config, curve_evaluator, tmp_path, capsys):
    from nas.commands.search import _report

    out = tmp_path / "r"
    res = run_search(tiny_config(trials=6, finalists=2, finalist_seeds=3), out=out,
                     evaluate=curve_evaluator(noise=0.05))
    _report(res)
    lines = capsys.readouterr().out.splitlines()
    df = pd.read_csv(out / "trials.csv").set_index("number")
    b0 = load_spec(out / "best.json").meta
    row = df.loc[b0["trial"]]  # B0's own row: the search's single training
    fin = df[df.finalist & (df.finalist_of == b0["trial"])]
    assert row.reward != pytest.approx(fin.reward.mean())  # two different numbers...
    line = next(x for x in lines if x.startswith("B0 = "))
    assert line.startswith(  # ...each labelled
        f"B0 = trial {b0['trial']}: mean reward {fin.reward.mean():.4f} over 3 seeds (accuracy "
        f"{fin.accuracy.mean():.4f}); its search score: reward {row.reward:.4f}, accuracy "
        f"{row.accuracy:.4f}; MACs ")
    assert not any(x.startswith("best:") for x in lines)


def test_the_last_line_without_finalists_says_it_is_one_training(tiny_config, curve_evaluator,
                                                                  tmp_path, capsys):
    from nas.commands.search import _report

    out = tmp_path / "r"
    _report(run_search(tiny_config(trials=3, finalists=0), out=out, evaluate=curve_evaluator()))
    df = pd.read_csv(out / "trials.csv").set_index("number")
    b0 = load_spec(out / "best.json").meta["trial"]
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("B0 = "))
    assert line.startswith(f"B0 = trial {b0}: reward {df.reward[b0]:.4f}, accuracy "
                           f"{df.accuracy[b0]:.4f} (the search's one training; no finalists)")


def test_a_finalist_that_is_training_reads_running_in_trials_csv(tiny_config, curve_evaluator,
                                                                 tmp_path):
    """trials.csv and summary.json are rewritten when a trial starts, so the one training
    (a finalist enqueued as WAITING, too) reads RUNNING there, not WAITING."""
    out = tmp_path / "r"
    inner = curve_evaluator(noise=0.05)
    seen = []

    def evaluate(spec, proxy, **kw):
        df = pd.read_csv(out / "trials.csv")
        states = json.loads((out / "summary.json").read_text())["states"]
        running = df[df.state == "RUNNING"]
        seen.append((len(running), bool(running.finalist.all()), states.get("RUNNING"),
                     int((df.finalist & (df.state == "WAITING")).sum())))
        return inner(spec, proxy, **kw)

    run_search(tiny_config(trials=4, finalists=2, finalist_seeds=2), out=out,
               evaluate=evaluate)
    assert seen and all(n == 1 and counted == 1 for n, _, counted, _ in seen)
    finalists = [w for _, is_finalist, _, w in seen if is_finalist]
    assert finalists == [3, 2, 1, 0]  # 4 finalist runs, each RUNNING while it trains


def test_fewer_distinct_networks_than_finalists_says_how_many_and_why(tiny_config,
                                                                      curve_evaluator,
                                                                      tmp_path, caplog):
    import logging

    inner = curve_evaluator(noise=0.05)
    calls = []

    def evaluate(spec, proxy, **kw):  # the search's 2nd training fails
        calls.append(spec.arch_hash())
        if len(calls) == 2:
            raise RuntimeError("out of memory (simulated)")
        return inner(spec, proxy, **kw)

    with caplog.at_level(logging.INFO, logger="nas.engine.driver"):
        run_search(tiny_config(trials=3, finalists=4, finalist_seeds=2), out=tmp_path / "r",
                   evaluate=evaluate)
    df = pd.read_csv(tmp_path / "r" / "trials.csv")
    search = df[~df.finalist]
    assert list(search.state) == ["COMPLETE", "FAIL", "COMPLETE"]
    assert search[search.state == "COMPLETE"].arch_hash.nunique() == 2  # so 2 finalists
    assert df.finalist.sum() == 2 * 2
    assert ("finalists: 2 of the 4 asked for (--finalists 4), each with 2 seed(s): the search "
            "completed 2 trial(s) holding 2 distinct network(s) (not counted: 1 failed or "
            "interrupted)") in caplog.text
    assert "the top 2 distinct trials x 2 seed(s)" in caplog.text


def test_shortfall_counts_repeats_and_pruned_trials():
    from nas.engine.finalists import shortfall

    trials = [_trial(0, 0.8, key="a"), _trial(1, 0.8, key="a"),
              _trial(2, 0.9, key="b", state=TrialState.PRUNED),
              _trial(3, 0.8, key="a#0", **{FINALIST: True, FINALIST_OF: 0, FINALIST_SEED: 0})]
    assert shortfall(trials, FinalistPlan(3, 1)) == (
        "finalists: 1 of the 3 asked for (--finalists 3), each with 1 seed(s): the search "
        "completed 2 trial(s) holding 1 distinct network(s) (not counted: 1 pruned, 1 "
        "repeat(s) of a network already counted)")
    assert shortfall(trials, FinalistPlan(1, 1)) is None
    assert shortfall(trials, FinalistPlan(0)) is None


def test_the_logs_best_reward_follows_the_finalists_once_they_finish(tiny_config,
                                                                     curve_evaluator,
                                                                     tmp_path, caplog):
    import logging
    import re

    out = tmp_path / "r"
    with caplog.at_level(logging.INFO, logger="nas.engine.driver"):
        run_search(tiny_config(trials=4, finalists=2, finalist_seeds=2), out=out,
                   evaluate=curve_evaluator(noise=0.05))
    b0 = load_spec(out / "best.json").meta
    df = pd.read_csv(out / "trials.csv")
    search_best = df[~df.finalist].reward.max()
    assert f"{search_best:.4f}" != f"{b0['reward']:.4f}"  # the two differ in this run
    lines = [r.getMessage() for r in caplog.records if re.match(r"trial \d+", r.getMessage())]
    fin_lines = [ln for ln in lines if "(finalist: trial" in ln]
    assert len(fin_lines) == 4
    # before any finalist has both its seeds: the search's best; after: B0's mean
    assert f"best reward {search_best:.4f}" in fin_lines[0]
    assert fin_lines[-1].endswith(f"(best mean reward {b0['reward']:.4f} acc "
                                  f"{b0['accuracy']:.4f} (finalist trial {b0['trial']}, 2 "
                                  f"seeds))")


def test_retries_and_finalist_runs_carry_what_the_stage_declares_it_enqueues_with():
    """One rule (nas.engine.recorder.carried): a requeued trial and a finalist run are enqueued
    with the user attributes the stage declares (Stage.enqueue_attrs), and nothing else the
    trial recorded; the engine itself names no stage's attribute."""
    from nas.engine.finalists import FINALIST_ATTRS, enqueue_finalists
    from nas.engine.recorder import INTERRUPTED
    from nas.engine.session import requeue_interrupted

    study = optuna.create_study(direction="maximize")
    dist = {"x": FloatDistribution(0, 1)}
    payload = {"point": "p1", "replicate": 2}
    study.add_trial(create_trial(state=TrialState.COMPLETE, value=0.9, params={"x": 0.5},
                                 distributions=dist,
                                 user_attrs={**payload, "reward": 0.9, "train_key": "a",
                                             "macs": 10}))
    study.add_trial(create_trial(state=TrialState.FAIL, params={"x": 0.25}, distributions=dist,
                                 user_attrs={**payload, "fail_reason": INTERRUPTED,
                                             "macs": 20}))
    assert requeue_interrupted(study, carry=("point", "replicate", *FINALIST_ATTRS)) == 1
    assert enqueue_finalists(study, FinalistPlan(k=1, seeds=1), carry=("point",)) == 1
    retry, finalist = study.get_trials(deepcopy=False)[2:]
    assert retry.system_attrs["fixed_params"] == {"x": 0.25}  # a waiting trial's params
    assert retry.user_attrs == {"retry_of": 1, "point": "p1", "replicate": 2}
    assert finalist.system_attrs["fixed_params"] == {"x": 0.5}
    assert finalist.user_attrs == {"point": "p1", FINALIST: True, FINALIST_OF: 0,
                                   FINALIST_SEED: 0}


def test_both_stages_declare_what_they_enqueue_with_and_the_engine_names_none_of_it():
    import ast
    from pathlib import Path

    import nas.engine
    from gridsearch.grid import Point
    from gridsearch.plan import ENQUEUE_ATTRS, Job, job_attrs
    from gridsearch.search import Stage2
    from nas.search import Stage1

    assert Stage1.enqueue_attrs == ("enqueued",)
    assert Stage2.enqueue_attrs == ENQUEUE_ATTRS
    assert tuple(job_attrs(Job("depth", Point(1.2, 1.0, 1.0), 1))) == ENQUEUE_ATTRS
    names = set(Stage1.enqueue_attrs) | set(Stage2.enqueue_attrs)
    for path in Path(nas.engine.__file__).parent.glob("*.py"):
        strings = {n.value for n in ast.walk(ast.parse(path.read_text()))
                   if isinstance(n, ast.Constant) and isinstance(n.value, str)}
        assert not strings & names, f"{path.name} names {sorted(strings & names)}"


def test_one_chooser_by_mean_reward_or_mean_accuracy_else_the_search_best():
    """nas.engine.finalists.choose / chosen serve both stages: stage 1 by the mean reward,
    stage 2 by its --select (reward or accuracy); before a finalist is complete, the stage's
    best single training."""
    from nas.engine.finalists import chosen

    def run(n, src, i, reward, acc):
        return _trial(n, reward, key=f"{src}#{i}", accuracy=acc,
                      **{FINALIST: True, FINALIST_OF: src, FINALIST_SEED: i})

    search = [_trial(0, 0.9, key="a"), _trial(1, 0.8, key="b")]
    # trial 0: mean reward 0.70, mean accuracy 0.95; trial 1: mean reward 0.75, accuracy 0.85
    trials = [*search, run(2, 0, 0, 0.6, 0.9), run(3, 0, 1, 0.8, 1.0),
              run(4, 1, 0, 0.75, 0.8), run(5, 1, 1, 0.75, 0.9)]
    rows = finalist_table(trials, seeds=2)
    assert choose(rows).trial == 1 and choose(rows, by="accuracy").trial == 0
    with pytest.raises(ValueError, match="by='loss'"):
        choose(rows, by="loss")
    plan = FinalistPlan(k=2, seeds=2)
    best, row, table = chosen(trials, plan, search_best=search[1], by="accuracy")
    assert (best.number, row.trial, len(table)) == (0, 0, 2)
    # seed 1 of trial 1 not finished and trial 0 has one seed: none complete, the search best
    waiting = [*search, run(2, 0, 0, 0.6, 0.9), run(4, 1, 0, 0.75, 0.8)]
    assert chosen(waiting, plan, search_best=search[1])[:2] == (search[1], None)
    assert chosen(trials, FinalistPlan(), search_best=search[0]) == (search[0], None, [])


def test_stage_1_runs_its_phases_in_one_call_and_returns_its_result(tiny_config,
                                                                    curve_evaluator, tmp_path):
    """Stage 1 declares search then finalists; run_study returns the stage's result (B0 and
    summary.json's content) as a value, not through the stage."""
    from nas.engine import run_study
    from nas.search import SearchResult, Stage1

    stage = Stage1(tiny_config(trials=3, finalists=2, finalist_seeds=2))
    assert [p.name for p in stage.phases] == ["search", "finalists"]
    done = run_study(stage, out=tmp_path / "run", evaluate=curve_evaluator(noise=0.05))
    res = done.result
    assert isinstance(res, SearchResult) and res.run_dir == done.run_dir
    summary = json.loads((done.run_dir / "summary.json").read_text())
    assert res.summary == summary and res.best is not None
    assert summary["best"]["chosen_by"] == "finalists"
    assert not hasattr(stage, "best") and not hasattr(stage, "summary")
