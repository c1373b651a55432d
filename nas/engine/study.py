"""The run's Optuna study: where it lives, who may drive it, and how drivers share it.

**Storages.** The default is a JournalStorage file in the run folder; ``--storage URL`` puts
the study in a database (``postgresql://``, ``sqlite:///``). A study's name is ``--study-name``,
by default the run folder's name in a database (so one database holds many runs) and the
stage's own (``stage1``, ``stage2``) in a journal file; ``config.json`` records it.

**Drivers.** A journal study has one driver: it holds an OS lock beside the journal file for
the whole run, and a second driver is refused with one line (a journal has no heartbeats, so a
live driver cannot be told from a dead one). A database study may have many: ``--join`` starts
another driver on an existing study (its settings come from the study). Every database driver

* beats a heartbeat for the trials it runs (Optuna's ``heartbeat_interval``; grace period
  :data:`GRACE` heartbeats), and a trial whose heartbeat went stale (a killed driver) is failed
  and enqueued again once (Optuna's ``RetryHeartbeatStaleTrialCallback(max_retry=1)``) by
  whichever driver notices first; it is recorded as interrupted, so it does not count;
* asks for a trial only while finished + running trials are below the stage's budget, under
  one mutex (:mod:`.claims`), so the study ends at exactly ``--trials`` finished trials;
* claims each reuse key before training it (:mod:`.claims`, :meth:`StudySession.reuse`), so no
  network is trained twice;
* draws with its own sampler stream: the study counts the drivers that opened it (the study
  attribute :data:`DRIVERS_ATTR`, under the mutex), and driver ``i`` seeds its sampler with
  :func:`driver_seed` ``(--seed, i)``. The first driver of a fresh run draws with ``--seed``
  itself (a fresh run stays reproducible); every later driver, a ``--join`` or a ``--resume``
  after a crash, draws its own proposals instead of replaying the first driver's.

``--resume`` reopens the same study: finished trials are kept and never re-run. In a journal
study, trials left RUNNING (a killed driver) or interrupted by Ctrl-C are failed and enqueued
again with the same parameters; in a database study only those whose heartbeat is stale are,
so a live driver's trials are left alone. Only Optuna's public API is used, plus the storage's
public heartbeat and trial-id methods.
"""
from __future__ import annotations

import hashlib
import logging
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterator

import optuna

from results.rundir import (JOURNAL, StorageError, database_error, is_database, open_storage,
                            pid_lock, read_config, redact, stage_of, storage_url)
from space.errors import UsageError

from .claims import Heartbeat, LocalClaims, SqlClaims, process_token
from .session import StudySession, _quiet, _retry_stale, requeue_interrupted

log = logging.getLogger(__name__)

# (StudySession and requeue_interrupted live in .session; named here too, where they were)
__all__ = ["StorageConfig", "StudySession", "GRACE", "DRIVERS_ATTR", "driver_seed",
           "resolve_storage", "open_session", "joined_config", "requeue_interrupted"]

DRIVERS_ATTR = "drivers"  # how many drivers have opened the study (fresh, --join, --resume)
STAGE_ATTR = "stage"
GRACE = 3  # heartbeats a trial may miss before it counts as a dead driver's


@dataclass(frozen=True)
class StorageConfig:
    """Where the study lives and how this driver takes part: ``url`` (None: the run folder's
    journal), ``study_name`` (None: the default above), ``join`` an existing database study,
    ``heartbeat`` seconds between beats."""

    url: str | None = None
    study_name: str | None = None
    join: bool = False
    heartbeat: int = 10

    def __post_init__(self) -> None:
        if not isinstance(self.heartbeat, int) or self.heartbeat < 1:
            raise ValueError(f"`heartbeat >= 1` must hold (whole seconds), but got "
                             f"heartbeat={self.heartbeat!r}; pass e.g. --heartbeat 10")
        if self.study_name is not None and not self.study_name.strip():
            raise ValueError("--study-name must not be empty; pass e.g. --study-name s1-run3")

    @classmethod
    def of(cls, storage: str | StorageConfig | None) -> StorageConfig:
        return storage if isinstance(storage, StorageConfig) else cls(url=storage)


