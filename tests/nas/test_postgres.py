"""Many drivers, one study, against a real PostgreSQL server (tests/pg_server.py).

The drivers are real ``nas search`` processes on synthetic data; each names itself with
$EFFICIENTNAS_NODE, which every trial records as its ``node``, so a test can tell who ran what.
All traffic is on loopback; every process a test starts is stopped at its end.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/pg_server.py
import pg_server  # noqa: E402

from nas.cli import main as nas_main  # noqa: E402
from results.rundir import read_config  # noqa: E402

PROXY = ["--dataset", "synthetic", "--train-samples", "64", "--val-samples", "32", "--epochs",
         "1", "--proxy-resolution", "16", "--threads", "1",
         "--finalists", "0"]  # these tests count search trials; finalists: test_finalists.py
NAS = str(Path(sys.executable).with_name("nas"))


@pytest.fixture(scope="module")
def server():
    # its own folder under /tmp: the postgres user cannot enter pytest's root-only tmp_path
    root = Path(tempfile.mkdtemp(prefix="efficientnas-pg-"))
    try:
        srv = pg_server.PostgresServer(root)
    except FileNotFoundError as e:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"no PostgreSQL server to start ({e}); `make test` installs Debian's "
                    f"postgresql package")
    try:
        srv.start()
        yield srv
    finally:
        try:
            srv.stop("immediate")
        except subprocess.CalledProcessError:
            pass  # not running
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def db(server, request):
    name = request.node.name.lower().replace("[", "_").replace("]", "")[:50]
    return server.create_database(name)


@pytest.fixture
def space(tiny_space_file):
    return tiny_space_file


class Drivers:
    """``nas search`` processes, each killed at the end if still running."""

    def __init__(self, cwd: Path) -> None:
        self.cwd, self.procs = cwd, {}

    def start(self, node: str, *args: str, heavier: bool = False,
              command: str = NAS) -> subprocess.Popen:
        proxy = list(PROXY) if command == NAS else []  # gridsearch: the test passes its own
        if heavier:  # trials long enough to kill one in the middle
            proxy[proxy.index("--train-samples") + 1] = "512"  # of synthetic's 600
            # about 2 s a training: at 6 epochs (0.6 s) a test waiting for the second driver
            # to be caught training timed out in 2 of 8 runs (the tiny space has few distinct
            # networks, and the other trials reuse them in no time); at 20, 6 of 6 passed
            proxy[proxy.index("--epochs") + 1] = "20"
        env = {**os.environ, "EFFICIENTNAS_NODE": node, "OMP_NUM_THREADS": "1"}
        log = open(self.cwd / f"{node}.log", "w")
        cmd = [NAS, "search"] if command == NAS else [command]
        p = subprocess.Popen([*cmd, *proxy, *args], cwd=self.cwd, env=env, stdout=log,
                             stderr=subprocess.STDOUT, start_new_session=True)
        self.procs[node] = p
        return p

    def wait(self, timeout: float = 150) -> dict[str, int]:
        return {n: p.wait(timeout=timeout) for n, p in self.procs.items()}

    def log(self, node: str) -> str:
        return (self.cwd / f"{node}.log").read_text()

    def stop(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


@pytest.fixture
def drivers(tmp_path):
    d = Drivers(tmp_path)
    yield d
    d.stop()


def first(space, url, trials, *extra):
    return ["--space", space, "--target-flops", "2M", "--deploy-resolution", "32", "--pruner",
            "none", "--trials", str(trials), "--storage", url, "--out", "r0", *extra]


def join(url, out, *extra):
    return ["--storage", url, "--study-name", "r0", "--join", "--out", out, *extra]


def load(url, name="r0"):
    return optuna.load_study(study_name=name, storage=url)


def wait_study(url, name="r0"):
    pg_server.wait_for(lambda: name in optuna.get_all_study_names(url), timeout=60,
                       what=f"study {name}")


def counted(study):
    stale = set(study.user_attrs.get("interrupted_trials", []))
    return [t for t in study.get_trials() if t.state in
            (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL) and t.number not in stale]


def trained_keys(study):
    """Reuse keys of the trials that trained (not the reused ones), interrupted ones left out."""
    stale = set(study.user_attrs.get("interrupted_trials", []))
    return [t.user_attrs["train_key"] for t in study.get_trials()
            if t.user_attrs.get("reused_from") is None and t.number not in stale
            and "train_key" in t.user_attrs]


# ----------------------------------------------------------------------------- concurrency
@pytest.mark.slow
def test_three_drivers_share_one_study(server, db, space, drivers, tmp_path):
    trials, k, seeds = 24, 2, 2
    finals = ["--finalists", str(k), "--finalist-seeds", str(seeds)]  # after PROXY's 0: wins
    drivers.start("d0", *first(space, db, trials, *finals))
    wait_study(db)
    drivers.start("d1", *join(db, "r1", *finals))  # the study's own values: accepted
    drivers.start("d2", *join(db, "r2", *finals))
    rcs = drivers.wait()
    assert rcs == {"d0": 0, "d1": 0, "d2": 0}, {n: drivers.log(n)[-2000:] for n in rcs}
    study = load(db)
    states = Counter(t.state for t in study.get_trials())
    # exactly --trials searched and k x seeds finalist runs, none lost, none extra
    assert states == {TrialState.COMPLETE: trials + k * seeds}
    final = [t for t in study.get_trials() if t.user_attrs.get("finalist")]
    runs = {(t.user_attrs["finalist_of"], t.user_attrs["finalist_seed"]) for t in final}
    assert len(final) == len(runs) == k * seeds  # the drivers never enqueued a run twice
    assert len({of for of, _ in runs}) == k
    keys = trained_keys(study)
    assert len(keys) == len(set(keys))  # no network trained twice
    for t in study.get_trials():
        if t.user_attrs.get("reused_from") is not None:
            src = study.trials[t.user_attrs["reused_from"]]
            assert src.user_attrs["train_key"] == t.user_attrs["train_key"]
            assert t.user_attrs["accuracy"] == src.user_attrs["accuracy"]
    nodes = Counter(t.user_attrs["node"] for t in study.get_trials())
    assert len(nodes) >= 2, nodes  # the drivers really shared it
    for out in ("r0", "r1", "r2"):  # every driver rebuilt its outputs from the database
        cfg = read_config(tmp_path / out)
        assert (cfg["storage"], cfg["study_name"]) == (db, "r0")
        assert len((tmp_path / out / "trials.csv").read_text().splitlines()) == \
            trials + k * seeds + 1
        assert (tmp_path / out / "best.json").is_file()


# 3 stages x 72 choices each: 373,248 distinct networks, so two honest samplers drawing 8 do
# not collide, and each trains in about a second
WIDE_SPACE = """
name: wide
stem: 8
head: 32
activation: relu
fixed: {dropout: 0.0, drop_connect: 0.0}
choices: {op: [dsconv, mbconv3], kernel: [3, 5], se_ratio: [0.0, 0.25], skip: [identity],
          filters: [1.0, 1.5, 2.0], layers: [0, 1, 2]}
