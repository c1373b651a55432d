"""``nas search --evaluator supernet`` (issue 24, nas/stage1/supernet_phase.py): the three phases
in one run folder (supernet training, scoring by inheritance, finalists trained stand-alone),
resume after an interruption in either of the first two, and bad input refused up front.

Tiny: the tiny space, synthetic data, 120 training images in batches of 32 (4 supernet steps an
epoch), one proxy epoch for the finalists."""
from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import torch

from nas.evaluate import ProxyConfig, evaluate_proxy, proxy_spec
from nas.search import run_search
from nas.stage1 import supernet_phase as phase
from nas.stage1.config import SearchConfig
from nas.stage1.supernet_config import SupernetConfig
from nas.train import TrainConfig
from space.deploy import Deployment


def config(space: str, **kw) -> SearchConfig:
    proxy = ProxyConfig(dataset="synthetic", resolution=16, train_samples=120, val_samples=60,
                        train=TrainConfig(epochs=1, batch_size=32, lr=0.05, threads=1))
    base = dict(target_macs=2_000_000, space=space, trials=5, timeout=None, sampler="random",
                seed=0, proxy=proxy, deploy=Deployment(resolution=32), pruner="none",
                finalists=2, finalist_seeds=1, evaluator="supernet",
                supernet=SupernetConfig(epochs=1, calib_images=64))
    base.update(kw)
    return SearchConfig(**base)


@pytest.fixture(autouse=True)
def fresh_scorer_cache():
    phase._HELD.clear()
    yield
    phase._HELD.clear()


class Counting:
    """Wraps a module function of the phase: records each finished call's ``record(args)``;
    raises KeyboardInterrupt instead of call number ``interrupt_on`` (0-based)."""

    def __init__(self, fn, record, interrupt_on=None):
        self.fn, self.record, self.interrupt_on = fn, record, interrupt_on
        self.calls: list = []
        self.started = 0

    def __call__(self, *a, **kw):
        if self.started == self.interrupt_on:
            raise KeyboardInterrupt
        self.started += 1
        out = self.fn(*a, **kw)
        self.calls.append(self.record(a, kw))
        return out


def _scored_hash(a, kw):
    return a[1].arch_hash()  # score_candidate(supernet, spec, ...): the task spec's hash


def _table(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "trials.csv")


