"""nas search --target-latency (issue 14, the search side): trials predict their latency from a
table, the reward is ACC x (LAT/T)^w, B0 and the finalists are timed end to end, the study keeps
the table it started with, nsga2 takes --objectives accuracy,latency, and bad input is one line
and exit 2 with nothing written.

The tables here are made by hand (known entries on this machine's device key), so every
prediction is an exact sum; only the end-to-end measurement at the end really times anything,
and it is checked for being there and finite, never for speed."""
from __future__ import annotations

import json
import math

import optuna
import pandas as pd
import pytest

from nas.cli import main
from nas.latency import LatencySettings
from nas.search import LATENCY_FILE, run_search
from results.rundir import open_storage, storage_url
from space.deploy import Deployment, deployment_spec
from space.latency import load_table, predict_ms, save_table, spec_keys
from space.search_space import load_space

from .conftest import CurveEvaluator


@pytest.fixture
def table_file(tmp_path, tiny_space_file, hand_table):
    path = tmp_path / "table.json"
    save_table(hand_table(tiny_space_file), path)
    return path


def _study(run_dir):
    url = storage_url(run_dir, json.loads((run_dir / "config.json").read_text())["storage"])
    return optuna.load_study(study_name="stage1", storage=open_storage(url))


def test_a_latency_search_scores_the_predicted_latency(tiny_config, tiny_space_file, table_file,
                                                       tmp_path):
    cfg = tiny_config(target_macs=None, target_latency_ms=1.5, latency_table=str(table_file),
                      trials=5, finalists=2, finalist_seeds=2)
    out = tmp_path / "run"
    res = run_search(cfg, out=out, evaluate=CurveEvaluator())
    table, space = load_table(table_file), load_space(tiny_space_file)
    study = _study(out)
    done = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(done) == 5 + 2 * 2
    for t in done:
        spec = deployment_spec(space, t.params, cfg.deploy, "x")
        # the sum of its entries, plus the overhead
        want = sum(table.entries[str(k)] for k in spec_keys(spec)) + table.overhead_ms
        ua = t.user_attrs
        assert ua["latency_ms"] == pytest.approx(want) == pytest.approx(predict_ms(table, spec))
        assert ua["reward"] == pytest.approx(ua["accuracy"] * (want / 1.5) ** -0.07)
    df = pd.read_csv(out / "trials.csv")
    assert df.set_index("number")["latency_ms"].to_dict() == pytest.approx(
        {t.number: t.user_attrs["latency_ms"] for t in done})

    meta = res.best.meta
    b0 = next(t for t in done if t.number == meta["trial"])
    assert meta["latency_ms"] == b0.user_attrs["latency_ms"]
    assert meta["target_latency_ms"] == 1.5 and meta["target_macs"] is None
    assert math.isfinite(meta["latency_ms_measured"]) and meta["latency_ms_measured"] > 0
    assert meta["latency_device"] == LatencySettings().device()
    assert len(meta["finalists"]) == 2
    for row in meta["finalists"]:
        src = next(t for t in done if t.number == row["trial"])
        assert row["latency_ms"] == src.user_attrs["latency_ms"]
        assert row["latency_ms_measured"] > 0
    assert meta["latency_ms_measured"] == next(
        r["latency_ms_measured"] for r in meta["finalists"] if r["trial"] == meta["trial"])

    s = json.loads((out / "summary.json").read_text())
    assert s["objective"]["metric"] == "latency" and s["objective"]["target"] == 1.5
    assert "macs_vs_target" not in s
    assert s["latency_vs_target"]["fraction"] == pytest.approx(meta["latency_ms"] / 1.5)
    lat = s["latency"]
    assert lat["table"]["fingerprint"] == table.fingerprint()
    assert lat["device"] == LatencySettings().device() == lat["table"]["device"]
    assert lat["best"]["predicted_ms"] == meta["latency_ms"]
    assert lat["best"]["error"] == pytest.approx(
        meta["latency_ms_measured"] / meta["latency_ms"] - 1)
    # the settings are the table's own (none given), and the run keeps the table it used
    config = json.loads((out / "config.json").read_text())
    assert config["latency"] == LatencySettings().to_dict()
    assert config["target_macs"] is None and config["target_latency_ms"] == 1.5
    assert load_table(out / LATENCY_FILE).fingerprint() == table.fingerprint()
    assert study.user_attrs["latency_table"] == table.to_dict()