stages:
  - [8, 1, 1]
  - [16, 1, 2]
  - [24, 1, 2]
"""


@pytest.mark.slow
def test_two_drivers_with_one_seed_propose_their_own_networks(server, db, drivers, tmp_path):
    """Issue 26: the same command with --seed 0 on two machines. Each driver samples with its
    own seed (nas.engine.study.driver_seed), so the study tries as many distinct networks as
    one driver would, instead of the second replaying the first's proposals as reused copies."""
    space = tmp_path / "wide.yaml"
    space.write_text(WIDE_SPACE)
    trials = 8
    drivers.start("d0", *first(str(space), db, trials, "--seed", "0"), heavier=True)
    wait_study(db)
    drivers.start("d1", *join(db, "r1", "--seed", "0"), heavier=True)
    rcs = drivers.wait()
    assert rcs == {"d0": 0, "d1": 0}, {n: drivers.log(n)[-2000:] for n in rcs}
    study = load(db)
    done = counted(study)
    assert len(done) == trials and all(t.state == TrialState.COMPLETE for t in done)
    by = Counter(t.user_attrs["node"] for t in done)
    assert by["d1"] >= 1, by  # the second driver really took trials
    assert len({t.user_attrs["arch_hash"] for t in done}) == trials  # as one driver: 8
    assert all(t.user_attrs.get("reused_from") is None for t in done)
    assert study.user_attrs["drivers"] == 2
    assert "driver 1 of this study" in drivers.log("d1")
    for out in ("r0", "r1"):
        rows = (tmp_path / out / "trials.csv").read_text().splitlines()
        col = rows[0].split(",").index("proposed_by")
        assert {r.split(",")[col] for r in rows[1:]} == {"sampler"}


