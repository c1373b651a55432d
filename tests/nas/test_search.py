"""Stage 1 driver: samplers on real tiny trials, resume, failures, reuse, CLI errors."""
from __future__ import annotations

import json
import math
import subprocess
import sys

import optuna
import pandas as pd
import pytest

from nas.evaluate import EvalResult, ProxyConfig
from nas.search import SearchConfig, run_search
from results.rundir import open_storage, storage_url
from space.deploy import Deployment
from nas.train import EpochResult, TrainConfig
from space import load_spec
from space.search_space import load_space


@pytest.fixture
def tiny_space(tiny_space_file):
    return tiny_space_file


def config(space, **kw):
    proxy = ProxyConfig(dataset="synthetic", resolution=16, train_samples=120, val_samples=60,
                        train=TrainConfig(epochs=2, batch_size=32, lr=0.05, threads=1))
    base = dict(target_macs=2_000_000, space=space, trials=4, timeout=None, sampler="tpe",
                seed=0, proxy=proxy, deploy=Deployment(resolution=32), pruner="none",
                finalists=0)  # the finalists have their own tests (test_finalists.py)
    base.update(kw)
    return SearchConfig(**base)


class FakeEvaluator:
    """Accuracy from the architecture alone; records every call."""

    def __init__(self, fail_on=(), interrupt_on=None, nan_on=()):
        self.calls = []
        self.fail_on, self.interrupt_on, self.nan_on = fail_on, interrupt_on, nan_on

    def __call__(self, spec, proxy, *, seed, on_epoch=None):
        n = len(self.calls)
        self.calls.append(spec.arch_hash())
        if n == self.interrupt_on:
            raise KeyboardInterrupt
        if n in self.fail_on:
            raise RuntimeError("out of memory (simulated)")
        acc = float("nan") if n in self.nan_on else 0.5 + (int(spec.arch_hash(), 16) % 400) / 1000
        epochs = []
        for e in range(1, proxy.train.epochs + 1):
            r = EpochResult(epoch=e, train_loss=1.0, val_accuracy=acc, lr=0.1, seconds=0.0,
                            images_per_sec=0.0)
            epochs.append(r)
            if on_epoch:
                on_epoch(r)
        return EvalResult(accuracy=acc, epochs=epochs, seconds=0.0, images_per_sec=0.0,
                          seed=seed)


