"""The one lock (results.rundir.pid_lock): the run folder's and the journal's one driver."""
from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

import pytest

from nas.engine.study import _journal_lock
from results.rundir import StorageError, pid_lock


class Busy(Exception):
    pass


def test_a_second_holder_is_told_the_first_ones_pid(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    with pid_lock(path, in_use=Busy) as unlocked:
        assert unlocked is None
        assert path.read_text() == str(os.getpid())
        # flock is per open file: a second open in this process is another holder
        with pytest.raises(Busy, match=f"^{os.getpid()}$"):
            with pid_lock(path, in_use=Busy):
                pass
    with pid_lock(path, in_use=Busy):  # released at the end of the block
        pass


def test_without_locks_the_block_runs_and_is_told_why(tmp_path: Path, monkeypatch) -> None:
    def no_locks(*_a, **_k):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    ran = []
    with pid_lock(tmp_path / "x.lock", in_use=Busy) as unlocked:
        ran.append(True)
    assert ran and isinstance(unlocked, OSError) and unlocked.errno == errno.ENOLCK


def test_the_journal_has_one_driver(tmp_path: Path) -> None:
    url = f"journal:{tmp_path / 'study.journal'}"
    with _journal_lock(url):
        assert (tmp_path / "study.journal.driver").read_text() == str(os.getpid())
        with pytest.raises(StorageError, match=(
                rf"is driven by another process \(pid {os.getpid()}\); a journal study has one "
                rf"driver: wait for it, or put the study in PostgreSQL")):
            with _journal_lock(url):
                pass