@pytest.mark.slow
def test_killed_driver_trial_is_retried_once(server, db, space, drivers):
    trials = 10
    drivers.start("d0", *first(space, db, trials, "--heartbeat", "1"), heavier=True)
    wait_study(db)
    drivers.start("d1", *join(db, "r1", "--heartbeat", "1"), heavier=True)

    def victim():
        running = [t for t in load(db).get_trials(states=(TrialState.RUNNING,))
                   if t.user_attrs.get("node") == "d1" and "seed" in t.user_attrs]  # training
        return running[0].number if running else None

    number = pg_server.wait_for(victim, timeout=90, every=0.05, what="a trial of d1")
    os.killpg(drivers.procs["d1"].pid, signal.SIGKILL)
    assert drivers.procs["d1"].wait(timeout=10) == -signal.SIGKILL
    # the dead driver is started again on its own run folder: --resume on a shared study fails
    # only trials whose heartbeat is stale, never the ones d0 is running
    drivers.start("d2", "--resume", "--out", "r1", "--heartbeat", "1", heavier=True)
    rcs = {n: p.wait(timeout=150) for n, p in drivers.procs.items() if n != "d1"}
    assert rcs == {"d0": 0, "d2": 0}, {n: drivers.log(n)[-2000:] for n in rcs}
    study = load(db)
    dead = study.trials[number]
    assert dead.state == TrialState.FAIL
    assert number in study.user_attrs["interrupted_trials"]
    retries = [t for t in study.get_trials() if t.system_attrs.get("failed_trial") == number]
    assert len(retries) == 1  # run again, once
    assert retries[0].state == TrialState.COMPLETE
    assert retries[0].user_attrs["node"] in ("d0", "d2")
    assert retries[0].params == dead.params
    others = [t for t in study.get_trials() if t.number != number]
    assert all(t.state == TrialState.COMPLETE for t in others)  # the others untouched
    assert len(counted(study)) == trials
    keys = trained_keys(study)
    assert len(keys) == len(set(keys))


@pytest.mark.slow
def test_server_restart_loses_nothing(server, db, space, drivers):
    trials = 14
    drivers.start("d0", *first(space, db, trials, "--heartbeat", "2"), heavier=True)
    wait_study(db)
    drivers.start("d1", *join(db, "r1", "--heartbeat", "2"), heavier=True)
    pg_server.wait_for(lambda: len(load(db).get_trials(states=(TrialState.COMPLETE,))) >= 3,
                       timeout=90, what="3 finished trials")
    before = {t.number: t.values for t in load(db).get_trials(states=(TrialState.COMPLETE,))}
    server.stop("fast")
    server.start()
    rcs = drivers.wait()
    for node, rc in rcs.items():  # each reconnected, or ended in one clear line
        if rc != 0:
            assert rc == 2, drivers.log(node)[-2000:]
            assert "lost the study storage" in drivers.log(node) or \
                "cannot open the study storage" in drivers.log(node)
            assert "Traceback" not in drivers.log(node)
    study = load(db)
    after = {t.number: t.values for t in study.get_trials(states=(TrialState.COMPLETE,))}
    assert all(after.get(n) == v for n, v in before.items())  # nothing finished is lost
    if len(counted(study)) < trials:  # a driver that failed: another one finishes the study
        d2 = drivers.start("d2", *join(db, "r2", "--heartbeat", "2"), heavier=True)
        assert d2.wait(timeout=150) == 0, drivers.log("d2")[-2000:]
        study = load(db)
    assert len(counted(study)) == trials


