"""What several drivers of one study agree on outside Optuna: reuse-key claims, one mutex, and
the heartbeat of the trials a driver runs.

* **Claims.** A trial that is about to train a network claims its reuse key
  (:attr:`nas.engine.Candidate.key`) first. In a database storage the claim is a row of the
  table ``efficientnas_claims`` in the study's own database, inserted with ``INSERT ... ON
  CONFLICT DO NOTHING``: of two drivers that propose the same network at once, exactly one wins
  and trains; the other reads the winner's trial number and waits for its result
  (:meth:`nas.engine.TrialRunner.begin` states the rule). A claim whose trial ended without a
  result (failed, interrupted, stale) is taken over by compare-and-swap, so it too has one
  winner. A journal study has one driver (:mod:`.study`), so its claims live in that driver.
* **Mutex.** What must be decided by one driver at a time (whether the study's budget allows
  another trial, failing stale trials and enqueuing their retries, enqueuing stage 2's points):
  a PostgreSQL advisory lock, or an ``fcntl`` lock beside an SQLite file. A killed driver's lock
  is released by the server (its connection closes) or the kernel.
* **Heartbeat.** Optuna's RDBStorage records heartbeats only inside ``study.optimize``; this
  engine asks and tells, so :class:`Heartbeat` beats for the trials this driver runs, from a
  thread, through the storage's public ``record_heartbeat``.
"""
from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import threading
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from optuna.trial import TrialState

from results.rundir import StorageError, database_error, redact

from .recorder import is_interrupted, node_name, reuse_key, stale_numbers

log = logging.getLogger(__name__)

__all__ = ["CLAIMS_TABLE", "SqlClaims", "LocalClaims", "Heartbeat", "process_token"]

CLAIMS_TABLE = "efficientnas_claims"


def process_token() -> str:
    """Names this driver process in claims: node, pid and a random part (pids repeat across
    machines and over time)."""
    return f"{node_name()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _owners(study: Any) -> dict[str, int]:
    """key -> the first trial that trained it or is training it (interrupted trials left out)."""
    stale = set(stale_numbers(study))
    found: dict[str, int] = {}
    for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        key = reuse_key(t)
        if key is None or t.state == TrialState.WAITING or is_interrupted(t, stale):
            continue
        found.setdefault(key, t.number)
    return found


