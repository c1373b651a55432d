"""Run folders across versions and commands: what the engine redesign promised to keep.

- Folders written by 0.1 (tests/fixtures/legacy-0.1, made with 06904b8 on synthetic data: a
  3-trial stage-1 search and a 3-point stage-2 grid on mobilenet-v1) still open with
  ``nas show``, ``nas results``, ``nas dashboard`` and continue with ``--resume``.
- So do folders written by 0.2 (tests/fixtures/legacy-0.2, made with 0727308, the last commit
  before the stable proxy recipe: the same runs with 2 finalists x 2 seeds), and they resume
  with the recipe they were started with, not today's default.
- So do folders written by the stable recipe before the classifier's zero init
  (tests/fixtures/legacy-stable, made with 9d3f0a5: the same runs), and they resume with
  ``zero_init_head`` off, as they started.
- All resume with the ladder's keep fraction they were started with (the best third), though
  a new stage-1 run keeps the best half (``--reduction-factor``).
- ``--resume`` without ``--out`` takes the newest run of its own stage, and says which.
- A run folder is held by one process: a second search on it is refused.
- A resumed run refuses a flag that would change it, naming the flag and both values.
- "No trial finished" is the same exit code in both stages.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from gridsearch.cli import main as gridsearch_main
from nas.cli import main as nas_main
from results.rundir import read_config, run_lock, stage_of

LEGACY = Path(__file__).parent / "fixtures" / "legacy-0.1"
LEGACY_02 = Path(__file__).parent / "fixtures" / "legacy-0.2"
LEGACY_STABLE = Path(__file__).parent / "fixtures" / "legacy-stable"
TINY = ["--dataset", "synthetic", "--train-samples", "64", "--val-samples", "32", "--epochs", "1",
        "--proxy-resolution", "16", "--threads", "1"]


@pytest.fixture
def legacy(tmp_path):
    """A copy of the 0.1 run folders (tests never write into the fixture itself)."""
    dst = tmp_path / "legacy"
    shutil.copytree(LEGACY, dst)
    return dst


@pytest.fixture(params=[LEGACY, LEGACY_02, LEGACY_STABLE], ids=["0.1", "0.2", "stable"])
def any_legacy(tmp_path, request):
    """A copy of the run folders of each earlier version."""
    dst = tmp_path / "legacy"
    shutil.copytree(request.param, dst)
    return dst


@pytest.fixture
def legacy_02(tmp_path):
    dst = tmp_path / "legacy-0.2"
    shutil.copytree(LEGACY_02, dst)
    return dst


def test_legacy_configs_have_no_stage_and_are_told_by_their_keys(legacy):
    s1, s2 = read_config(legacy / "s1"), read_config(legacy / "s2")
    assert "stage" not in s1 and s2["stage"] == 2
    assert (stage_of(s1), stage_of(s2)) == ("1", "2")


@pytest.mark.parametrize("run", ["s1", "s2"])
def test_legacy_folder_opens_with_results_and_dashboard(any_legacy, run, capsys):
    assert nas_main(["results", str(any_legacy / run), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["stage"] == int(run[1]) and out["source"] == "study"
    assert nas_main(["dashboard", str(any_legacy / run)]) == 0
    html = (any_legacy / run / "dashboard.html").read_text()
    assert "render-report" in html


@pytest.fixture
def recipes_trained(monkeypatch):
    """The proxy configs every training of a run used (the real evaluator still trains)."""
    import gridsearch.search
    import nas.search

    seen = []
    for module in (nas.search, gridsearch.search):
        real = module.evaluate_proxy

        def spy(spec, proxy, *args, _real=real, **kwargs):
            seen.append(proxy)
            return _real(spec, proxy, *args, **kwargs)

        monkeypatch.setattr(module, "evaluate_proxy", spy)
    return seen


@pytest.mark.parametrize("run", ["s1-open", "s2"])
def test_a_02_folder_resumes_with_the_recipe_it_started_with(legacy_02, run, recipes_trained):
    """Runs from before the stable recipe keep theirs: no zero-init, SGD at 0.02, whatever
    today's defaults are; config.json keeps saying so. (s1-open: a 2-trial search without
    finalists, so a resume can extend it; s2 trains the single-dimension comparison.)"""
    before = read_config(legacy_02 / run)
    assert "zero_init_last" not in before["proxy"]
    if run == "s1-open":
        # 7: at least one architecture the run has not trained yet
        assert nas_main(["search", "--resume", "--out", str(legacy_02 / run),
                         "--trials", "7"]) == 0
    else:
        assert gridsearch_main(["--resume", "--out", str(legacy_02 / run), "--compare-single",
                                "--compare-seeds", "1"]) == 0
    assert recipes_trained, "the resumed run trained nothing"
    for proxy in recipes_trained:
        assert proxy.zero_init_last is False
        assert (proxy.train.optimizer, proxy.train.lr) == ("sgd", 0.02)
        assert proxy.train.label_smoothing == 0.0
    after = read_config(legacy_02 / run)
    assert after["proxy"]["zero_init_last"] is False
    assert {k: v for k, v in after["proxy"]["train"].items() if k != "threads"} == \
        {k: v for k, v in before["proxy"]["train"].items() if k != "threads"}


@pytest.mark.parametrize("run", ["s1-open", "s2"])
def test_a_folder_from_before_the_zero_head_resumes_without_it(tmp_path, run, recipes_trained):
    """A stable-recipe run started before ``zero_init_head`` existed keeps its classifier init
    on --resume, whatever today's default; the rest of its recipe too."""
    folder = tmp_path / run
    shutil.copytree(LEGACY_STABLE / run, folder)
    before = read_config(folder)
    assert "zero_init_head" not in before["proxy"] and before["proxy"]["zero_init_last"] is True
    if run == "s1-open":
        assert nas_main(["search", "--resume", "--out", str(folder), "--trials", "7"]) == 0
    else:
        assert gridsearch_main(["--resume", "--out", str(folder), "--compare-single",
                                "--compare-seeds", "1"]) == 0
    assert recipes_trained, "the resumed run trained nothing"
    for proxy in recipes_trained:
        assert proxy.zero_init_head is False and proxy.zero_init_last is True
        assert (proxy.train.lr, proxy.train.grad_clip) == (0.05, 2.0)
        # the task it started with, not today's (stage 1's default moved to 12,000 at 24 px;
        # a stage-2 point trains at its own multiple of the base resolution)
        assert proxy.train_samples == before["proxy"]["train_samples"]
        if run == "s1-open":
            assert proxy.resolution == before["proxy"]["resolution"]
    assert read_config(folder)["proxy"]["zero_init_head"] is False


