"""The fidelity ladder (nas.engine.fidelity): the rung rule, the local pruner and the Ray
scheduler deciding alike, a ladder beating one rung at equal budget on a fake evaluator whose
true ranking is known, a real stage-1 search pruning at the rungs, and bad --rungs input."""
from __future__ import annotations

import random

import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState

from nas.engine import PRUNERS, Ladder, parse_rungs
from nas.engine.fidelity import FINALIST, parse_reduction_factor, rung_values


optuna.logging.set_verbosity(optuna.logging.WARNING)


# ----------------------------------------------------------------------------- the rule
def test_default_ladders_end_at_the_training_length():
    assert Ladder.of_epochs(1).rungs == (1,)
    assert Ladder.of_epochs(2).rungs == (1, 2)
    assert Ladder.of_epochs(9).rungs == (1, 3, 9)
    assert Ladder.of_epochs(10).rungs == (1, 3, 9, 10)
    assert Ladder((1, 3, 9)).compared == (1, 3)


def test_promotion_keeps_the_best_third_and_at_least_one():
    ladder = Ladder((1, 3), reduction_factor=3)
    assert ladder.promotes(0.5, [])  # the first at a rung goes on
    assert not ladder.promotes(0.4, [0.5])  # 2 values: keep 1
    assert ladder.promotes(0.6, [0.5])
    others = [0.1, 0.2, 0.3, 0.4, 0.5]  # 6 values with ours: keep the best 2
    assert ladder.promotes(0.45, others) and not ladder.promotes(0.35, others)
    assert not ladder.promotes(float("nan"), [])


def test_the_default_rungs_do_not_follow_the_keep_fraction():
    # rung spacing and keep fraction are two settings: keeping half still compares after
    # epochs 1, 3, 9 (not ASHA's 1, 2, 4, 8), and a 2-epoch proxy is (1, 2) either way
    for keep in (2, 3, 4):
        assert Ladder.of_epochs(9, reduction_factor=keep).rungs == (1, 3, 9)
        assert Ladder.of_epochs(2, reduction_factor=keep).rungs == (1, 2)
        assert Ladder.of_epochs(9, reduction_factor=keep).reduction_factor == keep
    assert Ladder.of_epochs(9, spacing=2).rungs == (1, 2, 4, 8, 9)
    with pytest.raises(ValueError, match="`spacing >= 2` must hold"):
        Ladder.of_epochs(9, spacing=1)


def test_promotion_keeps_the_best_half():
    ladder = Ladder((1, 2), reduction_factor=2)
    assert not ladder.promotes(0.4, [0.5])  # 2 values: keep 1
    others = [0.1, 0.2, 0.3]  # 4 values with ours: keep the best 2 (a third would keep 1)
    assert ladder.promotes(0.25, others) and not ladder.promotes(0.15, others)
    assert not Ladder((1, 2), reduction_factor=3).promotes(0.25, others)


@pytest.mark.parametrize("value", [1, 0, -2, 2.5, "3", True, None])
def test_a_reduction_factor_below_2_or_not_whole_is_refused(value):
    with pytest.raises(ValueError, match=r"`reduction_factor >= 2` must hold .* pass e\.g\. "
                                         r"--reduction-factor 2"):
        Ladder((1, 2), reduction_factor=value)


@pytest.mark.parametrize("text", ["1", "0", "-2", "abc", "2.5", ""])
def test_bad_reduction_factor_text_says_what_was_given(text):
    with pytest.raises(ValueError) as e:
        parse_reduction_factor(text)
    assert str(e.value).startswith("--reduction-factor must be a whole number >= 2")
    assert f"but got {text!r}; pass e.g. --reduction-factor 2" in str(e.value)
    assert parse_reduction_factor(" 4 ") == 4 and parse_reduction_factor(2) == 2


def test_stage1_keeps_half_by_default_and_an_old_config_a_third(tiny_config):
    from nas.stage1.config import SearchConfig

    fresh = tiny_config(pruner="asha")  # 2 epochs: rungs 1, 2
    ladder = fresh.ladder()
    assert (ladder.rungs, ladder.reduction_factor) == ((1, 2), 2)
    d = fresh.to_dict()
    assert d["reduction_factor"] == 2
    assert SearchConfig.from_dict(d) == fresh  # recorded, and read back
    old = {k: v for k, v in d.items() if k != "reduction_factor"}  # before the setting
    assert SearchConfig.from_dict(old).ladder() == Ladder((1, 2), reduction_factor=3)
    given = tiny_config(pruner="asha", epochs=9, reduction_factor=4)
    assert given.ladder() == Ladder((1, 3, 9), reduction_factor=4)
    assert tiny_config(epochs=4, rungs=(2, 4), reduction_factor=2).ladder() == Ladder((2, 4), 2)
    with pytest.raises(ValueError, match="`reduction_factor >= 2` must hold"):
        tiny_config(reduction_factor=1)


