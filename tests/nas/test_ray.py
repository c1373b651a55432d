"""The ``ray`` backend on real Ray: a local instance, and a two-node cluster on loopback.

Every Ray process here runs with token authentication and a temp dir of its own, and is
stopped by pid at the end (tests/ray_cluster.py); ``ray stop`` is never called, since it would
stop other sessions' Ray too. The drivers run as ``nas search`` subprocesses, as a user runs them.
"""
from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest

from nas.backends import BackendConfig
from nas.evaluate import ProxyConfig
from nas.train import TrainConfig
from results.rundir import open_storage, storage_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ray_cluster.py
import ray_cluster  # noqa: E402

TINY_SPACE = """
name: tiny
stem: 8
head: 32
activation: relu
fixed: {dropout: 0.3, drop_connect: 0.2}
choices: {op: [dsconv, mbconv3], kernel: [3, 5], se_ratio: [0.0, 0.25], skip: [identity],
          filters: [1.0, 2.0], layers: [0, 1]}
stages:
  - [8, 1, 1]
  - [16, 1, 2]
"""

TIME_COLUMNS = ("duration_s", "datetime_start", "datetime_complete", "node")


def search_args(space: Path, out: Path, *, trials: int = 4, epochs: int = 2,
                train_samples: int = 200, dataset: str = "synthetic",
                resolution: int = 16) -> list[str]:
    return ["search", "--target-flops", "2M", "--space", str(space), "--trials", str(trials),
            "--dataset", dataset, "--train-samples", str(train_samples), "--val-samples",
            "60", "--proxy-resolution", str(resolution), "--epochs", str(epochs),
            "--deploy-resolution", "32", "--threads", "1", "--sampler", "random", "--pruner",
            "none", "--finalists", "0", "--out", str(out)]