@pytest.fixture
def ladders_used(monkeypatch):
    """The ladders the driver builds its pruner from (the real ones)."""
    import nas.engine.driver

    seen = []
    real = nas.engine.driver.ladder_of
    monkeypatch.setattr(nas.engine.driver, "ladder_of",
                        lambda stage: seen.append(real(stage)) or seen[-1])
    return seen


@pytest.mark.parametrize("fixture, run", [(LEGACY, "s1"), (LEGACY_02, "s1-open"),
                                          (LEGACY_STABLE, "s1-open")],
                         ids=["0.1", "0.2", "stable"])
def test_an_old_stage1_folder_resumes_keeping_the_best_third(tmp_path, fixture, run,
                                                             ladders_used):
    """Its config.json has no reduction_factor: it was started keeping a third, and keeps
    it, whatever today's default (2); config.json then says so."""
    folder = tmp_path / run
    shutil.copytree(fixture / run, folder)
    assert "reduction_factor" not in read_config(folder)
    n = len(pd.read_csv(folder / "trials.csv"))
    assert nas_main(["search", "--resume", "--out", str(folder), "--trials", str(n + 1)]) == 0
    assert ladders_used and {ladder.reduction_factor for ladder in ladders_used} == {3}
    assert read_config(folder)["reduction_factor"] == 3
    assert len(pd.read_csv(folder / "trials.csv")) == n + 1


def test_a_new_stage1_run_keeps_the_best_half(tmp_path, ladders_used):
    out = tmp_path / "new"
    assert nas_main(["search", "--target-flops", "400M", "--trials", "1", "--finalists", "0",
                     "--out", str(out), *TINY, "--epochs", "2"]) == 0
    assert ladders_used[-1].rungs == (1, 2) and ladders_used[-1].reduction_factor == 2
    assert read_config(out)["reduction_factor"] == 2


@pytest.mark.parametrize("fixture", [LEGACY, LEGACY_02, LEGACY_STABLE],
                         ids=["0.1", "0.2", "stable"])
def test_an_old_stage2_folder_keeps_the_best_third(tmp_path, fixture):
    from gridsearch.config import GridSearchConfig

    folder = tmp_path / "s2"
    shutil.copytree(fixture / "s2", folder)
    assert "reduction_factor" not in read_config(folder)
    assert GridSearchConfig.from_dict(read_config(folder)).reduction_factor == 3
    assert gridsearch_main(["--resume", "--out", str(folder), "--select", "reward"]) == 0
    assert read_config(folder)["reduction_factor"] == 3