def test_three_phases_in_one_run_folder(tiny_space_file, tmp_path, monkeypatch, caplog):
    scores = Counting(phase.score_candidate, _scored_hash)
    loads = Counting(phase.load_trained_supernet, lambda a, kw: a[0])
    monkeypatch.setattr(phase, "score_candidate", scores)
    monkeypatch.setattr(phase, "load_trained_supernet", loads)
    trained = []

    def finalist_evaluate(spec, proxy, **kw):  # the proxy evaluator, counted
        trained.append(spec.arch_hash())
        return evaluate_proxy(spec, proxy, **kw)

    out = tmp_path / "run"
    cfg = config(tiny_space_file)
    result = run_search(cfg, out=out, evaluate=finalist_evaluate)
    assert not result.interrupted

    # phase 1: a trained checkpoint, its settings and fingerprint in config.json and summary
    saved = json.loads((out / "config.json").read_text())
    summary = json.loads((out / "summary.json").read_text())
    ckpt = torch.load(out / phase.CHECKPOINT_FILE, map_location="cpu", weights_only=True)
    assert ckpt["step"] == ckpt["total_steps"] == 4  # 120 images / 32, one epoch
    assert [h["step"] for h in ckpt["history"]] == [1, 2, 3, 4]
    assert saved["evaluator"] == "supernet" and saved["supernet"]["epochs"] == 1
    assert saved["supernet_fingerprint"] == ckpt["fingerprint"] == \
        summary["supernet"]["fingerprint"]
    assert saved["supernet_settings"] == ckpt["settings"] == summary["supernet"]["settings"]
    assert summary["supernet"]["settings"]["train"]["epochs"] == 1
    assert summary["supernet"]["settings"]["train"]["lr"] == 0.05  # the proxy's recipe
    assert summary["supernet"]["steps"] == summary["supernet"]["total_steps"] == 4
    assert summary["evaluator"] == "supernet"
    assert SearchConfig.from_dict(saved) == cfg  # config.json round-trips for --resume

    # phase 2: every search trial scored by inheritance, the checkpoint loaded once
    df = _table(out)
    search, finals = df[~df.finalist], df[df.finalist]
    assert len(search) == 5 and (search.state == "COMPLETE").all()
    assert (search.evaluator == "supernet").all()
    fresh = search[search.reused_from.isna()]
    assert len(scores.calls) == len(fresh) == summary["supernet"]["scored"] - \
        search.reused_from.notna().sum()
    assert len(loads.calls) == 1
    # each row's accuracy is what its inherited weights score (recomputed here)
    held = phase.SupernetScorer(config=cfg, space=result_space(cfg))
    held.checkpoint, held.fingerprint = str(out / phase.CHECKPOINT_FILE), ckpt["fingerprint"]
    row = fresh.iloc[0]
    spec = _spec_of(cfg, row)
    assert spec.arch_hash() == row.arch_hash
    task = proxy_spec(spec, in_channels=1, num_classes=10, resolution=16)
    h = held.held(cfg.proxy)
    want = phase.score_candidate.fn(h.net, task, calib_batches=h.calib, val_split=h.val)
    assert row.accuracy == pytest.approx(want, abs=1e-9)
    assert row.reward == pytest.approx(cfg.objective().reward(want, int(row.macs)), rel=1e-9)

    # phase 3: the top 2 distinct candidates trained from scratch by the proxy evaluator
    assert len(finals) == 2 and (finals.evaluator == "proxy").all()
    assert (finals.state == "COMPLETE").all()
    top2 = search.sort_values(["reward", "number"], ascending=[False, True]) \
        .drop_duplicates("arch_hash").number.iloc[:2].tolist()
    assert sorted(finals.finalist_of.tolist()) == sorted(top2)
    assert sorted(trained) == sorted(finals.arch_hash.tolist())
    assert summary["best"]["chosen_by"] == "finalists"
    assert summary["best"]["trial"] in top2

    # whether the inherited accuracies can rank: the median fresh score against chance
    signal = summary["supernet"]["inherited_accuracy"]
    assert signal["candidates"] == len(fresh)
    assert signal["median"] == pytest.approx(fresh.accuracy.median())
    assert signal["chance"] == 0.1 and signal["images"] == h.val.labels.numel()
    assert signal["at_chance"] == (signal["median"] <= 0.1 + 3 * signal["binomial_sd"])
    # 4 steps leave this one at chance, and the run ends saying so
    assert signal["at_chance"] and signal["text"] in caplog.text


def test_inherited_accuracies_at_chance_are_named_as_such():
    # 500 images, 10 classes: one accuracy at chance has a binomial std of 0.0134
    noise = phase.inherited_signal([0.09, 0.112, 0.13, 0.105], num_classes=10, images=500)
    assert noise["binomial_sd"] == pytest.approx((0.1 * 0.9 / 500) ** 0.5)
    assert noise["median"] == pytest.approx(0.1085) and noise["at_chance"]
    assert noise["stds_above_chance"] == pytest.approx(0.0085 / noise["binomial_sd"])
    assert "lie at chance (median 0.108 over 4 candidates; chance 0.100 +- 0.013 on 500 " \
        "images)" in noise["text"] and "--evaluator proxy" in noise["text"]
    # a median just beyond 3 stds is a signal, however low; one candidate far above is not
    edge = 0.1 + 3.01 * noise["binomial_sd"]
    assert not phase.inherited_signal([edge], num_classes=10, images=500)["at_chance"]
    assert phase.inherited_signal([0.1, 0.1, 0.9], num_classes=10, images=500)["at_chance"]
    ranked = phase.inherited_signal([0.55, 0.61, 0.7], num_classes=10, images=2000)
    assert not ranked["at_chance"] and ranked["min"] == 0.55 and ranked["max"] == 0.7
    assert "0.610 over 3 candidates) lies 76.0 binomial stds above chance" in ranked["text"]
    assert phase.inherited_signal([], num_classes=10, images=500) is None