@pytest.mark.parametrize("sampler", ["tpe", "random", "nsga2", "evolution"])
def test_each_sampler_runs_real_tiny_trials(sampler, tiny_space, tmp_path):
    out = tmp_path / "run"
    cfg = config(tiny_space, sampler=sampler, trials=4, pruner="none")
    res = run_search(cfg, out=out)
    df = pd.read_csv(out / "trials.csv")
    assert len(df) == 4
    assert set(df["state"]) <= {"COMPLETE"}
    done = df[df.state == "COMPLETE"]
    # reward is ACC x (MACs/T)^-0.07, recomputed from the table
    expect = done.accuracy * (done.macs / cfg.target_macs) ** -0.07
    assert (done.reward - expect).abs().max() < 1e-12
    assert ((done.accuracy >= 0) & (done.accuracy <= 1)).all()
    best = load_spec(out / "best.json")
    assert best.meta["reward"] == pytest.approx(done.reward.max())
    assert best.resolution == 32 and best.num_classes == 1000 and best.in_channels == 3
    assert best.meta["macs"] == best.meta["macs_fvcore"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["trials"] == 4 and summary["best"]["trial"] == best.meta["trial"]
    pq = pd.read_parquet(out / "trials.parquet")
    assert list(pq.number) == list(df.number)
    study = optuna.load_study(study_name="stage1", storage=open_storage(storage_url(out, None)))
    assert len(study.directions) == (2 if sampler == "nsga2" else 1)
    assert res.best is not None and res.best.arch_hash() == best.arch_hash()


def test_trial_params_rebuild_the_emitted_spec(tiny_space, tmp_path):
    out = tmp_path / "run"
    run_search(config(tiny_space, trials=3), out=out, evaluate=FakeEvaluator())
    best = load_spec(out / "best.json")
    sp = load_space(tiny_space)
    again = sp.to_spec(best.meta["params_sampled"]).with_task(resolution=32)
    assert again.arch_hash() == best.arch_hash() == best.meta["arch_hash"]


def test_resume_adds_trials_without_repeating_any(tiny_space, tmp_path):
    out = tmp_path / "run"
    first = FakeEvaluator()
    run_search(config(tiny_space, trials=3, sampler="random"), out=out, evaluate=first)
    before = pd.read_csv(out / "trials.csv")
    second = FakeEvaluator()
    run_search(config(tiny_space, trials=6, sampler="random"), out=out, resume=True,
               evaluate=second)
    after = pd.read_csv(out / "trials.csv")
    assert list(after.number) == list(range(6))
    assert after.iloc[:3].equals(before)  # finished trials untouched
    trained = len(first.calls) + len(second.calls)
    reused = after.reused_from.notna().sum()
    assert trained + reused == 6 and len(first.calls) + before.reused_from.notna().sum() == 3


def test_a_new_run_refuses_an_existing_folder(tiny_space, tmp_path):
    out = tmp_path / "run"
    run_search(config(tiny_space, trials=1), out=out, evaluate=FakeEvaluator())
    with pytest.raises(ValueError, match="--resume"):
        run_search(config(tiny_space, trials=1), out=out, evaluate=FakeEvaluator())


def test_failing_and_nan_trials_are_recorded_and_the_study_goes_on(tiny_space, tmp_path):
    out = tmp_path / "run"
    ev = FakeEvaluator(fail_on=(1,), nan_on=(2,))
    run_search(config(tiny_space, trials=5, sampler="random", seed=3), out=out, evaluate=ev)
    df = pd.read_csv(out / "trials.csv")
    assert len(df) == 5
    failed = df[df.state == "FAIL"]
    reasons = " | ".join(failed.fail_reason)
    assert "RuntimeError: out of memory (simulated)" in reasons
    assert "accuracy is nan" in reasons
    assert (df.state == "COMPLETE").sum() == 3


def test_ctrl_c_keeps_finished_trials_and_resume_retries_the_interrupted_one(tiny_space,
                                                                              tmp_path):
    out = tmp_path / "run"
    ev = FakeEvaluator(interrupt_on=2)
    res = run_search(config(tiny_space, trials=5, sampler="random", seed=1), out=out, evaluate=ev)
    assert res.interrupted
    df = pd.read_csv(out / "trials.csv")
    # interrupted, not failed: in the table and in summary.json's state counts
    assert list(df.state) == ["COMPLETE", "COMPLETE", "INTERRUPTED"]
    assert df.fail_reason.iloc[2] == "interrupted"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["states"] == {"COMPLETE": 2, "INTERRUPTED": 1}
    interrupted_params = {k: df[k].iloc[2] for k in df.columns if k.startswith("p_")}
    ev2 = FakeEvaluator()
    run_search(config(tiny_space, trials=5, sampler="random", seed=1), out=out, resume=True,
               evaluate=ev2)
    df2 = pd.read_csv(out / "trials.csv")
    assert len(df2) == 6 and (df2.state == "COMPLETE").sum() == 5
    retry = df2.iloc[3]  # the re-enqueued trial runs first
    assert {k: retry[k] for k in interrupted_params} == interrupted_params


def test_resume_after_the_driver_was_killed_mid_trial(tiny_space, tmp_path):
    out = tmp_path / "run"
    run_search(config(tiny_space, trials=2, sampler="random"), out=out, evaluate=FakeEvaluator())
    # A killed driver leaves its trial RUNNING in the storage.
    storage = open_storage(storage_url(out, None))
    study = optuna.load_study(study_name="stage1", storage=storage)
    sp = load_space(tiny_space)
    t = study.ask()
    sp.sample(t)
    run_search(config(tiny_space, trials=3, sampler="random"), out=out, resume=True,
               evaluate=FakeEvaluator())
    df = pd.read_csv(out / "trials.csv")
    assert df.state.iloc[2] == "INTERRUPTED" and df.fail_reason.iloc[2] == "interrupted"
    states = json.loads((out / "summary.json").read_text())["states"]
    assert states == {"COMPLETE": 3, "INTERRUPTED": 1}  # the dead driver's trial, run again
    assert (df.state == "COMPLETE").sum() == 3
    assert not (df.state == "RUNNING").any()


def test_repeated_architectures_reuse_the_earlier_result(tmp_path, tiny_space_text):
    f = tmp_path / "one.yaml"
    f.write_text(tiny_space_text.replace("kernel: [3, 5]", "kernel: [3]")
                 .replace("se_ratio: [0.0, 0.25]", "se_ratio: [0.0]")
                 .replace("filters: [1.0, 2.0]", "filters: [1.0]")
                 .replace("op: [dsconv, mbconv3]", "op: [dsconv]"))
    assert load_space(f).size()[1] == 4
    ev = FakeEvaluator()
    run_search(config(str(f), trials=10, sampler="random", seed=0), out=tmp_path / "r",
               evaluate=ev)
    df = pd.read_csv(tmp_path / "r" / "trials.csv")
    assert len(ev.calls) == len(set(ev.calls)) <= 4
    reused = df[df.reused_from.notna()]
    assert len(reused) == 10 - len(ev.calls)
    for _, row in reused.iterrows():
        src = df[df.number == row.reused_from].iloc[0]
        assert src.arch_hash == row.arch_hash and src.accuracy == row.accuracy


def test_enqueue_a_known_network_as_the_first_trial(tmp_path):
    ev = FakeEvaluator()
    cfg = config("efficientnet", trials=1, enqueue=("efficientnet-b0",),
                 deploy=Deployment(resolution=224), target_macs=400_000_000)
    run_search(cfg, out=tmp_path / "r", evaluate=ev)
    best = load_spec(tmp_path / "r" / "best.json")
    from space import get_model
    b0 = get_model("efficientnet-b0")
    assert best.stages == b0.stages and best.meta["macs"] == 401_659_392


def test_enqueue_of_a_non_member_is_a_clear_error(tiny_space, tmp_path):
    with pytest.raises(ValueError, match="not a member of the space"):
        run_search(config(tiny_space, enqueue=("resnet-50",)), out=tmp_path / "r",
                   evaluate=FakeEvaluator())


def test_hyperband_prunes_on_the_per_epoch_reward(tiny_space, tmp_path):
    class Declining(FakeEvaluator):
        def __call__(self, spec, proxy, *, seed, on_epoch=None):
            n = len(self.calls)
            self.calls.append(spec.arch_hash())
            acc0 = 0.9 if n < 3 else 0.1  # later trials are worse after epoch 1
            for e in range(1, proxy.train.epochs + 1):
                on_epoch(EpochResult(e, 1.0, acc0, 0.1, 0.0, 0.0))
            return EvalResult(acc0, [], 0.0, 0.0, seed)

    cfg = config(tiny_space, trials=10, sampler="random", pruner="median",
                 proxy=ProxyConfig(dataset="synthetic", resolution=16, train_samples=120,
                                   val_samples=60, train=TrainConfig(epochs=3)))
    run_search(cfg, out=tmp_path / "r", evaluate=Declining())
    df = pd.read_csv(tmp_path / "r" / "trials.csv")
    assert (df.state == "PRUNED").any()
    assert set(df[df.state == "PRUNED"].accuracy) == {0.1}


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "nas.cli", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=120)