def test_a_resumed_search_predicts_with_the_table_the_study_started_with(
        tiny_config, tiny_space_file, table_file, tmp_path, hand_table):
    cfg = tiny_config(target_macs=None, target_latency_ms=1.5, latency_table=str(table_file),
                      trials=3)
    out = tmp_path / "run"
    run_search(cfg, out=out, evaluate=CurveEvaluator())
    first = hand_table(tiny_space_file)
    save_table(hand_table(tiny_space_file, overhead=9.0), table_file)  # the file changes
    run_search(tiny_config(target_macs=None, target_latency_ms=1.5, trials=6,
                           latency_table=str(table_file)), out=out, resume=True,
               evaluate=CurveEvaluator())
    space = load_space(tiny_space_file)
    done = _study(out).get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(done) == 6
    for t in done:
        spec = deployment_spec(space, t.params, cfg.deploy, "x")
        assert t.user_attrs["latency_ms"] == pytest.approx(predict_ms(first, spec))


@pytest.mark.parametrize("target", [dict(target_latency_ms=1.5, target_macs=None),
                                    dict(target_macs=2_000_000)])
def test_nsga2_optimizes_accuracy_and_latency(tiny_config, table_file, tmp_path, target):
    """--objectives accuracy,latency: the study's values are (accuracy, predicted ms); the
    reward (which picks B0) keeps the target's own metric."""
    cfg = tiny_config(sampler="nsga2", objectives=("accuracy", "latency"),
                      latency_table=str(table_file), trials=4, **target)
    run_search(cfg, out=tmp_path / "run", evaluate=CurveEvaluator())
    done = _study(tmp_path / "run").get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(done) == 4
    for t in done:
        ua = t.user_attrs
        assert t.values == [pytest.approx(ua["accuracy"]), pytest.approx(ua["latency_ms"])]
        cost, goal = ((ua["latency_ms"], 1.5) if "target_latency_ms" in target
                      else (ua["macs"], 2_000_000))
        assert ua["reward"] == pytest.approx(ua["accuracy"] * (cost / goal) ** -0.07)


def test_a_macs_search_predicts_no_latency(tiny_config, tmp_path):
    res = run_search(tiny_config(trials=2), out=tmp_path / "run", evaluate=CurveEvaluator())
    assert "latency_ms" not in res.best.meta and "latency" not in res.summary
    assert not (tmp_path / "run" / LATENCY_FILE).exists()
    assert pd.read_csv(tmp_path / "run" / "trials.csv")["latency_ms"].isna().all()


# ----------------------------------------------------------------------------- the CLI
def _run(capsys, *argv):
    try:
        code = main(list(argv))
    except SystemExit as e:  # argparse's own refusals (choices)
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def _bad_tables(tmp_path, space_file, hand_table):
    other = tmp_path / "other.json"
    save_table(hand_table(space_file, space="mnasnet"), other)
    device = tmp_path / "device.json"
    save_table(hand_table(space_file, threads=2), device)
    res = tmp_path / "res.json"
    save_table(hand_table(space_file, resolution=64), res)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({**hand_table(space_file).to_dict(), "schema": 99}))
    holey = tmp_path / "holey.json"
    t = hand_table(space_file)
    entries = dict(t.entries)
    entries.pop(next(k for k in entries if k.startswith("head:")))
    holey.write_text(json.dumps({**t.to_dict(), "entries": entries}))
    return {"other": other, "device": device, "res": res, "broken": broken, "schema": schema,
            "holey": holey, "missing": tmp_path / "missing.json"}


