"""The result store: load_run on run folders of both stages, from the study or the tables."""
from __future__ import annotations

import json
import logging

import optuna
import pandas as pd
import pytest

from nas.evaluate import EvalResult, ProxyConfig
from nas.search import SearchConfig, run_search
from space.deploy import Deployment
from nas.train import EpochResult, TrainConfig
from results.store import COLUMNS, GRID_COLUMNS, STAGE2_COLUMNS, load_run, ranking, top_trials

TINY_SPACE = """
name: tiny
stem: 8
head: 32
choices: {op: [dsconv, mbconv3], kernel: [3, 5], se_ratio: [0.0, 0.25], skip: [identity],
          filters: [1.0, 2.0], layers: [0, 1]}
stages:
  - [8, 1, 1]
  - [16, 1, 2]
"""


def fake_evaluate(spec, proxy, *, seed, on_epoch=None):
    """Accuracy from the architecture alone: no training."""
    acc = 0.5 + (int(spec.arch_hash(), 16) % 400) / 1000
    r = EpochResult(epoch=1, train_loss=1.0, val_accuracy=acc, lr=0.1, seconds=0.0,
                    images_per_sec=0.0)
    if on_epoch:
        on_epoch(r)
    return EvalResult(accuracy=acc, epochs=[r], seconds=0.0, images_per_sec=0.0, seed=seed)


@pytest.fixture(scope="module")
def real_stage1(tmp_path_factory):
    """A real `nas search` run folder (the driver, the study, the files), without training."""
    root = tmp_path_factory.mktemp("real")
    space = root / "tiny.yaml"
    space.write_text(TINY_SPACE)
    proxy = ProxyConfig(dataset="synthetic", resolution=16, train_samples=60, val_samples=30,
                        train=TrainConfig(epochs=1, threads=1))
    cfg = SearchConfig(target_macs=2_000_000, space=str(space), trials=5, timeout=None,
                       sampler="random", proxy=proxy, deploy=Deployment(resolution=32),
                       pruner="none", finalists=0)
    run_search(cfg, out=root / "run", evaluate=fake_evaluate)
    return root / "run"


def test_stage1_run_loads_from_the_study_and_agrees_with_trials_csv(real_stage1):
    run = load_run(real_stage1)
    assert (run.stage, run.source, run.directions) == (1, "study", ("maximize",))
    assert list(run.trials.columns[:len(COLUMNS)]) == COLUMNS
    written = pd.read_csv(real_stage1 / "trials.csv")
    assert list(run.trials["number"]) == list(written["number"]) == list(range(5))
    assert run.trials["reward"].tolist() == pytest.approx(written["reward"].tolist())
    assert run.trials["arch_hash"].tolist() == written["arch_hash"].tolist()
    assert {c for c in run.trials.columns if c.startswith("p_")} == \
        {f"p_s{i}_{d}" for i in range(2)
         for d in ("op", "kernel", "se_ratio", "skip", "filters", "layers")}


def test_stage1_search_writes_the_dashboard_at_the_end(real_stage1):
    page = (real_stage1 / "dashboard.html").read_text()
    assert "Stage 1 search" in page and "Plotly.newPlot" in page


def test_storage_loads_through_optunas_own_api(real_stage1):
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(real_stage1 / "study.journal")))
    study = optuna.load_study(study_name="stage1", storage=storage)
    trials = study.get_trials()
    run = load_run(real_stage1)
    assert [t.number for t in trials] == run.trials["number"].tolist()
    assert [t.user_attrs["reward"] for t in trials] == run.trials["reward"].tolist()
    assert study.best_trial.number == int(top_trials(run.trials, 1)["number"].iloc[0])


def test_every_state_is_kept_and_counted(stage1_dir, stage1_points):
    run = load_run(stage1_dir)
    assert run.states() == {"COMPLETE": len(stage1_points), "PRUNED": 1, "FAIL": 1,
                            "RUNNING": 1}
    assert len(run.completed()) == len(stage1_points)
    failed = run.trials[run.trials["state"] == "FAIL"]
    assert failed["fail_reason"].iloc[0] == "RuntimeError: simulated"
    assert run.trials["node"].eq("node-a").all()
    assert str(run.trials["macs"].dtype) == "Int64"