@pytest.mark.parametrize("text, why", [("3,1", "must increase"), ("1,1,2", "must increase"),
                                       ("0,2", ">= 1"), ("1,x", "comma-separated"),
                                       ("", ">= 1")])
def test_bad_rungs_say_the_rule(text, why):
    with pytest.raises(ValueError, match=why):
        parse_rungs(text)


def _study_with_rung_values(values, rung=1, finalist_values=()):
    study = optuna.create_study(direction="maximize")
    for v in values:
        t = study.ask()
        t.report(v, rung)
        study.tell(t, state=TrialState.PRUNED)
    for v in finalist_values:  # finalists are never part of the race
        t = study.ask()
        t.set_user_attr(FINALIST, True)
        t.report(v, rung)
        study.tell(t, v)
    return study


def test_finalists_do_not_count_at_a_rung():
    study = _study_with_rung_values([0.2, 0.3], finalist_values=[0.99, 0.98])
    assert sorted(rung_values(study.get_trials(), 1)) == [0.2, 0.3]


def test_the_local_pruner_and_the_ray_scheduler_decide_alike():
    pytest.importorskip("ray.tune")
    from ray.tune.schedulers import TrialScheduler

    ladder = Ladder((1, 3, 9))
    rng = random.Random(0)
    study = _study_with_rung_values([rng.random() for _ in range(8)])
    scheduler = PRUNERS.get("asha").ray(ladder, study)
    pruner = PRUNERS.get("asha").local(ladder)
    for value in [0.05, 0.5, 0.7, 0.8, 0.95]:
        t = study.ask()
        t.report(value, 1)
        frozen = study.get_trials(deepcopy=False)[-1]
        local_stops = pruner.prune(study, frozen)

        class _Trial:  # what Tune hands a scheduler
            config = {"number": frozen.number, FINALIST: False}

        ray_says = scheduler.on_trial_result(None, _Trial(), {"epoch": 1, "reward": value})
        assert (ray_says == TrialScheduler.STOP) == local_stops
        study.tell(t, state=TrialState.PRUNED)
    # the top rung and finalists are never stopped
    t = study.ask()

    class _Finalist:
        config = {"number": t.number, FINALIST: True}

    assert scheduler.on_trial_result(None, _Finalist(), {"epoch": 1, "reward": 0.0}) == \
        TrialScheduler.CONTINUE


# ------------------------------------------------------ a ladder beats one rung at equal budget
def _race(qualities, order, ladder, *, noise, seed, budget=None):
    """Train the candidates in ``order`` with the local pruner, as TrialRunner.run does: report
    a noisy reward after every epoch (noise shrinking with epochs, as longer training does)
    and stop when the pruner says so. Returns (chosen candidate, epochs spent)."""
    rng = random.Random(seed)
    pruner = PRUNERS.get("asha").local(ladder)
    study = optuna.create_study(direction="maximize", pruner=pruner)
    spent, finals = 0, {}
    for i in order:
        if budget is not None and spent + ladder.top > budget:
            break
        t = study.ask()
        for epoch in range(1, ladder.top + 1):
            spent += 1
            value = qualities[i] + rng.gauss(0, noise / epoch ** 0.5)
            t.report(value, epoch)
            if epoch < ladder.top and t.should_prune():
                study.tell(t, state=TrialState.PRUNED)
                break
        else:
            study.tell(t, value)
            finals[i] = value
    return max(finals, key=finals.get), spent


def test_the_ladder_finds_the_truly_best_more_often_than_one_rung_at_equal_budget():
    n, wins_ladder, wins_flat, reps = 27, 0, 0, 30
    for rep in range(reps):
        rng = random.Random(100 + rep)
        qualities = [rng.uniform(0.5, 0.9) for _ in range(n)]
        best = max(range(n), key=qualities.__getitem__)
        order = list(range(n))
        rng.shuffle(order)
        chosen, spent = _race(qualities, order, Ladder((1, 3, 9)), noise=0.04, seed=rep)
        wins_ladder += chosen == best
        # one rung: every trial trains all 9 epochs, as many as the same epochs allow
        flat, flat_spent = _race(qualities, order, Ladder((9,)), noise=0.04, seed=rep,
                                 budget=spent)
        assert flat_spent <= spent
        wins_flat += flat == best
    assert wins_ladder > wins_flat + reps // 5, (wins_ladder, wins_flat)