def result_space(cfg):
    from space.search_space import load_space

    return load_space(cfg.space)


def _spec_of(cfg, row):
    from space.deploy import deployment_spec

    params = {k[2:]: (v.item() if hasattr(v, "item") else v) for k, v in row.items()
              if k.startswith("p_")}
    return deployment_spec(result_space(cfg), params, cfg.deploy, "x")


def test_resume_after_an_interruption_in_supernet_training(tiny_space_file, tmp_path,
                                                           monkeypatch):
    """Ctrl-C at step 3 of 8: the checkpoint keeps 3 steps, nothing is scored; --resume
    trains steps 4..8 only, and ends with the weights of an unbroken run."""
    cfg = config(tiny_space_file, trials=2, finalists=1,
                 supernet=SupernetConfig(epochs=2, calib_images=64))
    original = phase.train_supernet
    steps: list[int] = []

    def stopping_at(n):
        def train(*a, on_step, **kw):
            def hook(r):
                steps.append(r.step)
                on_step(r)
                if r.step == n:
                    raise KeyboardInterrupt
            return original(*a, on_step=hook, **kw)
        return train

    out = tmp_path / "run"
    monkeypatch.setattr(phase, "train_supernet", stopping_at(3))
    first = run_search(cfg, out=out)
    assert first.interrupted and steps == [1, 2, 3]
    ckpt = torch.load(out / phase.CHECKPOINT_FILE, map_location="cpu", weights_only=True)
    assert ckpt["step"] == 3 and ckpt["total_steps"] == 8
    assert len(_table(out)) == 0  # no candidate scored on a half-trained supernet

    steps.clear()
    monkeypatch.setattr(phase, "train_supernet", stopping_at(None))
    second = run_search(cfg, out=out, resume=True)
    assert not second.interrupted and steps == [4, 5, 6, 7, 8]
    resumed = torch.load(out / phase.CHECKPOINT_FILE, map_location="cpu", weights_only=True)
    assert [h["step"] for h in resumed["history"]] == list(range(1, 9))
    df = _table(out)
    assert (df[~df.finalist].evaluator == "supernet").all() and (df.state == "COMPLETE").all()

    steps.clear()
    unbroken = tmp_path / "unbroken"
    run_search(cfg, out=unbroken)
    assert steps == list(range(1, 9))
    whole = torch.load(unbroken / phase.CHECKPOINT_FILE, map_location="cpu", weights_only=True)
    assert whole["fingerprint"] == resumed["fingerprint"]
    for k, v in whole["model"].items():
        assert torch.equal(v, resumed["model"][k]), k


def test_resume_after_an_interruption_during_scoring(tiny_space_file, tmp_path, monkeypatch):
    """Ctrl-C in the third scoring: the two scored trials are kept; --resume scores the rest,
    none twice, and does not train the supernet again."""
    cfg = config(tiny_space_file, trials=6, finalists=1)
    out = tmp_path / "run"
    first = Counting(phase.score_candidate, _scored_hash, interrupt_on=2)
    monkeypatch.setattr(phase, "score_candidate", first)
    r1 = run_search(cfg, out=out)
    assert r1.interrupted and len(first.calls) == 2
    df1 = _table(out)
    done1 = df1[df1.state == "COMPLETE"]
    assert len(done1) == 2 and (done1.evaluator == "supernet").all()
    trained_after = torch.load(out / phase.CHECKPOINT_FILE, map_location="cpu",
                               weights_only=True)["model"]

    second = Counting(phase.score_candidate.fn, _scored_hash)
    monkeypatch.setattr(phase, "score_candidate", second)
    steps: list[int] = []
    original = phase.train_supernet
    monkeypatch.setattr(phase, "train_supernet", lambda *a, on_step, **kw: original(
        *a, on_step=lambda r: steps.append(r.step), **kw))
    r2 = run_search(cfg, out=out, resume=True)
    assert not r2.interrupted and steps == []  # the trained supernet is kept, not retrained
    now = torch.load(out / phase.CHECKPOINT_FILE, map_location="cpu", weights_only=True)
    assert all(torch.equal(v, now["model"][k]) for k, v in trained_after.items())

    df = _table(out)
    search = df[~df.finalist]
    complete = search[search.state == "COMPLETE"]
    assert len(complete) == 6
    for _, row in done1.iterrows():  # nothing finished is lost
        kept = df[df.number == row.number].iloc[0]
        assert kept.state == "COMPLETE" and kept.reward == row.reward
    scored = Counter(first.calls + second.calls)
    assert max(scored.values()) == 1  # no candidate scored twice
    fresh = complete[complete.reused_from.isna()]
    assert len(scored) == len(fresh)
    assert (df.state.isin(["COMPLETE", "INTERRUPTED"])).all()