def test_a_journal_being_appended_to_still_loads(stage1_dir, stage1_points):
    # A writer caught mid-line: the half-written record is not read, the rest is.
    with open(stage1_dir / "study.journal", "a") as f:
        f.write('{"op_code": 5, "worker_id": "x", "trial_id": 0, "us')
    run = load_run(stage1_dir)
    assert len(run.completed()) == len(stage1_points)


def test_the_storage_recorded_in_config_json_is_used(tmp_path, stage1_points, stage1_factory):
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    run_dir = stage1_factory(tmp_path / "run", stage1_points, storage=url)
    assert not (run_dir / "study.journal").exists()
    run = load_run(run_dir)
    assert (run.source, run.storage) == ("study", url)
    assert len(run.completed()) == len(stage1_points)


def test_stage2_run_loads_from_the_study_with_its_grid_columns(stage2_dir):
    run = load_run(stage2_dir)
    assert (run.stage, run.source) == (2, "study")
    assert run.trials["p_point"].iloc[0] == "compound 1.2,1.1,1.15"
    # the same table, in the same column order, as the grid.csv stage 2 writes
    assert list(run.trials.columns[:len(GRID_COLUMNS)]) == GRID_COLUMNS
    assert set(COLUMNS) | set(STAGE2_COLUMNS) <= set(run.trials.columns)
    grid = pd.read_csv(stage2_dir / "grid.csv")
    for col in ("kind", "alpha", "beta", "gamma", "accuracy", "macs", "macs_ratio", "node"):
        assert run.trials[col].tolist() == grid[col].tolist(), col


def test_the_stage_is_told_by_the_study_where_config_json_does_not_say(tmp_path,
                                                                      stage2_factory):
    run = load_run(stage2_factory(tmp_path / "s2", stage_in_config=False))
    assert (run.stage, run.source) == (2, "study")


def test_stage2_without_a_study_falls_back_to_grid_csv(tmp_path, stage2_factory, caplog):
    run_dir = stage2_factory(tmp_path / "s2", study=False, running=1)
    with caplog.at_level(logging.WARNING):
        run = load_run(run_dir)
    assert (run.stage, run.source) == (2, "grid.csv")
    assert "read the trials from grid.csv" in caplog.text
    assert run.states() == {"COMPLETE": 8, "RUNNING": 1}
    assert run.trials["kind"].tolist()[:2] == ["compound", "compound"]


def test_a_folder_that_is_not_a_run_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="is not a run folder .*--out folder"):
        load_run(tmp_path)
    with pytest.raises(FileNotFoundError, match="is not a run folder"):
        load_run(tmp_path / "missing")


def test_loading_never_creates_a_study_file(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"target_macs": 4e8}))
    (tmp_path / "trials.csv").write_text(",".join(COLUMNS) + "\n")
    run = load_run(tmp_path)
    assert (run.stage, run.source, len(run.trials)) == (1, "trials.csv", 0)
    assert not (tmp_path / "study.journal").exists()


def test_an_unknown_stage_is_a_clear_error(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ValueError, match="cannot tell which stage"):
        load_run(tmp_path)


def test_top_trials_by_reward_then_earlier_trial():
    df = pd.DataFrame({"number": [0, 1, 2, 3, 4],
                       "state": ["COMPLETE", "COMPLETE", "RUNNING", "COMPLETE", "PRUNED"],
                       "reward": [0.5, 0.7, float("nan"), 0.7, 0.9],
                       "accuracy": [0.5, 0.7, float("nan"), 0.7, 0.9],
                       "macs": [1, 1, 1, 1, 1]})
    assert top_trials(df)["number"].tolist() == [1, 3, 0]
    assert top_trials(df, 1)["number"].tolist() == [1]


def test_top_trials_ties_go_to_fewer_macs_and_by_can_be_chosen():
    df = pd.DataFrame({"number": [0, 1, 2], "state": ["COMPLETE"] * 3,
                       "reward": [0.9, 0.5, 0.5], "accuracy": [0.6, 0.8, 0.8],
                       "macs": [300, 200, 100]})
    assert top_trials(df)["number"].tolist() == [0, 2, 1]
    assert top_trials(df, by="accuracy")["number"].tolist() == [2, 1, 0]
    with pytest.raises(KeyError, match="unknown ranking 'speed'"):
        top_trials(df, by="speed")


