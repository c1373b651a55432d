"""Every driver of a study draws its own proposals (issue 26): a search killed with SIGKILL and
resumed, and a second driver that joins with the same command and --seed, propose as many
distinct architectures as one unbroken driver, instead of replaying the sampler's first
proposals as reused copies. The drivers are real processes; trials are scored by a fake
evaluator (accuracy from the architecture) so only the sampling is under test. The
PostgreSQL twin of the two-driver test is in test_postgres.py."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest

from nas.engine.study import driver_seed
from results.store import proposed_by

TRIALS = 6

# One driver process: run_search on the mnasnet space (10^8+ distinct networks, so two honest
# samplers do not collide) with a fake evaluator that can kill its own process with SIGKILL
# after KILL_AFTER trainings, or wait until another driver has asked a trial (WAIT_FOR_TRIALS).
DRIVER = textwrap.dedent('''
    import os, signal, sys, time
    import optuna
    from nas.engine.study import StorageConfig
    from nas.evaluate import EvalResult, ProxyConfig
    from nas.search import SearchConfig, run_search
    from nas.train import EpochResult, TrainConfig

    mode, out, sampler, url = sys.argv[1:5]
    kill_after = int(os.environ.get("KILL_AFTER", "-1"))
    wait_for = int(os.environ.get("WAIT_FOR_TRIALS", "0"))
    calls = []

    def evaluate(spec, proxy, *, seed, on_epoch=None, **kw):
        if len(calls) == kill_after:
            os.kill(os.getpid(), signal.SIGKILL)  # kill -9 in the middle of a trial
        if wait_for and not calls:  # hold the first training until the other driver asks
            t0 = time.time()
            while len(optuna.load_study(study_name="shared", storage=url).trials) < wait_for:
                if time.time() - t0 > 120:
                    sys.exit("the other driver never asked a trial")
                time.sleep(0.1)
        calls.append(spec.arch_hash())
        acc = 0.3 + (int(spec.arch_hash(), 16) % 600) / 1000
        r = EpochResult(epoch=1, train_loss=1.0, val_accuracy=acc, lr=0.1, seconds=0.0,
                        images_per_sec=0.0)
        if on_epoch:
            on_epoch(r)
        return EvalResult(accuracy=acc, epochs=[r], seconds=0.0, images_per_sec=0.0, seed=seed)

    proxy = ProxyConfig(dataset="synthetic", resolution=16, train_samples=64, val_samples=32,
                        train=TrainConfig(epochs=1, batch_size=32, threads=1))
    config = SearchConfig(target_macs=400_000_000, space="mnasnet", trials=__TRIALS__, timeout=None,
                          sampler=sampler, seed=0, proxy=proxy, pruner="none", finalists=0)
    storage = None if url == "-" else StorageConfig(url=url, study_name="shared",
                                                    join=mode == "join", heartbeat=1)
    run_search(config, out=out, resume=mode == "resume", storage=storage, evaluate=evaluate)
''').replace("__TRIALS__", str(TRIALS))


def _driver(tmp_path: Path, mode: str, out: str, *, sampler: str = "tpe", url: str = "-",
            node: str = "d0", **env: str) -> subprocess.Popen:
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    return subprocess.Popen(
        [sys.executable, str(script), mode, str(tmp_path / out), sampler, url], cwd=tmp_path,
        env={**os.environ, "OMP_NUM_THREADS": "1", "EFFICIENTNAS_NODE": node, **env},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(p: subprocess.Popen, rc: int = 0) -> str:
    try:
        log, _ = p.communicate(timeout=240)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == rc, log[-3000:]
    return log


def _searched(df: pd.DataFrame) -> pd.DataFrame:
    """The search trials that count: finished, not interrupted, not finalists."""
    return df[(df.state == "COMPLETE") & ~df.finalist.astype(bool)]


def test_driver_seed_keeps_the_first_driver_and_separates_the_others():
    assert driver_seed(0, 0) == 0 and driver_seed(7, 0) == 7  # a fresh run reproduces
    assert driver_seed(None, 3) is None
    seeds = {driver_seed(0, i) for i in range(1, 50)} | {driver_seed(1, i) for i in range(1, 50)}
    assert len(seeds) == 98 and 0 not in seeds
    assert all(0 <= s < 2 ** 32 for s in seeds)
    assert driver_seed(0, 1) == driver_seed(0, 1)  # a pure function of (seed, driver)


@pytest.mark.parametrize("sampler", ["tpe", *(pytest.param(s, marks=pytest.mark.slow)
                                              for s in ("random", "evolution", "nsga2"))])
def test_a_killed_and_resumed_search_proposes_as_many_distinct_networks(sampler, tmp_path):
    _finish(_driver(tmp_path, "fresh", "whole", sampler=sampler))
    whole = pd.read_csv(tmp_path / "whole" / "trials.csv")
    assert len(_searched(whole)) == TRIALS
    distinct = _searched(whole).arch_hash.nunique()
    assert distinct == TRIALS

    # the same command, killed with SIGKILL in the middle of its third training, then resumed
    _finish(_driver(tmp_path, "fresh", "k", sampler=sampler, KILL_AFTER="2"), rc=-9)
    _finish(_driver(tmp_path, "resume", "k", sampler=sampler))
    df = pd.read_csv(tmp_path / "k" / "trials.csv")
    searched = _searched(df)
    assert len(searched) == TRIALS
    # the unbroken run's first two trials, then the resumed driver's own proposals
    assert list(searched.arch_hash[:2]) == list(whole.arch_hash[:2])
    assert searched.arch_hash.nunique() == distinct, df[["number", "state", "arch_hash",
                                                         "reused_from"]]
    assert df.reused_from.isna().all()
    # the killed trial was run again as a retry; every other trial came from a sampler
    assert (df.proposed_by == "retry").sum() == 1
    assert set(df.proposed_by) == {"sampler", "retry"}


def test_two_drivers_with_one_seed_propose_as_many_distinct_networks(tmp_path):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    # d0 holds its first training until d1 has asked one, so both drivers really share it
    d0 = _driver(tmp_path, "fresh", "r0", url=url, node="d0", WAIT_FOR_TRIALS="2")
    t0 = time.time()
    while not (tmp_path / "r0" / "config.json").exists():  # d0 has made the study
        assert d0.poll() is None and time.time() - t0 < 120, _finish(d0)
        time.sleep(0.2)
    d1 = _driver(tmp_path, "join", "r1", url=url, node="d1")
    _finish(d0)
    _finish(d1)
    study = optuna.load_study(study_name="shared", storage=url)
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(done) == TRIALS
    assert {t.user_attrs["node"] for t in done} == {"d0", "d1"}  # both drivers took trials
    assert len({t.user_attrs["arch_hash"] for t in done}) == TRIALS
    assert all(t.user_attrs.get("reused_from") is None for t in done)
    assert {proposed_by(t) for t in done} == {"sampler"}
    assert study.user_attrs["drivers"] == 2
    for out in ("r0", "r1"):  # each driver's trials.csv says so too
        df = pd.read_csv(tmp_path / out / "trials.csv")
        assert set(df.proposed_by) == {"sampler"} and df.reused_from.isna().all()


def test_a_true_re_proposal_is_still_reused_and_says_so(tmp_path, tiny_space_text):
    """Reuse stays for what the sampler truly proposes again: a 4-network space sampled 8
    times trains each network once and marks the repeats reused, proposed by the sampler."""
    from nas.evaluate import EvalResult, ProxyConfig
    from nas.search import SearchConfig, run_search
    from nas.train import EpochResult, TrainConfig
    from space.deploy import Deployment

    f = tmp_path / "four.yaml"
    f.write_text(tiny_space_text.replace("kernel: [3, 5]", "kernel: [3]")
                 .replace("se_ratio: [0.0, 0.25]", "se_ratio: [0.0]")
                 .replace("filters: [1.0, 2.0]", "filters: [1.0]")
                 .replace("op: [dsconv, mbconv3]", "op: [dsconv]"))
    trained = []

    def evaluate(spec, proxy, *, seed, on_epoch=None, **kw):
        trained.append(spec.arch_hash())
        r = EpochResult(epoch=1, train_loss=1.0, val_accuracy=0.5, lr=0.1, seconds=0.0,
                        images_per_sec=0.0)
        return EvalResult(accuracy=0.5, epochs=[r], seconds=0.0, images_per_sec=0.0,
                          seed=seed)

    proxy = ProxyConfig(dataset="synthetic", resolution=16, train_samples=64, val_samples=32,
                        train=TrainConfig(epochs=1, batch_size=32, threads=1))
    cfg = SearchConfig(target_macs=2_000_000, space=str(f), trials=4, timeout=None,
                       sampler="random", seed=0, proxy=proxy, deploy=Deployment(resolution=32),
                       pruner="none", finalists=0)
    run_search(cfg, out=tmp_path / "r", evaluate=evaluate)
    from dataclasses import replace
    run_search(replace(cfg, trials=8), out=tmp_path / "r", resume=True, evaluate=evaluate)
    df = pd.read_csv(tmp_path / "r" / "trials.csv")
    assert len(df) == 8 and len(trained) == len(set(trained)) <= 4
    reused = df[df.reused_from.notna()]
    assert len(reused) == 8 - len(trained) > 0
    assert set(reused.proposed_by) == {"sampler"}
