"""The run folder: its files, its one reader/writer, and which stage wrote it.

Every command writes a run folder: ``nas search`` (stage 1), ``gridsearch`` (stage 2) and
``nas train``. A run folder holds ``config.json`` (the settings it was started with, and
``"stage"``), the Optuna study of a search (``study.journal``, an Optuna JournalStorage file,
unless ``config.json`` records another ``storage`` URL) and the outputs the command writes. All
of them are written atomically (:mod:`space.io`): a reader never sees half a file.

A run folder is held by one process at a time (:func:`run_lock`, an OS file lock, so a killed
process never leaves it held).

Folders written by 0.1 have no ``"stage"`` in ``config.json``; :func:`stage_of` tells them by the
keys their config holds, so they still open and resume.
"""
from __future__ import annotations

import datetime as _dt
import fcntl
import json
import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from space.io import atomic_write, write_json
from space.registry import Registry

log = logging.getLogger(__name__)

CONFIG = "config.json"
JOURNAL = "study.journal"
SUMMARY = "summary.json"
LOCK = ".lock"
RUNS_ROOT = "runs"

__all__ = ["CONFIG", "JOURNAL", "SUMMARY", "LOCK", "STAGES", "StageLayout", "RunFolderInUse",
           "write_json", "write_table", "read_table", "read_config", "write_config", "stage_of",
           "StorageError", "storage_url", "redact", "is_database", "open_storage",
           "database_error", "new_run_dir", "check_new_run_dir", "latest_run_dir", "pid_lock",
           "run_lock"]


@dataclass(frozen=True)
class StageLayout:
    """What a stage's run folder holds: its command, study, trial table and marker files."""

    stage: str  # the key in config.json's "stage": "1", "2", "train"
    command: str
    study_name: str | None  # the Optuna study (None: not a search)
    table: str | None  # the trial table it writes (read when the study cannot be)
    markers: tuple[str, ...]  # files only this stage writes
    legacy_keys: tuple[str, ...]  # config.json keys that mark a 0.1 folder of this stage


STAGES: Registry[StageLayout] = Registry("stage")
STAGES.add("1", StageLayout("1", "nas search", "stage1", "trials",
                            ("best.json", "trials.csv", "trials.parquet"), ("target_macs",)))
STAGES.add("2", StageLayout("2", "gridsearch", "stage2", "grid",
                            ("coefficients.json", "grid.csv", "grid.parquet", "family.csv"),
                            ("grid", "phi")))
STAGES.add("train", StageLayout("train", "nas train", None, None,
                                ("metrics.csv", "results.json"), ("job",)))


def stage_key(stage: int | str) -> str:
    """``1``, ``"1"`` -> ``"1"``; an unknown stage lists the known ones."""
    return STAGES.get(str(stage)).stage


# ----------------------------------------------------------------------------- files
def write_table(df: Any, folder: Path, stem: str) -> None:
    """Write ``stem.csv`` and ``stem.parquet`` atomically (readers never see half a file)."""
    folder = Path(folder)
    atomic_write(folder / f"{stem}.csv", lambda p: df.to_csv(p, index=False))
    atomic_write(folder / f"{stem}.parquet", lambda p: df.to_parquet(p, index=False))


def read_table(folder: Path, stem: str) -> Any:
    """``stem.parquet`` (else ``stem.csv``) as a DataFrame, or None while neither is there."""
    import pandas as pd

    folder = Path(folder)
    if (folder / f"{stem}.parquet").is_file():
        return pd.read_parquet(folder / f"{stem}.parquet")
    if (folder / f"{stem}.csv").is_file():
        return pd.read_csv(folder / f"{stem}.csv")
    return None


def read_config(run_dir: str | Path) -> dict[str, Any]:
    p = Path(run_dir) / CONFIG
    if not p.is_file():
        raise FileNotFoundError(f"{str(run_dir)!r} is not a run folder (no {CONFIG}); pass the "
                                f"--out of an earlier run")
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{p} is not valid JSON ({e}); restore it or start a new run with "
                         f"another --out") from None