@pytest.mark.parametrize("args, fragment", [
    (["--target-latency", "0"], "`target_latency > 0` must hold"),
    (["--target-latency", "20 parsecs"], "--target-latency must be a time such as 20ms"),
    (["--target-latency=-3ms"], "--target-latency must be a time"),
    (["--target-flops", "400M", "--target-latency", "20ms"],
     "give one target, --target-flops (MACs) or --target-latency (ms on this device), but got "
     "--target-flops and --target-latency"),
    (["--space", "mnasnet"], "--target-flops or --target-latency is required"),
    (["--target-latency", "20ms", "--latency-table", "{other}"], "was built for space 'mnasnet'"),
    (["--target-latency", "20ms", "--latency-table", "{device}", "--latency-threads", "1"],
     "was measured on another device: threads 2 (here 1)"),
    (["--target-latency", "20ms", "--latency-table", "{res}"], "was timed at 64 px, not 32"),
    (["--target-latency", "20ms", "--latency-table", "{broken}"], "is not valid JSON"),
    (["--target-latency", "20ms", "--latency-table", "{schema}"], "has schema 99, expected 1"),
    (["--target-latency", "20ms", "--latency-table", "{holey}"], "has no entry head:"),
    (["--target-latency", "20ms", "--latency-table", "{missing}"], "does not exist"),
    (["--target-latency", "20ms", "--latency-threads", "0"], "`threads >= 1` must hold"),
    (["--target-latency", "20ms", "--latency-threads", "2", "--latency-clock", "cpu"],
     "--latency-clock cpu reads the timing thread's CPU time, so it needs --latency-threads 1"),
    (["--target-latency", "20ms", "--latency-clock", "sundial"],
     "invalid choice: 'sundial' (choose from 'wall', 'cpu')"),
    (["--target-flops", "400M", "--latency-threads", "2"], "need a latency target or objective"),
    (["--target-flops", "400M", "--latency-table", "{other}"], "need a latency target"),
    (["--target-flops", "400M", "--objectives", "accuracy,latency"],
     "--objectives needs a multi-objective sampler, but got --sampler tpe"),
    (["--target-flops", "400M", "--sampler", "nsga2", "--objectives", "accuracy,params"],
     "--objectives must be accuracy,<cost> with a cost among macs, latency"),
])
def test_bad_latency_input_is_one_line_exit_2_and_writes_nothing(
        args, fragment, tiny_space_file, tmp_path, capsys, monkeypatch, hand_table):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # no table is built there
    files = _bad_tables(tmp_path, tiny_space_file, hand_table)
    args = [a.format(**files) for a in args]
    if "--space" not in args:
        args += ["--space", tiny_space_file]
    out = tmp_path / "run"
    code, _, err = _run(capsys, "search", *args, "--deploy-resolution", "32", "--dataset",
                        "synthetic", "--out", str(out))
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert fragment in lines[0], err
    assert not out.exists() and not (tmp_path / "cache").exists()


def test_a_resumed_latency_run_keeps_its_target_and_table(tiny_space_file, table_file, tmp_path,
                                                          capsys):
    out = tmp_path / "run"
    common = ["--space", tiny_space_file, "--dataset", "synthetic", "--train-samples", "100",
              "--val-samples", "50", "--proxy-resolution", "16", "--epochs", "1",
              "--deploy-resolution", "32", "--threads", "1", "--finalists", "0"]
    code, stdout, err = _run(capsys, "search", "--target-latency", "1500us", "--latency-table",
                             str(table_file), "--trials", "2", *common, "--out", str(out))
    assert code == 0, err
    assert "latency: predicted" in stdout and "measured" in stdout
    assert json.loads((out / "config.json").read_text())["target_latency_ms"] == 1.5
    for flag, value, word in (("--target-latency", "2ms", "--target-latency '2ms' differs"),
                              ("--latency-table", str(tmp_path / "x.json"), "--latency-table"),
                              ("--latency-threads", "2", "--latency-threads 2 differs from the resumed run's 1")):
        code, _, err = _run(capsys, "search", "--resume", "--out", str(out), flag, value)
        assert code == 2 and word in err, err
    code, _, err = _run(capsys, "search", "--resume", "--out", str(out), "--trials", "3")
    assert code == 0, err
    assert len(pd.read_csv(out / "trials.csv")) == 3


def test_a_joined_driver_predicts_with_the_studys_table(tiny_space_file, table_file, tmp_path,
                                                        capsys, monkeypatch):
    """A second driver (``--join``) on another machine has no table of its own: it takes the
    one the study started with, builds none, and its trials predict from it."""
    db = f"sqlite:///{tmp_path / 'study.db'}"
    common = ["--dataset", "synthetic", "--train-samples", "100", "--val-samples", "50",
              "--proxy-resolution", "16", "--epochs", "1", "--threads", "1", "--finalists", "0"]
    code, _, err = _run(capsys, "search", "--space", tiny_space_file, "--target-latency", "1.5ms",
                        "--latency-table", str(table_file), "--deploy-resolution", "32",
                        "--trials", "4", "--storage", db, "--study-name", "s", *common,
                        "--out", str(tmp_path / "a"))
    assert code == 0, err
    table = load_table(table_file)
    table_file.unlink()  # the joining driver's machine has neither the file nor a cache
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    code, _, err = _run(capsys, "search", "--storage", db, "--study-name", "s", "--join",
                        "--trials", "7", "--out", str(tmp_path / "b"))
    assert code == 0, err
    assert not (tmp_path / "cache").exists()
    space = load_space(tiny_space_file)
    done = optuna.load_study(study_name="s", storage=db).get_trials(
        states=(optuna.trial.TrialState.COMPLETE,))
    assert len(done) == 7
    for t in done:
        spec = deployment_spec(space, t.params, Deployment(resolution=32), "x")
        assert t.user_attrs["latency_ms"] == pytest.approx(predict_ms(table, spec))
    assert load_table(tmp_path / "b" / LATENCY_FILE).fingerprint() == table.fingerprint()