def test_legacy_best_spec_opens_with_show(legacy, capsys):
    assert nas_main(["show", str(legacy / "s1" / "best.json"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    best = json.loads((legacy / "s1" / "best.json").read_text())
    # counted today as the 0.1 search counted it (analytic, equal to fvcore)
    assert info["macs"] == best["meta"]["macs"] == best["meta"]["macs_fvcore"] == 225_576_144
    assert info["arch_hash"] == best["meta"]["arch_hash"]


def test_legacy_stage1_resumes_and_keeps_its_trials(legacy, capsys):
    before = pd.read_csv(legacy / "s1" / "trials.csv")
    assert nas_main(["search", "--resume", "--out", str(legacy / "s1"), "--trials", "4"]) == 0
    after = pd.read_csv(legacy / "s1" / "trials.csv")
    assert len(before) == 3 and len(after) == 4
    pd.testing.assert_series_equal(after.accuracy.iloc[:3], before.accuracy, check_names=False)
    assert read_config(legacy / "s1")["stage"] == 1  # rewritten in today's format


def test_legacy_stage2_resumes_without_retraining(legacy, capsys):
    before = pd.read_csv(legacy / "s2" / "grid.csv")
    coef = json.loads((legacy / "s2" / "coefficients.json").read_text())
    assert gridsearch_main(["--resume", "--out", str(legacy / "s2"), "--select", "reward"]) == 0
    after = pd.read_csv(legacy / "s2" / "grid.csv")
    assert len(after) == len(before) == 3  # every point had finished: nothing trained again
    new = json.loads((legacy / "s2" / "coefficients.json").read_text())
    assert new["selected_by"] == "reward" and coef["selected_by"] == "accuracy"


def test_resume_without_out_takes_the_newest_run_of_its_own_stage(tmp_path, monkeypatch,
                                                                  capsys, caplog):
    monkeypatch.chdir(tmp_path)
    runs = tmp_path / "runs"
    shutil.copytree(LEGACY / "s1", runs / "a-stage1")
    shutil.copytree(LEGACY / "s2", runs / "b-stage2")  # newer, and of the other stage
    (runs / "b-stage2" / "config.json").touch()
    with caplog.at_level("INFO"):
        assert nas_main(["search", "--resume", "--trials", "4"]) == 0
    assert "resuming the newest nas search run: runs/a-stage1" in caplog.text
    assert len(pd.read_csv(runs / "a-stage1" / "trials.csv")) == 4
    assert len(pd.read_csv(runs / "b-stage2" / "grid.csv")) == 3


def test_resume_of_a_folder_of_the_other_stage_is_one_line(legacy, capsys):
    assert nas_main(["search", "--resume", "--out", str(legacy / "s2")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds a gridsearch run, not a nas search run" in err[0]
    assert gridsearch_main(["--resume", "--out", str(legacy / "s1")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds a nas search run, not a gridsearch run" in err[0]


@pytest.mark.parametrize("flag, value, said", [
    ("--deploy-resolution", "192", "--deploy-resolution 192 differs from the resumed run's 224"),
    ("--enqueue", "mnasnet-a1", "--enqueue 'mnasnet-a1' differs from the resumed run's ()"),
    ("--epochs", "3", "--epochs 3 differs from the resumed run's 1"),
    ("--target-flops", "300M", "--target-flops '300M' differs from the resumed run's 400000000"),
])
def test_a_flag_that_would_change_a_resumed_run_is_refused(legacy, capsys, flag, value, said):
    before = (legacy / "s1" / "study.journal").read_bytes()
    assert nas_main(["search", "--resume", "--out", str(legacy / "s1"), flag, value]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and said in err[0], err
    assert (legacy / "s1" / "study.journal").read_bytes() == before  # nothing changed


def test_a_run_folder_in_use_is_refused(legacy, capsys):
    with run_lock(legacy / "s1", command="test"):
        code = nas_main(["search", "--resume", "--out", str(legacy / "s1"), "--trials", "4"])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and "is in use by another process" in err[0]
        code = gridsearch_main(["--resume", "--out", str(legacy / "s1" / ".."  / "s2")])
        assert code == 0  # another folder is free
    assert len(pd.read_csv(legacy / "s1" / "trials.csv")) == 3


def test_no_trial_finished_is_the_same_exit_code_in_both_stages(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("this evaluator always fails")

    monkeypatch.setattr("nas.search.evaluate_proxy", broken)
    monkeypatch.setattr("gridsearch.search.evaluate_proxy", broken)
    s1 = nas_main(["search", "--target-flops", "400M", "--trials", "1", "--out",
                   str(tmp_path / "a"), *TINY])
    s2 = gridsearch_main(["--base", "mobilenet-v1", "--step", "0.25", "--tolerance", "0.15",
                          "--alpha-range", "1,1.25", "--out", str(tmp_path / "b"), *TINY])
    assert s1 == s2 == 1
    assert set(pd.read_csv(tmp_path / "a" / "trials.csv").state) == {"FAIL"}
    assert set(pd.read_csv(tmp_path / "b" / "grid.csv").state) == {"FAIL"}