def nas(*args: str, env: dict[str, str], timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nas.cli", *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


def study_trials(run_dir: Path) -> list[optuna.trial.FrozenTrial]:
    study = optuna.load_study(study_name="stage1",
                              storage=open_storage(storage_url(run_dir, None)))
    return study.get_trials(deepcopy=False)


@pytest.fixture
def tiny_space(tmp_path):
    f = tmp_path / "tiny.yaml"
    f.write_text(TINY_SPACE)
    return f


# ------------------------------------------------------------------------ no Ray needed
@pytest.mark.parametrize("kw, fragment", [
    (dict(name="spark"), "unknown backend 'spark'"),
    (dict(workers=2), "--workers needs --backend ray"),
    (dict(address="10.0.0.1:6379"), "--address needs --backend ray"),
    (dict(gpus_per_trial=1), "--gpus-per-trial needs --backend ray"),
    (dict(name="ray", workers=0), "`workers >= 1` must hold"),
    (dict(name="ray", cpus_per_trial=0), "`cpus_per_trial > 0` must hold"),
    (dict(name="ray", max_retries=-1), "`max_retries >= 0` must hold"),
])
def test_bad_backend_settings_are_clear_errors(kw, fragment):
    with pytest.raises((KeyError, ValueError), match=fragment.replace("(", r"\(")):
        BackendConfig(**kw)


def test_backend_flags_apply_over_a_resumed_runs_settings():
    from nas.commands.common import backend_from_args

    saved = BackendConfig(name="ray", address="10.0.0.5:6379", workers=4).to_dict()
    given = {"workers": 2, "cpus_per_trial": 2.0, "epochs": 3}
    b = backend_from_args(given, saved)
    assert (b.name, b.address, b.workers, b.cpus_per_trial) == ("ray", "10.0.0.5:6379", 2, 2.0)
    assert given == {"epochs": 3}  # backend flags are taken out, the rest left
    assert backend_from_args({"backend": "local"}, saved) == BackendConfig()


def test_cli_bad_backend_flag_is_one_line_and_exit_2(tmp_path):
    r = nas("search", "--target-flops", "2M", "--workers", "3", "--out", str(tmp_path / "r"),
            env=dict(os.environ))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [
        "nas: error: --workers needs --backend ray: the local backend runs one trial at a time "
        "in this process; add --backend ray"]


def test_an_address_where_no_cluster_listens_is_one_line_and_exit_2(tmp_path):
    port = ray_cluster.free_port()  # nothing listens there once the probe socket is closed
    r = nas("search", "--target-flops", "2M", "--dataset", "synthetic", "--backend", "ray",
            "--address", f"127.0.0.1:{port}", "--out", str(tmp_path / "r"),
            env=ray_cluster.ray_env(secrets.token_hex(32)), timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    line = [ln for ln in r.stderr.splitlines() if ln.startswith("nas: error:")]
    assert len(line) == 1 and f"--address 127.0.0.1:{port}: cannot connect" in line[0]
    assert not (tmp_path / "r").exists()


def test_the_local_path_never_imports_ray():
    code = "import sys, nas.search, nas.backends, nas.commands.search; print('ray' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.stdout.strip() == "False", r.stderr


def test_a_trial_result_does_not_depend_on_what_ran_before_in_the_process():
    """A Ray worker runs a different sequence of trials than a local run (and a retried trial
    starts in a fresh process): dropout and drop-connect must draw from the trial's seed."""
    import torch

    from nas.evaluate import evaluate_proxy
    from space import ArchSpec, StageSpec, StemSpec

    spec = ArchSpec(name="drop", stem=StemSpec(8),
                    stages=(StageSpec("mbconv", 2, 3, 2, 16, 3.0, 0.25),),
                    head_channels=32, dropout=0.5, drop_connect=0.5, in_channels=1,
                    num_classes=10, resolution=16)
    proxy = ProxyConfig(dataset="synthetic", resolution=16, train_samples=200, val_samples=100,
                        train=TrainConfig(epochs=1, batch_size=32, threads=1))
    first = evaluate_proxy(spec, proxy, seed=3)
    torch.manual_seed(12345)  # another history of the global generator
    torch.rand(1000)
    state = torch.random.get_rng_state()
    again = evaluate_proxy(spec, proxy, seed=3)
    assert [e.val_accuracy for e in again.epochs] == [e.val_accuracy for e in first.epochs]
    assert [e.train_loss for e in again.epochs] == [e.train_loss for e in first.epochs]
    assert torch.equal(torch.random.get_rng_state(), state)  # and the caller's is left alone


# ------------------------------------------------------------------------- local Ray
def _training_pid(pids: set[int]) -> int | None:
    """Among ``pids``, a Ray worker running a Tune trial right now (by its process title)."""
    for pid in pids:
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if title.startswith(b"ray::ImplicitFunc.train"):
            return pid
    return None


def _session_pids(sid: int) -> set[int]:
    out = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getsid(int(entry.name)) == sid:
                    out.add(int(entry.name))
            except OSError:
                pass
    return out


@pytest.fixture
def local_ray_env():
    """Environment for a driver that starts Ray on this machine, in a temp dir of its own;
    afterwards no process of that Ray may be left (any found are killed, and the test fails)."""
    temp_dir = Path(tempfile.mkdtemp(prefix="rayl", dir="/tmp"))
    env = ray_cluster.ray_env(secrets.token_hex(32), str(temp_dir))
    sessions: list[int] = []
    yield env, sessions
    leftover = ray_cluster.Cluster(temp_dir=temp_dir, address="", dashboard=None, env=env,
                                   sessions=sessions)
    left = ray_cluster.stop(leftover, grace=10.0)
    assert not left, f"Ray processes left running: {left}"


@pytest.mark.slow
def test_local_ray_run_matches_a_local_run_though_a_worker_is_killed(tiny_space, tmp_path,
                                                                       local_ray_env):
    """Same sampler, same seeds: the Ray run's table and best.json equal the local run's, even
    though one trial's worker is killed mid-trial (Tune starts it again, with the same seed)."""
    env, sessions = local_ray_env
    args = dict(trials=3, epochs=2, train_samples=2000, dataset="synthetic:train=2100")
    r = nas(*search_args(tiny_space, tmp_path / "local", **args), env=env)
    assert r.returncode == 0, r.stderr
    log = (tmp_path / "driver.log").open("w")
    driver = subprocess.Popen([sys.executable, "-m", "nas.cli",
                               *search_args(tiny_space, tmp_path / "ray", **args),
                               "--backend", "ray", "--workers", "1"],
                              env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)  # Ray's processes join its session
    sessions.append(driver.pid)
    killed = None
    try:
        deadline = time.monotonic() + 180
        while killed is None and driver.poll() is None and time.monotonic() < deadline:
            killed = _training_pid(_session_pids(driver.pid) - {driver.pid})
            if killed is not None:
                os.kill(killed, signal.SIGKILL)
            time.sleep(0.05)
        driver.wait(timeout=300)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
        log.close()
    out = (tmp_path / "driver.log").read_text()
    assert killed is not None, "no trial was seen running"
    assert driver.returncode == 0, out[-3000:]
    a = pd.read_csv(tmp_path / "local" / "trials.csv")
    b = pd.read_csv(tmp_path / "ray" / "trials.csv")
    assert list(a.columns) == list(b.columns)
    same = [c for c in a.columns if c not in TIME_COLUMNS]
    pd.testing.assert_frame_equal(a[same], b[same])
    assert (b.state == "COMPLETE").all() and b.node.str.contains("/").all()
    assert json.loads((tmp_path / "local" / "best.json").read_text()) == \
        json.loads((tmp_path / "ray" / "best.json").read_text())
    retried = [t for t in study_trials(tmp_path / "ray") if t.user_attrs.get("retries")]
    assert len(retried) == 1 and retried[0].user_attrs["retries"] == 1
    assert "died" in retried[0].user_attrs["retry_errors"][0]
    assert "retry 1 of 2" in out
    summary = json.loads((tmp_path / "ray" / "summary.json").read_text())
    assert summary["backend"]["retries"] == 1
    assert summary["backend"]["retried_trials"] == {str(retried[0].number): 1}
    assert summary["best"] == json.loads((tmp_path / "local" / "summary.json").read_text())["best"]
    config = json.loads((tmp_path / "ray" / "config.json").read_text())
    assert config["backend"] == {"name": "ray", "address": None, "workers": 1,
                                 "cpus_per_trial": 1.0, "gpus_per_trial": 0.0, "max_retries": 2,
                                 "trials_per_device": 1}
    assert all(len(t.user_attrs["val_accuracy_per_epoch"]) == 2
               for t in study_trials(tmp_path / "ray"))


@pytest.mark.slow
def test_local_ray_gridsearch_matches_a_local_gridsearch(tmp_path, local_ray_env):
    """Stage 2's points as Ray trials, two at a time: the same grid table (but for times and
    nodes), coefficients.json and family as points trained here one by one."""
    from space import ArchSpec, StageSpec, StemSpec, save_spec

    env, _ = local_ray_env
    base = ArchSpec(name="tiny-b0", stem=StemSpec(8),
                    stages=(StageSpec("mbconv", 1, 3, 1, 8, 1.0, 0.25),
                            StageSpec("mbconv", 2, 3, 2, 16, 3.0, 0.25)),
                    head_channels=32, in_channels=1, num_classes=10, resolution=32)
    base_file = save_spec(base, tmp_path / "tiny.json")
    args = ["--base", str(base_file), "--step", "0.5", "--tolerance", "0.25", "--family", "0-2",
            "--constraint", "formula", "--finalists", "0",  # the 3 points of test_search.py
            "--dataset", "synthetic", "--train-samples", "200", "--val-samples", "60",
            "--proxy-resolution", "16", "--batch-size", "32", "--threads", "1"]

    def gridsearch(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "gridsearch.cli", *args, *extra], env=env,
                              capture_output=True, text=True, timeout=300)

    r = gridsearch("--out", str(tmp_path / "local"))
    assert r.returncode == 0, r.stderr[-3000:]
    r = gridsearch("--out", str(tmp_path / "ray"), "--backend", "ray", "--workers", "2")
    assert r.returncode == 0, r.stderr[-3000:]
    a = pd.read_csv(tmp_path / "local" / "grid.csv")
    b = pd.read_csv(tmp_path / "ray" / "grid.csv")
    assert list(a.columns) == list(b.columns) and len(b) == 3
    # reused_from may differ: two points that train alike can run at once on Ray
    same = [c for c in a.columns if c not in (*TIME_COLUMNS, "reused_from")]
    pd.testing.assert_frame_equal(a[same], b[same])
    assert (b.state == "COMPLETE").all() and b.node.str.contains("/").all()
    coef = [json.loads((tmp_path / d / "coefficients.json").read_text()) for d in ("local", "ray")]
    assert coef[0] == coef[1]
    for i in range(3):
        assert (tmp_path / "local" / "family" / f"b{i}.json").read_text() == \
            (tmp_path / "ray" / "family" / f"b{i}.json").read_text().replace(
                str(tmp_path / "ray"), str(tmp_path / "local"))
    config = json.loads((tmp_path / "ray" / "config.json").read_text())
    assert config["backend"]["name"] == "ray" and config["backend"]["workers"] == 2


# ------------------------------------------------------------- two nodes on loopback
@pytest.fixture(scope="module")
def cluster():
    c = ray_cluster.start(head_cpus=1, worker_cpus=1, dashboard=True)
    try:
        yield c
    finally:
        left = ray_cluster.stop(c)
        assert not left, f"cluster processes left running: {left}"


def _under_way(run_dir: Path) -> bool:
    """Whether a trial is RUNNING in the study and has reported an epoch."""
    if not (run_dir / "study.journal").exists():
        return False
    try:
        return any(t.state.name == "RUNNING" and t.intermediate_values
                   for t in study_trials(run_dir))
    except Exception:  # the study is not created yet
        return False


@pytest.mark.slow
def test_cluster_runs_trials_on_both_nodes(cluster, tiny_space, tmp_path):
    out = tmp_path / "r"
    # Trials long enough (~10 s) that the second node's worker process is up before the first
    # trial ends; else Tune hands the waiting trial to the first node's idle worker (it reuses
    # workers), and both would run on one node.
    args = search_args(tiny_space, out, trials=2, epochs=4, train_samples=2000,
                       dataset="synthetic:train=2100", resolution=32)
    r = nas(*args, "--backend", "ray", "--address", cluster.address, "--workers", "2",
            env=cluster.env)
    assert r.returncode == 0, r.stderr[-3000:]
    df = pd.read_csv(out / "trials.csv")
    assert len(df) == 2 and (df.state == "COMPLETE").all()
    # Each node has one CPU, so the two trials, started together, run one per node.
    ids = cluster.node_ids()
    assert {n.split("/")[1] for n in df.node} == {i[:8] for i in ids}
    assert {t.user_attrs["ray_node_id"] for t in study_trials(out)} == set(ids)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["backend"]["nodes"] == 2 and summary["backend"]["retries"] == 0


@pytest.mark.slow
def test_resume_after_the_driver_is_killed(cluster, tiny_space, tmp_path):
    out = tmp_path / "r"
    args = search_args(tiny_space, out, trials=4, epochs=2, train_samples=2000,
                       dataset="synthetic:train=2100")
    driver = subprocess.Popen([sys.executable, "-m", "nas.cli", *args, "--backend", "ray",
                               "--address", cluster.address, "--workers", "1"],
                              env=cluster.env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        done = pd.DataFrame()
        while time.monotonic() < deadline and driver.poll() is None:
            if (out / "trials.csv").exists():
                done = pd.read_csv(out / "trials.csv")
                if (done.state == "COMPLETE").sum() >= 1 and _under_way(out):
                    break
            time.sleep(0.1)
        assert driver.poll() is None, "the driver ended before it could be killed"
        driver.kill()  # SIGKILL: no clean-up runs
        driver.wait()
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    before = {t.number: t for t in study_trials(out)}
    finished = {n for n, t in before.items() if t.state.name == "COMPLETE"}
    assert finished and any(t.state.name == "RUNNING" for t in before.values())
    r = nas("search", "--resume", "--out", str(out), env=cluster.env, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    after = {t.number: t for t in study_trials(out)}
    for n in finished:  # finished trials are never run again
        assert after[n].datetime_complete == before[n].datetime_complete
        assert after[n].user_attrs == before[n].user_attrs
    complete = [t for t in after.values() if t.state.name == "COMPLETE"]
    assert len(complete) == 4
    stale = [t for t in after.values() if t.state.name == "FAIL"]
    # the dead driver's trials were failed by number (Optuna's public tell); the table says why
    table = pd.read_csv(out / "trials.csv").set_index("number")
    assert stale and all(table.loc[t.number, "fail_reason"] == "interrupted" for t in stale)
    rerun = {t.user_attrs.get("retry_of") for t in complete} - {None}
    assert rerun == {t.number for t in stale}  # each interrupted trial ran again
    config = json.loads((out / "config.json").read_text())
    assert config["backend"]["address"] == cluster.address  # the resumed run kept its backend


@pytest.mark.slow
def test_ray_job_submit_runs_a_search_on_the_cluster(cluster, tiny_space, tmp_path):
    out = tmp_path / "job"
    entry = [sys.executable, "-m", "nas.cli", *search_args(tiny_space, out, trials=2, epochs=1),
             "--backend", "ray"]
    r = cluster.run("job", "submit", "--address", cluster.dashboard, "--", *entry, timeout=300)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    assert "B0 = trial" in r.stdout
    df = pd.read_csv(out / "trials.csv")
    assert len(df) == 2 and (df.state == "COMPLETE").all()
    assert set(df.node.str.split("/").str[1]) <= {i[:8] for i in cluster.node_ids()}
    assert json.loads((out / "config.json").read_text())["backend"]["address"] is None
    assert (out / "best.json").exists()


@pytest.mark.slow
def test_a_dataset_missing_on_the_nodes_is_one_clear_error(cluster, tiny_space, tmp_path):
    missing = tmp_path / "no-such-data"
    r = nas("search", "--target-flops", "2M", "--space", str(tiny_space), "--dataset",
            "fashion-mnist", "--data-dir", str(missing), "--backend", "ray", "--address",
            cluster.address, "--out", str(tmp_path / "r"), env=cluster.env)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-3000:]
    line = [ln for ln in r.stderr.splitlines() if ln.startswith("nas: error:")]
    assert len(line) == 1
    assert "cannot be read on 2 of 2 Ray node(s)" in line[0] and str(missing) in line[0]
    for node_id in cluster.node_ids():
        assert f"/{node_id[:8]} ({ray_cluster.NODE_IP})" in line[0]
    assert not (tmp_path / "r" / "config.json").exists()  # nothing was started


@pytest.mark.slow
def test_ladder_and_finalists_on_ray_match_a_local_run(tiny_space, tmp_path, local_ray_env,
                                                       hand_table):
    """The ladder's rule (the asha pruner locally, its Tune scheduler on Ray) and the finalists
    give the same table and the same B0 on both backends: one trial at a time, same seeds. The
    search targets latency, so the Tune trainable reports the reward of the predicted latency
    (the candidate's cost), as the local runner does."""
    from space.latency import save_table

    env, sessions = local_ray_env
    table = tmp_path / "table.json"
    save_table(hand_table(tiny_space), table)
    args = dict(trials=6, epochs=2, train_samples=300, dataset="synthetic")
    extra = ["--pruner", "asha", "--rungs", "1,2", "--finalists", "2", "--finalist-seeds", "2",
             "--target-latency", "3ms", "--latency-table", str(table)]
    r = nas(*_without_target(search_args(tiny_space, tmp_path / "local", **args)), *extra,
            env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    r = nas(*_without_target(search_args(tiny_space, tmp_path / "ray", **args)), *extra,
            "--backend", "ray", "--workers", "1", env=env, timeout=400)
    assert r.returncode == 0, r.stderr[-3000:]
    a = pd.read_csv(tmp_path / "local" / "trials.csv")
    b = pd.read_csv(tmp_path / "ray" / "trials.csv")
    same = [c for c in a.columns if c not in TIME_COLUMNS]
    pd.testing.assert_frame_equal(a[same], b[same])
    assert b.finalist.sum() == 4 and (b[b.finalist].state == "COMPLETE").all()
    assert b.latency_ms.notna().all()
    # pruning and the rewards followed the latency: reward = acc x (latency / 3 ms)^-0.07
    done = b[b.state == "COMPLETE"]
    assert (done.reward - done.accuracy * (done.latency_ms / 3.0) ** -0.07).abs().max() < 1e-9
    local, ray_ = (json.loads((tmp_path / d / "best.json").read_text()) for d in ("local", "ray"))
    assert _unmeasured(local) == _unmeasured(ray_)  # measured latency differs run to run


def _without_target(argv: list[str]) -> list[str]:
    i = argv.index("--target-flops")
    return argv[:i] + argv[i + 2:]


def _unmeasured(best: dict) -> dict:
    """best.json without the end-to-end timings (the only part that is measured, not
    computed)."""
    meta = {k: v for k, v in best["meta"].items() if k != "latency_ms_measured"}
    meta["finalists"] = [{k: v for k, v in row.items() if k != "latency_ms_measured"}
                         for row in meta.get("finalists", [])]
    return {**best, "meta": meta}