def test_unsupported_space_is_one_line_exit_2_and_writes_nothing(monkeypatch, tmp_path, capsys,
                                                                 tiny_space_text):
    """A space the supernet cannot hold (an op whose block has no elastic form) is named in
    one line, exit 2, before anything is written."""
    from nas.cli import main
    from space.search_space import CONV_OPS

    monkeypatch.setitem(CONV_OPS._items, "resnet", ("bottleneck", 0.25))
    f = tmp_path / "bad.yaml"
    f.write_text(tiny_space_text.replace("op: [dsconv,", "op: [resnet, dsconv,"))
    monkeypatch.chdir(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    code = main(["search", "--target-flops", "2M", "--space", str(f), "--dataset", "synthetic",
                 "--train-samples", "120", "--val-samples", "60", "--evaluator", "supernet",
                 "--calib-images", "64", "--out", "r"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and "op 'resnet'" in err[0] and "no elastic form" in err[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no run folder


@pytest.mark.parametrize("kw, says", [
    (dict(supernet=dict(epochs=0)), "`supernet_epochs >= 1`"),
    (dict(supernet=dict(n_random=-1)), "`supernet_random >= 0`"),
    (dict(supernet=dict(calib_images=0)), "`calib_images >= 1`"),
    (dict(supernet=dict(score_val_samples=0)), "`score_val_samples >= 1`"),
    (dict(finalists=0), "needs `finalists >= 1`"),
    (dict(evaluator="proxy", supernet=dict(epochs=5)), "add --evaluator supernet"),
    (dict(evaluator="oneshot"), "--evaluator must be one of proxy, supernet"),
])
def test_bad_supernet_settings_are_refused(tiny_space_file, kw, says):
    kw = dict(kw)
    with pytest.raises(ValueError, match=re.escape(says)):
        if "supernet" in kw:
            kw["supernet"] = SupernetConfig(**kw["supernet"])
        config(tiny_space_file, **kw)


@pytest.mark.parametrize("kw, says", [
    (dict(supernet=SupernetConfig(calib_images=512)), "`calib_images <= training images`"),
    (dict(supernet=SupernetConfig(calib_images=64, score_val_samples=61)),
     "`score_val_samples <= val_samples`"),
])
def test_settings_the_data_cannot_hold_are_refused_before_the_run_folder(tiny_space_file,
                                                                         tmp_path, kw, says):
    with pytest.raises(ValueError, match=says):
        run_search(config(tiny_space_file, **kw), out=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_fewer_validation_images_score_on_a_fixed_subset(tiny_space_file, tmp_path,
                                                        monkeypatch):
    sizes = Counting(phase.score_candidate, lambda a, kw: len(kw["val_split"]))
    monkeypatch.setattr(phase, "score_candidate", sizes)
    cfg = config(tiny_space_file, trials=2, finalists=1,
                 supernet=SupernetConfig(epochs=1, calib_images=64, score_val_samples=20))
    run_search(cfg, out=tmp_path / "run")
    assert sizes.calls and set(sizes.calls) == {20}


@pytest.mark.slow
def test_resume_after_the_driver_was_killed_in_supernet_training(tiny_space_file, tmp_path):
    """kill -9 once the first periodic checkpoint exists (step 25 of 45): --resume goes on
    from the checkpoint, and the run ends with every step trained once and every candidate
    scored. (Where exactly the kill lands depends on the machine; every assertion holds
    wherever it does.)"""
    import os
    import subprocess
    import sys
    import time

    out = tmp_path / "run"
    args = [sys.executable, "-m", "nas.cli", "search", "--target-flops", "2M", "--space",
            tiny_space_file, "--deploy-resolution", "32", "--proxy-resolution", "16",
            "--dataset", "synthetic", "--train-samples", "120", "--val-samples", "60",
            "--batch-size", "8", "--epochs", "1", "--trials", "4", "--finalists", "1",
            "--finalist-seeds", "1", "--sampler", "random", "--threads", "1",
            "--evaluator", "supernet", "--supernet-epochs", "3", "--calib-images", "64",
            "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    driver = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while not (out / phase.CHECKPOINT_FILE).exists() and driver.poll() is None:
            assert time.monotonic() < deadline, "no checkpoint within 240 s"
            time.sleep(0.05)
    finally:
        driver.kill()  # SIGKILL: no clean-up runs
        driver.wait()
    killed_at = torch.load(out / phase.CHECKPOINT_FILE, map_location="cpu",
                           weights_only=True)["step"]
    assert killed_at >= 25

    r = subprocess.run([*args, "--resume"], env=env, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr
    if killed_at < 45:
        assert "supernet: resuming its training" in r.stderr
        assert f"steps {killed_at + 1}..45 of 45" in r.stderr
    ckpt = torch.load(out / phase.CHECKPOINT_FILE, map_location="cpu", weights_only=True)
    assert [h["step"] for h in ckpt["history"]] == list(range(1, 46))
    df = _table(out)
    search = df[~df.finalist]
    assert (search.state == "COMPLETE").sum() == 4 and (search.evaluator == "supernet").all()
    assert (df[df.finalist].state == "COMPLETE").all() and df.finalist.sum() == 1


@pytest.mark.slow
def test_a_ray_run_scores_as_a_local_run(tiny_space_file, tmp_path):
    """--backend ray: the candidates are scored on the Ray workers (each loads the checkpoint
    the driver trained) and the finalists trained there; the table equals a local run's."""
    import os
    import secrets
    import subprocess
    import sys
    import tempfile

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ray_cluster.py
    import ray_cluster

    temp_dir = Path(tempfile.mkdtemp(prefix="rayl", dir="/tmp"))
    env = {**ray_cluster.ray_env(secrets.token_hex(32), str(temp_dir)), "OMP_NUM_THREADS": "1"}
    args = [sys.executable, "-m", "nas.cli", "search", "--target-flops", "2M", "--space",
            tiny_space_file, "--deploy-resolution", "32", "--proxy-resolution", "16",
            "--dataset", "synthetic", "--train-samples", "120", "--val-samples", "60",
            "--epochs", "1", "--trials", "5", "--sampler", "random", "--finalists", "2",
            "--finalist-seeds", "1", "--threads", "1", "--evaluator", "supernet",
            "--supernet-epochs", "1", "--calib-images", "64"]
    local = subprocess.run([*args, "--out", str(tmp_path / "local")], env=env,
                           capture_output=True, text=True, timeout=300)
    assert local.returncode == 0, local.stderr
    sessions: list[int] = []
    try:
        driver = subprocess.Popen([*args, "--out", str(tmp_path / "ray"), "--backend", "ray",
                                   "--workers", "1"], env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True, start_new_session=True)
        sessions.append(driver.pid)
        _, err = driver.communicate(timeout=500)
    finally:
        leftover = ray_cluster.Cluster(temp_dir=temp_dir, address="", dashboard=None, env=env,
                                       sessions=sessions)
        left = ray_cluster.stop(leftover, grace=10.0)
    assert driver.returncode == 0, err[-3000:]
    assert not left, f"Ray processes left running: {left}"
    a, b = _table(tmp_path / "local"), _table(tmp_path / "ray")
    same = [c for c in a.columns if c not in ("duration_s", "datetime_start",
                                              "datetime_complete", "node")]
    pd.testing.assert_frame_equal(a[same], b[same])
    assert (b.state == "COMPLETE").all() and b.node.str.contains("/").all()
    assert list(b.evaluator) == ["supernet"] * 5 + ["proxy"] * 2
    summary = json.loads((tmp_path / "ray" / "summary.json").read_text())
    assert summary["backend"]["name"] == "ray" and summary["supernet"]["scored"] == 5


def test_trials_per_device_workers_score_as_one_process(tiny_space_file, tmp_path):
    """--trials-per-device 2: two worker processes score (each loads the checkpoint itself);
    the same candidates get the same scores as in a one-process run."""
    from nas.backends import BackendConfig

    cfg = config(tiny_space_file, trials=4, finalists=1)
    run_search(cfg, out=tmp_path / "one")
    run_search(cfg, out=tmp_path / "two", backend=BackendConfig(trials_per_device=2))
    cols = ["arch_hash", "evaluator", "state", "accuracy", "reward"]
    a, b = (_table(tmp_path / d)[cols].sort_values(cols).reset_index(drop=True)
            for d in ("one", "two"))
    pd.testing.assert_frame_equal(a, b)
    assert (a.evaluator == "supernet").sum() == 4


@pytest.mark.slow
def test_resume_after_the_driver_was_killed_during_scoring(tiny_space_file, tmp_path):
    """kill -9 once two candidates are scored: --resume keeps them (same rewards), runs the
    killed driver's trial again, scores the rest once each and does not train again."""
    import os
    import subprocess
    import sys
    import time

    out = tmp_path / "run"
    args = [sys.executable, "-m", "nas.cli", "search", "--target-flops", "2M", "--space",
            tiny_space_file, "--deploy-resolution", "32", "--proxy-resolution", "16",
            "--dataset", "synthetic", "--train-samples", "120", "--val-samples", "60",
            "--epochs", "1", "--trials", "30", "--finalists", "1", "--finalist-seeds", "1",
            "--sampler", "random", "--threads", "1", "--evaluator", "supernet",
            "--supernet-epochs", "1", "--calib-images", "64", "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    driver = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    done = pd.DataFrame()
    try:
        deadline = time.monotonic() + 240
        while driver.poll() is None:
            assert time.monotonic() < deadline, "two candidates not scored within 240 s"
            if (out / "trials.csv").exists():
                try:
                    done = _table(out)
                except (pd.errors.EmptyDataError, pd.errors.ParserError):
                    continue
                if (done.state == "COMPLETE").sum() >= 2:
                    break
            time.sleep(0.05)
    finally:
        driver.kill()  # SIGKILL: no clean-up runs
        driver.wait()
    before = done[done.state == "COMPLETE"]
    assert len(before) >= 2 and (before.evaluator == "supernet").all()
    trained = torch.load(out / phase.CHECKPOINT_FILE, map_location="cpu", weights_only=True)

    r = subprocess.run([*args, "--resume"], env=env, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr
    assert "supernet trained" not in r.stderr  # nothing left to train
    df = _table(out)
    for _, row in before.iterrows():  # nothing finished is lost
        kept = df[df.number == row.number].iloc[0]
        assert kept.state == "COMPLETE" and kept.reward == row.reward
    search = df[~df.finalist]
    complete = search[search.state == "COMPLETE"]
    assert len(complete) == 30 and (complete.evaluator == "supernet").all()
    scored = complete[complete.reused_from.isna()]
    assert scored.arch_hash.is_unique  # each architecture scored once; repeats reuse it
    assert set(complete.arch_hash) == set(scored.arch_hash)
    assert search.state.isin(["COMPLETE", "INTERRUPTED"]).all()
    now = torch.load(out / phase.CHECKPOINT_FILE, map_location="cpu", weights_only=True)
    assert now["step"] == trained["step"] == now["total_steps"]
    assert all(torch.equal(v, now["model"][k]) for k, v in trained["model"].items())