# ------------------------------------------------------------- a real stage-1 search at rungs
def test_a_search_on_the_ladder_stops_trials_only_at_its_rungs(tiny_config, curve_evaluator,
                                                              tmp_path):
    from nas.search import run_search

    cfg = tiny_config(trials=12, pruner="asha", epochs=4, rungs=(1, 3, 4))
    run_search(cfg, out=tmp_path / "r", evaluate=curve_evaluator())
    df = pd.read_csv(tmp_path / "r" / "trials.csv")
    study = optuna.load_study(
        study_name="stage1", storage=optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(tmp_path / "r" / "study.journal"))))
    pruned = [t for t in study.trials if t.state == TrialState.PRUNED]
    assert pruned, "12 trials on a ladder keeping the best half must stop some"
    assert {t.user_attrs["pruned_at_epoch"] for t in pruned} <= {1, 3}
    assert (df.state == "COMPLETE").sum() >= 1
    for t in study.trials:  # every trial reported at every epoch it trained
        assert sorted(t.intermediate_values) == list(range(1, len(
            t.user_attrs["val_accuracy_per_epoch"]) + 1))


def test_the_top_rung_must_be_the_training_length(tiny_config):
    with pytest.raises(ValueError, match="needs --epochs 9"):
        tiny_config(rungs=(1, 3, 9))  # the config's proxy trains 2 epochs


# ------------------------------------------------------------------------------- the CLI
def _one_line(capsys, argv):
    from nas.cli import main

    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    return code, err


@pytest.mark.parametrize("extra, says", [
    (["--rungs", "3,1"], "rungs must increase"),
    (["--rungs", "1,2", "--epochs", "3"], "needs --epochs 2"),
    (["--finalists", "-1"], "`finalists >= 0` must hold"),
    (["--finalist-seeds", "0"], "`finalist_seeds >= 1` must hold"),
    (["--finalist-epochs", "0"], "`finalist_epochs >= 1` must hold, but got finalist_epochs=0"),
    (["--finalist-epochs", "4", "--finalists", "0"],
     "--finalist-epochs 4 sets how long the finalists train, but --finalists 0 trains none"),
    *((["--reduction-factor", v], f"--reduction-factor must be a whole number >= 2 (keep the "
       f"best 1/N at each rung), but got {v!r}; pass e.g. --reduction-factor 2")
      for v in ("1", "0", "-2", "abc", "2.5")),
])
def test_bad_ladder_and_finalist_input_is_one_line_and_exit_2(extra, says, capsys, tmp_path):
    out = tmp_path / "never"
    code, err = _one_line(capsys, ["search", "--target-flops", "2M", "--dataset", "synthetic",
                                   "--out", str(out), *extra])
    assert code == 2 and len(err) == 1 and says in err[0], err
    assert not out.exists()  # nothing written


def test_the_reduction_factor_reaches_the_pruner_and_config_json(capsys, tmp_path, monkeypatch,
                                                                 tiny_space_file,
                                                                 curve_evaluator):
    import json

    import nas.engine.driver

    ladders = []
    real = nas.engine.driver.ladder_of
    monkeypatch.setattr(nas.engine.driver, "ladder_of",
                        lambda stage: ladders.append(real(stage)) or ladders[-1])
    monkeypatch.setattr("nas.search.evaluate_proxy", curve_evaluator())
    base = ["search", "--target-flops", "2M", "--space", tiny_space_file, "--dataset",
            "synthetic", "--trials", "2", "--epochs", "2", "--finalists", "0"]
    for extra, keep in (([], 2), (["--reduction-factor", "3"], 3)):
        out = tmp_path / f"r{keep}"
        code, _ = _one_line(capsys, [*base, *extra, "--out", str(out)])
        assert code == 0
        assert json.loads((out / "config.json").read_text())["reduction_factor"] == keep
        assert ladders[-1] == Ladder((1, 2), reduction_factor=keep)
    # a resumed run keeps its own: another value is refused, naming both
    code, err = _one_line(capsys, ["search", "--resume", "--out", str(tmp_path / "r3"),
                                   "--reduction-factor", "2"])
    assert code == 2 and len(err) == 1, err
    assert "--reduction-factor '2' differs from the resumed run's 3" in err[0]


def test_rungs_alone_set_the_training_length(capsys, tmp_path, monkeypatch, tiny_space_file,
                                             curve_evaluator):
    import json

    monkeypatch.setattr("nas.search.evaluate_proxy", curve_evaluator())
    out = tmp_path / "r"
    code, _ = _one_line(capsys, ["search", "--target-flops", "2M", "--space", tiny_space_file,
                                 "--dataset", "synthetic", "--trials", "2", "--rungs", "1,3",
                                 "--finalists", "0", "--out", str(out)])
    assert code == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["rungs"] == [1, 3] and cfg["proxy"]["train"]["epochs"] == 3