# ----------------------------------------------------------------------------- the journal
@pytest.mark.slow
def test_journal_has_one_driver(space, drivers, tmp_path):
    """The journal's rule: one driver. The second and third are refused in one line, exit 2,
    and the study ends at exactly --trials with nothing lost."""
    journal = tmp_path / "shared.journal"
    url = f"journal:{journal}"
    args = ["--space", space, "--target-flops", "2M", "--deploy-resolution", "32", "--pruner",
            "none", "--trials", "12", "--storage", url]
    drivers.start("d0", *args, "--out", "r0")
    pg_server.wait_for(lambda: journal.is_file(), timeout=60, what="the journal")
    second = drivers.start("d1", *args, "--out", "r1")
    third = drivers.start("d2", "--storage", url, "--study-name", "stage1", "--join",
                          "--out", "r2")
    assert second.wait(timeout=120) == 2 and third.wait(timeout=120) == 2
    assert drivers.procs["d0"].wait(timeout=150) == 0, drivers.log("d0")[-2000:]
    refusal = [ln for ln in drivers.log("d1").splitlines() if ": error: " in ln]
    assert len(refusal) == 1 and "one driver" in refusal[0], drivers.log("d1")
    assert "--join needs --storage with a database URL" in drivers.log("d2")
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(journal)))
    study = optuna.load_study(study_name="stage1", storage=storage)
    assert Counter(t.state for t in study.get_trials()) == {TrialState.COMPLETE: 12}
    assert {t.user_attrs["node"] for t in study.get_trials()} == {"d0"}
    assert not (tmp_path / "r1" / "config.json").exists()


# ----------------------------------------------------------------------------- bad input
def _one_line_error(capsys, argv):
    rc = nas_main(argv)
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    errors = [ln for ln in err if ": error: " in ln]
    assert rc == 2, err
    assert len(errors) == 1 and "Traceback" not in "\n".join(err), err
    return errors[0]