@pytest.mark.parametrize("args, fragment", [
    (["--target-flops", "lots"], "--target-flops must be a number of multiply-adds"),
    (["--target-flops", "-4e8"], "--target-flops"),
    (["--target-flops", "400M", "--sampler", "cmaes"],
     "invalid choice: 'cmaes' (choose from 'tpe', 'random', 'nsga2', 'evolution')"),
    (["--target-flops", "400M", "--space", "nope"], "unknown search space 'nope'"),
    (["--target-flops", "400M", "--trials", "0"], "`trials >= 1` must hold"),
    (["--target-flops", "400M", "--constraint", "medium"], "invalid choice: 'medium'"),
    (["--target-flops", "400M", "--w-a", "0.07"], "positive exponent"),
    (["--target-flops", "400M", "--dataset", "imagenet"], "unknown dataset"),
])
def test_cli_bad_input_is_one_line_and_exit_2(args, fragment, tmp_path):
    r = _cli("search", *args, "--out", str(tmp_path / "r"), cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert "Traceback" not in r.stderr
    assert any(fragment in line for line in lines), r.stderr
    assert len(lines) == 1 and "error:" in lines[0]


def test_cli_tiny_search_and_resume_conflict(tiny_space, tmp_path):
    out = tmp_path / "r"
    args = ["search", "--target-flops", "2M", "--space", tiny_space, "--trials", "2",
            "--dataset", "synthetic", "--train-samples", "100", "--val-samples", "50",
            "--proxy-resolution", "16", "--epochs", "1", "--deploy-resolution", "32",
            "--lr", "0.03", "--warmup-epochs", "0.5", "--finalists", "0", "--out", str(out)]
    r = _cli(*args, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "B0 = trial" in r.stdout
    train = json.loads((out / "config.json").read_text())["proxy"]["train"]
    assert (train["lr"], train["warmup_epochs"], train["epochs"]) == (0.03, 0.5, 1)
    r = _cli("search", "--resume", "--out", str(out), "--epochs", "3", cwd=tmp_path)
    assert r.returncode == 2 and "--epochs 3 differs from the resumed run's 1" in r.stderr
    r = _cli("search", "--resume", "--out", str(out), "--warmup-epochs", "0", cwd=tmp_path)
    assert r.returncode == 2 and "--warmup-epochs 0" in r.stderr
    r = _cli("search", "--resume", "--out", str(out), "--trials", "3", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert len(pd.read_csv(out / "trials.csv")) == 3
    assert math.isfinite(json.loads((out / "summary.json").read_text())["best"]["reward"])