def test_stage2_ranks_as_its_select_setting(stage2_dir, stage1_dir):
    assert ranking(load_run(stage2_dir)) == "accuracy"
    assert ranking(load_run(stage1_dir)) is None


def test_top_trials_by_accuracy_where_there_is_no_reward():
    df = pd.DataFrame({"number": [0, 1], "state": ["COMPLETE"] * 2,
                       "reward": [float("nan")] * 2, "accuracy": [0.4, 0.6], "macs": [1, 1]})
    assert top_trials(df)["number"].tolist() == [1, 0]


def test_loading_logs_nothing_for_a_healthy_run(stage1_dir, caplog):
    with caplog.at_level(logging.WARNING):
        load_run(stage1_dir)
    assert not caplog.records


def test_an_interrupted_trial_reads_interrupted_not_fail(tmp_path, stage1_factory):
    """Ctrl-C (fail_reason 'interrupted') and a dead driver's trial (the study's
    interrupted_trials) are INTERRUPTED in the table and the counts; a real failure stays
    FAIL. A table written before that (FAIL, fail_reason 'interrupted') reads the same."""
    import shutil

    from results.rundir import open_storage, storage_url
    from results.store import STALE_ATTR

    from optuna.trial import TrialState, create_trial

    run_dir = stage1_factory(tmp_path / "run", [(0.7, 100e6)])
    study = optuna.load_study(study_name="stage1",
                              storage=open_storage(storage_url(run_dir, None)))
    for reason in ("interrupted", None, "RuntimeError: out of memory"):
        study.add_trial(create_trial(state=TrialState.FAIL, user_attrs={} if reason is None
                                     else {"fail_reason": reason}))
    ctrl_c, dead, failed = study.trials[1:]
    study.set_user_attr(STALE_ATTR, [dead.number])  # as a resumed run records a dead driver's
    run = load_run(run_dir)
    assert run.states() == {"COMPLETE": 1, "INTERRUPTED": 2, "FAIL": 1}
    state = dict(zip(run.trials["number"], run.trials["state"]))
    assert (state[ctrl_c.number], state[dead.number], state[failed.number]) == (
        "INTERRUPTED", "INTERRUPTED", "FAIL")
    # an older table read where the study cannot be: FAIL + 'interrupted' is INTERRUPTED
    old = tmp_path / "old"
    shutil.copytree(run_dir, old)
    (old / "study.journal").unlink()
    table = run.trials.assign(state=run.trials["state"].replace("INTERRUPTED", "FAIL"))
    table.to_csv(old / "trials.csv", index=False)
    back = load_run(old)
    assert back.source == "trials.csv"
    assert back.states() == {"COMPLETE": 1, "INTERRUPTED": 2, "FAIL": 1}
    assert back.trials["fail_reason"].tolist()[1:] == ["interrupted", "interrupted",
                                                       "RuntimeError: out of memory"]


def test_trial_roles_mark_b0_the_finalists_and_their_runs():
    from results.store import trial_roles

    df = pd.DataFrame({"number": [0, 1, 2, 3, 4, 5, 6],
                       "finalist": [False, False, False, True, True, True, True],
                       "finalist_of": pd.array([None, None, None, 1, 1, 2, 2], dtype="Int64"),
                       "finalist_seed": pd.array([None, None, None, 0, 1, 0, 1],
                                                 dtype="Int64")})
    assert trial_roles(df, chosen=2) == [
        "", "finalist", "B0", "finalist run of trial 1, seed 0",
        "finalist run of trial 1, seed 1", "finalist run of B0, seed 0",
        "finalist run of B0, seed 1"]
    assert trial_roles(df, chosen=None, chosen_name="chosen")[:3] == ["", "finalist",
                                                                      "finalist"]
    # a 0.1 table has no finalist columns: every row is a search trial, B0 is still marked
    legacy = pd.DataFrame({"number": [0, 1, 2]})
    assert trial_roles(legacy, chosen=1) == ["", "B0", ""]