def write_config(run_dir: Path, stage: int | str, config: Mapping[str, Any]) -> Path:
    """``config.json``: ``config`` with ``"stage"`` first."""
    return write_json({"stage": _stage_value(stage), **{k: v for k, v in config.items()
                                                        if k != "stage"}}, run_dir / CONFIG)


def _stage_value(stage: int | str) -> int | str:
    key = stage_key(stage)
    return int(key) if key.isdigit() else key


def stage_of(config: Mapping[str, Any]) -> str | None:
    """The stage a run's config.json belongs to (``"1"``, ``"2"``, ``"train"``), or None."""
    if config.get("stage") is not None:
        return str(config["stage"])
    for name in STAGES:
        if all(k in config for k in STAGES.get(name).legacy_keys):
            return name
    return None


# ----------------------------------------------------------------------------- storage
class StorageError(OSError):
    """The study storage cannot be opened or reached (bad URL, wrong password, server down)."""


def storage_url(run_dir: Path, storage: str | None) -> str:
    return storage if storage else f"journal:{Path(run_dir) / JOURNAL}"


def redact(url: str) -> str:
    """``url`` with its password replaced by ``***``, for messages and logs."""
    head, sep, rest = url.partition("://")
    if not sep or "@" not in rest.split("/", 1)[0]:
        return url
    auth, _, host = rest.partition("@")
    user, colon, _ = auth.partition(":")
    return f"{head}://{user}{':***' if colon else ''}@{host}"


def is_database(url: str) -> bool:
    """Whether ``url`` names an SQLAlchemy database (``postgresql://``, ``sqlite:///``), the
    storages that keep heartbeats and so may be shared by several drivers."""
    return not url.startswith("journal:") and "://" in url


def open_storage(url: str, *, heartbeat_interval: int | None = None,
                 grace_period: int | None = None, stale_callback: Any = None) -> Any:
    """``journal:PATH`` -> an Optuna JournalStorage file; a database URL (``sqlite:///...``,
    ``postgresql://...``) -> an Optuna RDBStorage, with heartbeats when ``heartbeat_interval``
    is given. A connection that went stale (a restarted server) is replaced before use
    (``pool_pre_ping``). A URL that cannot be opened raises :class:`StorageError`, one line."""
    if url.startswith("journal:"):
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        path = Path(url[len("journal:"):])
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    if not is_database(url):
        raise StorageError(f"--storage {url!r} is not a storage URL; pass e.g. "
                           f"postgresql://user:password@host:5432/db, sqlite:///study.db or "
                           f"journal:PATH")
    import optuna

    engine: dict[str, Any] = {"pool_pre_ping": True}
    if url.startswith("postgresql"):  # a server that is down answers in seconds, not minutes
        engine["connect_args"] = {"connect_timeout": 10}
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=engine,
                                          heartbeat_interval=heartbeat_interval,
                                          grace_period=grace_period,
                                          heartbeat_stale_trial_callback=stale_callback)
    except ImportError as e:
        raise StorageError(f"cannot open {redact(url)}: its database driver is not installed "
                           f"({e}); pip install 'efficientnas[postgres]'") from None
    except Exception as e:  # SQLAlchemy's errors: bad URL, auth, refused connection
        raise StorageError(f"cannot open the study storage {redact(url)}: "
                           f"{database_error(e)}; check the URL, the password and that the "
                           f"server is up") from None


def database_error(exc: BaseException) -> str:
    """A database error as one line: the driver's first line, without SQLAlchemy's
    background link."""
    inner = getattr(exc, "orig", None) or exc
    lines = [ln.strip() for ln in str(inner).splitlines() if ln.strip()]
    return f"{type(inner).__name__}: {lines[0] if lines else ''}"