class LocalClaims:
    """Claims held by the one driver of a journal study (no other process can race it)."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.owners: dict[str, tuple[int, str]] = {}

    def seed(self, study: Any) -> None:
        for key, number in _owners(study).items():
            self.owners.setdefault(key, (number, ""))

    def claim(self, key: str, number: int) -> tuple[int, str]:
        return self.owners.setdefault(key, (number, self.token))

    def take_over(self, key: str, old: int, new: int) -> bool:
        if self.owners.get(key, (None,))[0] != old:
            return False
        self.owners[key] = (new, self.token)
        return True

    @contextmanager
    def mutex(self) -> Iterator[None]:
        yield

    def close(self) -> None:
        pass


class SqlClaims:
    """Claims in the study's own database (any SQLAlchemy URL whose dialect has ``INSERT ... ON
    CONFLICT``: PostgreSQL, SQLite), one row per (study, key)."""

    def __init__(self, url: str, study_name: str, token: str) -> None:
        import sqlalchemy as sa

        self.url, self.study_name, self.token = url, study_name, token
        self.engine = sa.create_engine(url, pool_pre_ping=True)
        meta = sa.MetaData()
        self.table = sa.Table(CLAIMS_TABLE, meta,
                              sa.Column("study_name", sa.String(512), primary_key=True),
                              sa.Column("train_key", sa.String(256), primary_key=True),
                              sa.Column("trial_number", sa.Integer, nullable=False),
                              sa.Column("owner", sa.String(256), nullable=False))
        self.dialect = self.engine.dialect.name
        if self.dialect not in ("postgresql", "sqlite"):
            raise StorageError(f"several drivers per study need PostgreSQL or SQLite, but "
                               f"{redact(url)} is {self.dialect}; use a postgresql:// URL")
        try:
            meta.create_all(self.engine, checkfirst=True)
        except sa.exc.IntegrityError:  # another driver created it at the same moment
            pass
        except sa.exc.SQLAlchemyError as e:
            raise StorageError(f"cannot create the claims table in {redact(url)}: "
                               f"{database_error(e)}") from None
        # one advisory-lock id per study (PostgreSQL), or a lock file beside the SQLite file
        digest = hashlib.blake2b(f"efficientnas:{study_name}".encode(), digest_size=8).digest()
        self.lock_id = int.from_bytes(digest, "big", signed=True)
        db = self.engine.url.database
        self.lock_path = Path(f"{db}.{study_name}.lock") if self.dialect == "sqlite" else None

    def _insert(self) -> Any:
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        return insert(self.table)

    def seed(self, study: Any) -> None:
        """Claim what the study already trained (a study copied in, or from before claims)."""
        rows = [{"study_name": self.study_name, "train_key": k, "trial_number": n, "owner": ""}
                for k, n in _owners(study).items()]
        if rows:
            with self.engine.begin() as c:
                c.execute(self._insert().on_conflict_do_nothing(), rows)

    def claim(self, key: str, number: int) -> tuple[int, str]:
        """(trial number, owner token) that holds ``key``: ours if we won it."""
        import sqlalchemy as sa

        t = self.table
        with self.engine.begin() as c:
            c.execute(self._insert().values(study_name=self.study_name, train_key=key,
                                            trial_number=number, owner=self.token)
                      .on_conflict_do_nothing())
            row = c.execute(sa.select(t.c.trial_number, t.c.owner).where(
                t.c.study_name == self.study_name, t.c.train_key == key)).one()
        return int(row[0]), str(row[1])

    def take_over(self, key: str, old: int, new: int) -> bool:
        """Move ``key``'s claim from trial ``old`` to ``new``; False when another driver
        moved it first."""
        t = self.table
        with self.engine.begin() as c:
            got = c.execute(t.update().where(
                t.c.study_name == self.study_name, t.c.train_key == key,
                t.c.trial_number == old).values(trial_number=new, owner=self.token))
        return got.rowcount == 1

    @contextmanager
    def mutex(self) -> Iterator[None]:
        import sqlalchemy as sa

        if self.lock_path is not None:
            with open(self.lock_path, "a+") as f:
                fcntl.flock(f, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(f, fcntl.LOCK_UN)
            return
        with self.engine.connect() as c:
            c.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": self.lock_id})
            c.commit()
            try:
                yield
            finally:
                c.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": self.lock_id})
                c.commit()

    def close(self) -> None:
        self.engine.dispose()


class Heartbeat:
    """Beats every ``interval`` seconds for the RUNNING trials this driver registered, so the
    other drivers can tell a live trial from a dead driver's (Optuna's grace period)."""

    def __init__(self, storage: Any, study_name: str, interval: float) -> None:
        self.storage, self.interval = storage, interval
        self.study_id = storage.get_study_id_from_name(study_name)
        self.live: dict[int, int] = {}  # trial number -> trial id
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="efficientnas-heartbeat",
                                       daemon=True)
        self.thread.start()

    def add(self, number: int) -> None:
        tid = self.storage.get_trial_id_from_study_id_trial_number(self.study_id, number)
        self.storage.record_heartbeat(tid)  # at once: a trial is never RUNNING unbeaten long
        with self.lock:
            self.live[number] = tid

    def _run(self) -> None:
        while not self.stop.wait(self.interval):
            with self.lock:
                live = dict(self.live)
            for number, tid in live.items():
                try:
                    if self.storage.get_trial(tid).state != TrialState.RUNNING:
                        with self.lock:
                            self.live.pop(number, None)
                        continue
                    self.storage.record_heartbeat(tid)
                except Exception as e:  # a restarting server: beat again next time
                    log.warning("heartbeat of trial %d failed (%s); retrying in %gs", number,
                                database_error(e), self.interval)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=self.interval + 5)
