"""A real PostgreSQL server for the tests: ``initdb`` and ``pg_ctl`` (Debian's ``postgresql``
package, ``make test`` installs it) in a temporary folder, on a free loopback port, with a
password, stopped at the end. initdb refuses to run as root, so as root the server runs as the
``postgres`` user."""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import time
from pathlib import Path

PASSWORD = "s3cret-test"


def find_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    hits = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return hits[-1] if hits else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    def __init__(self, root: Path) -> None:
        self.initdb, self.pg_ctl = find_bin("initdb"), find_bin("pg_ctl")
        if not (self.initdb and self.pg_ctl):
            raise FileNotFoundError("initdb/pg_ctl not found (apt-get install postgresql)")
        self.root = Path(root)
        self.data = self.root / "data"
        self.port = free_port()
        self.user = None
        if os.geteuid() == 0:
            try:
                self.user = pwd.getpwnam("postgres")
            except KeyError:
                raise FileNotFoundError("running as root and there is no postgres user") from None
            os.chown(self.root, self.user.pw_uid, self.user.pw_gid)
            os.chmod(self.root, 0o700)
        pwfile = self.root / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if self.user is not None:
            os.chown(pwfile, self.user.pw_uid, self.user.pw_gid)
        self._run([self.initdb, "-D", str(self.data), "-U", "postgres", "--auth=scram-sha-256",
                   f"--pwfile={pwfile}", "--no-sync"])

    def _run(self, cmd: list[str], **kw) -> subprocess.CompletedProcess:
        if self.user is not None:
            def demote() -> None:
                os.setgid(self.user.pw_gid)
                os.setuid(self.user.pw_uid)
            kw["preexec_fn"] = demote
        got = subprocess.run(cmd, capture_output=True, text=True, cwd=self.root, timeout=120,
                             **kw)
        if got.returncode != 0:
            raise subprocess.CalledProcessError(got.returncode, cmd, got.stdout, got.stderr)
        return got

    def start(self) -> None:
        opts = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                f"-c fsync=off -c max_connections=200")
        self._run([self.pg_ctl, "-D", str(self.data), "-o", opts, "-l",
                   str(self.root / "log"), "-w", "-t", "60", "start"])

    def stop(self, mode: str = "fast") -> None:
        self._run([self.pg_ctl, "-D", str(self.data), "-m", mode, "-w", "stop"])

    def url(self, db: str = "postgres", *, password: str = PASSWORD) -> str:
        return f"postgresql://postgres:{password}@127.0.0.1:{self.port}/{db}"

    def create_database(self, name: str) -> str:
        import sqlalchemy as sa

        engine = sa.create_engine(self.url(), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as c:
                c.execute(sa.text(f'CREATE DATABASE "{name}"'))
        finally:
            engine.dispose()
        return self.url(name)


def wait_for(predicate, *, timeout: float, every: float = 0.1, what: str = "condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = predicate()
        if got:
            return got
        time.sleep(every)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