# ----------------------------------------------------------------------------- folders
def new_run_dir(out: str | Path | None, *, root: str | Path = RUNS_ROOT) -> Path:
    """``out`` (checked by :func:`check_new_run_dir`), or a fresh ``runs/<timestamp>``."""
    if out is not None:
        return check_new_run_dir(out)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    p = Path(root) / stamp
    n = 1
    while p.exists():
        p = Path(root) / f"{stamp}-{n}"
        n += 1
    return p


def check_new_run_dir(out: str | Path) -> Path:
    """``--out`` for a new run: a folder that does not exist yet, an empty one, or a run
    folder (whose own checks then say whether it may continue). A file, or a folder of other
    files, is refused before anything is written: a run must not mix its files with yours."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise ValueError(f"--out {str(path)!r} is a file, but a run writes a folder; pass a new "
                         f"folder, e.g. --out {path}-run")
    if path.is_dir():
        names = sorted(p.name for p in path.iterdir() if p.name != LOCK)
        if names and CONFIG not in names and JOURNAL not in names:
            shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
            raise ValueError(f"--out {str(path)!r} holds other files ({shown}) and no run; a "
                             f"run writes into a new or empty folder (or continues its own "
                             f"with --resume): pass e.g. --out {path / 'run'}")
    return path


def latest_run_dir(stage: int | str, *, root: str | Path = RUNS_ROOT) -> Path:
    """The newest run folder under ``root`` that ``stage`` wrote (what ``--resume`` without
    ``--out`` continues); it says which one it took."""
    key = stage_key(stage)
    found = []
    for p in Path(root).glob("*"):
        try:
            if (p / CONFIG).is_file() and stage_of(read_config(p)) == key:
                found.append(p)
        except (OSError, ValueError):
            continue
    if not found:
        cmd = STAGES.get(key).command
        raise FileNotFoundError(f"--resume found no {cmd} run folder under {str(root)!r}; pass "
                                f"--out DIR naming the run to resume")
    run_dir = max(found, key=lambda p: (p / CONFIG).stat().st_mtime)
    log.info("resuming the newest %s run: %s", STAGES.get(key).command, run_dir)
    return run_dir


class RunFolderInUse(OSError):
    """Another process holds the run folder."""


@contextmanager
def pid_lock(path: Path, *, in_use: Callable[[str], BaseException]) -> Iterator[OSError | None]:
    """Hold ``path`` for this process during the block: an OS file lock (``flock``), so a
    killed process never leaves it held, with this process's pid written into the file for the
    message a second process gets: ``in_use(pid)`` (raised). Yields None, or the OSError of a
    file system without locks (some network mounts), where the caller decides whether to go
    on. The one lock of the house: the run folder's (:func:`run_lock`) and the journal's one
    driver (:mod:`nas.engine.study`)."""
    with open(path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            unlocked = None
        except BlockingIOError:
            f.seek(0)
            raise in_use(f.read().strip() or "unknown") from None
        except OSError as e:
            unlocked = e
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        try:
            yield unlocked
        finally:
            if unlocked is None:
                fcntl.flock(f, fcntl.LOCK_UN)


@contextmanager
def run_lock(run_dir: Path, *, command: str) -> Iterator[None]:
    """Hold the run folder for one process (:func:`pid_lock`): a second process on the same
    folder would interleave its writes. A folder this call created is removed again if the run
    fails before writing anything into it (bad input leaves no trace)."""
    run_dir = Path(run_dir)
    created = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK

    def in_use(holder: str) -> RunFolderInUse:
        return RunFolderInUse(f"run folder {str(run_dir)!r} is in use by another process "
                              f"(pid {holder}); wait for it to finish or stop it, or pass "
                              f"another --out")

    with pid_lock(path, in_use=in_use) as unlocked:
        if unlocked is not None:  # a file system without locks: go on, and say so
            log.warning("could not lock %s (%s); make sure no other %s uses this folder",
                        run_dir, unlocked, command)
        try:
            yield
        except BaseException:
            if created and [p.name for p in run_dir.iterdir()] == [LOCK]:
                path.unlink()
                run_dir.rmdir()
            raise