def resolve_storage(storage: str | StorageConfig | None, *, run_dir: Path, resume: bool,
                    default: str) -> StorageConfig:
    """Fill in the URL and study name: a resumed run's from its config.json, else the flags,
    else the defaults (``default`` is the stage's study name)."""
    cfg = StorageConfig.of(storage)
    saved = read_config(run_dir) if resume else {}
    url = cfg.url or saved.get("storage")
    name = cfg.study_name or saved.get("study_name")
    if name is None:
        name = Path(run_dir).resolve().name if not resume and url and is_database(url) \
            else default
    return replace(cfg, url=url, study_name=name)


def driver_seed(seed: int | None, driver: int) -> int | None:
    """The seed driver number ``driver`` of a study samples with: ``seed`` for the first (a
    fresh run reproduces itself), else a number drawn from (``seed``, ``driver``), so no two
    drivers, and no resume, replay one proposal sequence. None stays None (unseeded)."""
    if seed is None or driver == 0:
        return seed
    digest = hashlib.blake2b(f"efficientnas-driver:{seed}:{driver}".encode(),
                             digest_size=4).digest()
    return int.from_bytes(digest, "big")  # < 2**32, as numpy's RandomState needs


def _number_driver(study: optuna.Study) -> int:
    """This driver's number in the study (0: the driver that created it), counted in the study
    itself; call under the mutex. A study from before drivers were counted has had one."""
    n = study.user_attrs.get(DRIVERS_ATTR)
    if n is None:
        n = 1 if study.get_trials(deepcopy=False) else 0
    study.set_user_attr(DRIVERS_ATTR, int(n) + 1)
    return int(n)


@contextmanager
def _journal_lock(url: str) -> Iterator[None]:
    """One driver per journal file, held for the whole run (:func:`results.rundir.pid_lock`;
    on a file system without locks the run folder's lock still holds)."""
    path = Path(url[len("journal:"):])
    path.parent.mkdir(parents=True, exist_ok=True)

    def in_use(holder: str) -> StorageError:
        return StorageError(f"the journal {str(path)!r} is driven by another process (pid "
                            f"{holder}); a journal study has one driver: wait for it, or put "
                            f"the study in PostgreSQL (--storage postgresql://...) and start "
                            f"more drivers with --join")

    with pid_lock(Path(f"{path}.driver"), in_use=in_use):
        yield


def _check_stage(study: optuna.Study, stage: str, url: str) -> None:
    found = study.user_attrs.get(STAGE_ATTR) or stage_of(study.user_attrs.get("config") or {})
    if found is not None and str(found) != stage:
        raise ValueError(f"study {study.study_name!r} in {redact(url)} was made by stage "
                         f"{found}, not stage {stage}; pass the --study-name of a stage-{stage} "
                         f"study, or a new one")


def joined_config(storage: StorageConfig, *, stage: str) -> dict[str, Any]:
    """The settings of the database study ``--join`` joins (what its first driver ran)."""
    url = storage.url or ""
    if not is_database(url):
        raise UsageError("--join needs --storage with a database URL (postgresql://...): a "
                         "journal study has one driver; drop --join or pass --storage")
    if storage.study_name is None:
        raise UsageError("--join needs --study-name: the name of the study to join (its first "
                         "driver's run folder name, unless it passed --study-name)")
    st = open_storage(url)
    try:
        study = _load(st, storage.study_name, url)
        _check_stage(study, stage, url)
        config = study.user_attrs.get("config")
    finally:
        _dispose(st)
    if not config:
        raise ValueError(f"study {storage.study_name!r} in {redact(url)} records no settings "
                         f"(made by another program?); --join only joins nas search and "
                         f"gridsearch studies")
    return dict(config)


def _load(st: Any, name: str, url: str) -> optuna.Study:
    try:
        return optuna.load_study(study_name=name, storage=st)
    except KeyError:
        raise ValueError(f"--join found no study {name!r} in {redact(url)}; start it first "
                         f"(without --join), or check --study-name") from None


def _dispose(st: Any) -> None:
    engine = getattr(st, "engine", None)
    if engine is not None:
        engine.dispose()