def test_bad_storage_is_one_line(server, space, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    base = ["search", *PROXY, "--space", space, "--target-flops", "2M", "--trials", "1"]
    line = _one_line_error(capsys, [*base, "--storage", "nosuchdb://x/y", "--out", "a"])
    assert "cannot open the study storage" in line
    wrong = server.url(password="wrong")
    line = _one_line_error(capsys, [*base, "--storage", wrong, "--out", "b"])
    assert "password authentication failed" in line and "wrong" not in line  # redacted
    down = f"postgresql://postgres:x@127.0.0.1:{pg_server.free_port()}/postgres"
    line = _one_line_error(capsys, [*base, "--storage", down, "--out", "c"])
    assert "Connection refused" in line or "connection" in line.lower()
    for out in ("a", "b", "c"):
        assert not (tmp_path / out).exists()  # bad input leaves no trace


def test_join_refusals_leave_the_study_as_it_was(server, db, space, capsys, tmp_path,
                                                 monkeypatch):
    monkeypatch.chdir(tmp_path)
    line = _one_line_error(capsys, ["search", "--storage", db, "--study-name", "nope",
                                    "--join", "--out", "j1"])
    assert "--join found no study 'nope'" in line
    assert optuna.get_all_study_names(db) == []  # nothing was created
    assert nas_main(["search", *PROXY, *first(space, db, 2)]) == 0
    capsys.readouterr()
    trials = len(load(db).get_trials())
    from gridsearch.cli import main as grid_main

    rc = grid_main(["--storage", db, "--study-name", "r0", "--join", "--out", "g1"])
    err = capsys.readouterr().err
    assert rc == 2 and "made by stage 1, not stage 2" in err, err
    line = _one_line_error(capsys, ["search", *PROXY, *first(space, db, 2)[:-2], "--out", "r0b",
                                    "--study-name", "r0"])
    assert "already exists" in line and "--join" in line
    line = _one_line_error(capsys, ["search", "--storage", db, "--study-name", "r0", "--join",
                                    "--out", "j2", "--epochs", "5"])
    assert "--epochs" in line  # a joined study keeps its settings
    assert len(load(db).get_trials()) == trials and optuna.get_all_study_names(db) == ["r0"]


# ----------------------------------------------------------------------------- moving a run
def test_copy_to_moves_a_journal_run(server, db, space, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["--space", space, "--target-flops", "2M", "--deploy-resolution", "32", "--pruner",
            "none", "--trials", "3", "--out", "j"]
    assert nas_main(["search", *PROXY, *args]) == 0
    capsys.readouterr()
    assert nas_main(["results", "j", "--json"]) == 0
    here = capsys.readouterr().out
    assert nas_main(["results", "j", "--copy-to", db, "--json"]) == 0
    moved = capsys.readouterr().out
    assert moved == here  # the same trials, now read from PostgreSQL
    cfg = read_config(tmp_path / "j")
    assert (cfg["storage"], cfg["study_name"]) == (db, "j")
    assert len(load(db, "j").get_trials(states=(TrialState.COMPLETE,))) == 3
    # a further driver can join the moved study, and the budget holds: nothing more to run
    assert nas_main(["search", "--storage", db, "--study-name", "j", "--join", "--out",
                     "j2"]) == 0
    assert len(load(db, "j").get_trials()) == 3
    line = _one_line_error(capsys, ["results", "j", "--copy-to", db])
    assert "already exists" in line


# ----------------------------------------------------------------------------- stage 2 too
@pytest.mark.slow
def test_two_gridsearch_drivers_share_one_grid(server, db, drivers, tmp_path):
    from space import ArchSpec, StageSpec, StemSpec, save_spec

    base = save_spec(ArchSpec(name="tiny-b0", stem=StemSpec(8),
                              stages=(StageSpec("mbconv", 1, 3, 1, 8, 1.0, 0.25),
                                      StageSpec("mbconv", 2, 3, 2, 16, 3.0, 0.25)),
                              head_channels=32, in_channels=1, num_classes=10, resolution=32),
                     tmp_path / "tiny.json")
    grid = str(Path(NAS).with_name("gridsearch"))
    data = ["--dataset", "synthetic", "--train-samples", "256", "--val-samples", "40",
            "--proxy-resolution", "16", "--batch-size", "32", "--epochs", "2", "--threads", "1"]
    args = ["--base", str(base), "--step", "0.25", "--tolerance", "0.3", "--family", "0-1",
            "--storage", db, "--heartbeat", "1", "--out", "g0", *data]
    drivers.start("d0", *args, command=grid)
    wait_study(db, "g0")
    drivers.start("d1", "--storage", db, "--study-name", "g0", "--join", "--out", "g1",
                  "--heartbeat", "1", command=grid)
    rcs = drivers.wait()
    assert rcs == {"d0": 0, "d1": 0}, {n: drivers.log(n)[-2000:] for n in rcs}
    study = load(db, "g0")
    from gridsearch.plan import job_key

    trials = study.get_trials()
    assert trials and all(t.state == TrialState.COMPLETE for t in trials)
    keys = [job_key(t) for t in trials]
    assert len(keys) == len(set(keys))  # every grid point ran once: none enqueued twice
    for out in ("g0", "g1"):  # both drivers wrote the stage-2 outputs from the database
        assert (tmp_path / out / "coefficients.json").is_file()
        assert len((tmp_path / out / "grid.csv").read_text().splitlines()) == len(trials) + 1