@contextmanager
def open_session(*, run_dir: Path, storage: StorageConfig, stage: str, directions: list[str],
                 sampler: Callable[[int], Any], pruner: Any, resume: bool,
                 carry: tuple[str, ...] = ()) -> Iterator[StudySession]:
    """Create, join or reopen the study (``storage`` resolved by :func:`resolve_storage`) and
    hold it for the run; ``sampler(i)`` is the sampler of the study's driver number ``i``
    (module docstring). ``carry``: the user attributes an interrupted trial is enqueued with
    again (:func:`requeue_interrupted`). A database error during the run ends it with one
    line."""
    url = storage_url(run_dir, storage.url)
    name = str(storage.study_name)
    shared = is_database(url)
    if storage.join and not shared:
        raise UsageError("--join needs --storage with a database URL (postgresql://...): a "
                         "journal study has one driver; drop --join or pass --storage")
    with (_journal_lock(url) if not shared else _nothing()):
        hb = storage.heartbeat if shared else None
        with _quiet():
            st = open_storage(url, heartbeat_interval=hb, grace_period=hb and GRACE * hb,
                              stale_callback=_retry_stale if shared else None)
        heartbeat = claims = None
        try:
            study, created = _open(st, url, name, stage=stage, directions=directions,
                                   pruner=pruner, resume=resume, join=storage.join)
            token = process_token()
            claims = SqlClaims(url, name, token) if shared else LocalClaims(token)
            heartbeat = Heartbeat(st, name, storage.heartbeat) if shared else None
            session = StudySession(study, storage=st, url=url, shared=shared, claims=claims,
                                   heartbeat=heartbeat, created=created, carry=carry)
            with session.mutex():
                session.driver = _number_driver(study)
                study.sampler = sampler(session.driver)
                claims.seed(study)
                if resume and shared:
                    session.reap()
                elif resume:
                    requeue_interrupted(study, carry=carry)
            yield session
        except Exception as e:
            import sqlalchemy.exc

            # Optuna's RDB storage wraps a failed commit in StorageInternalError
            lost = e.__cause__ if isinstance(e, optuna.exceptions.StorageInternalError) else e
            if isinstance(lost, sqlalchemy.exc.SQLAlchemyError):
                raise StorageError(f"lost the study storage {redact(url)}: "
                                   f"{database_error(lost)}; finished trials are kept there: "
                                   f"start this driver again (--join, or --resume --out "
                                   f"{run_dir})") from None
            raise
        finally:
            if heartbeat is not None:
                heartbeat.close()
            if claims is not None:
                claims.close()
            _dispose(st)


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def _open(st: Any, url: str, name: str, *, stage: str, directions: list[str], pruner: Any,
          resume: bool, join: bool) -> tuple[optuna.Study, bool]:
    exists = name in set(optuna.get_all_study_names(st))
    where = redact(url)
    if exists and not (resume or join):
        raise ValueError(f"study {name!r} already exists in {where}; pass --join to add a "
                         f"driver to it, --resume to continue your run, or another "
                         f"--study-name / --out")
    if resume and not exists:
        raise ValueError(f"--resume found no study {name!r} in {where}; pass the --out of "
                         f"a run that started, or start a new one without --resume")
    if join and not exists:
        raise ValueError(f"--join found no study {name!r} in {where}; start it first "
                         f"(without --join), or check --study-name")
    if exists:
        _check_stage(optuna.load_study(study_name=name, storage=st), stage, url)
    # a placeholder sampler: open_session gives the study this driver's own once it is numbered
    study = optuna.create_study(storage=st, study_name=name, directions=directions,
                                sampler=optuna.samplers.RandomSampler(), pruner=pruner,
                                load_if_exists=exists)
    if exists and [d.name.lower() for d in study.directions] != directions:
        raise ValueError(f"study {name!r} in {where} optimizes "
                         f"{[d.name.lower() for d in study.directions]}, but this run needs "
                         f"{directions}; the sampler decides the directions: use the run's own "
                         f"--sampler")
    if not exists:
        study.set_user_attr(STAGE_ATTR, stage)
    return study, not exists
