"""A private PostgreSQL cluster for Kea's lease database, in a temporary directory.

Debian's ``postgresql`` binaries run as the ``postgres`` user (``setpriv`` execs, so
the PID we hold is the postmaster's). The cluster listens on a unix socket only
(``listen_addresses=''``), inside the server namespace; durability settings stay at
their defaults (fsync on, synchronous commit), as etcd's do.
"""

from __future__ import annotations

import glob
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from tests.integration.lab import Lab, LabError

from bench.netlab import popen_logged

USER = "postgres"
AS_POSTGRES = ["setpriv", "--reuid", USER, "--regid", USER, "--init-groups", "--"]
DATABASE = "kea"
KEA_USER = "kea"
KEA_PASSWORD = "kea"  # a throwaway cluster on a unix socket in a private directory


def bindir() -> Path:
    """Debian's newest PostgreSQL server binaries (/usr/lib/postgresql/N/bin)."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(p.split("/")[4])
    )
    if not found:
        raise LabError("PostgreSQL is not installed (Debian package postgresql)")
    return Path(found[-1]).parent


class PostgresCluster:
    def __init__(self, lab: Lab, ns: str) -> None:
        self.lab = lab
        self.ns = ns
        self.bin = bindir()
        self.dir = Path(tempfile.mkdtemp(prefix="etcdhcp-bench-pg-"))
        self.data = self.dir / "data"
        self.log = lab.workdir / "postgres.log"
        self.proc: subprocess.Popen | None = None

    @property
    def socket_dir(self) -> str:
        return str(self.dir)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 60.0) -> PostgresCluster:
        """initdb, start, create Kea's user and database, and ``kea-admin db-init``."""
        shutil.chown(self.dir, USER, USER)
        self._run([*AS_POSTGRES, str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust"])
        argv = [
            *AS_POSTGRES, str(self.bin / "postgres"), "-D", str(self.data),
            "-k", self.socket_dir, "-c", "listen_addresses=", "-c", "max_connections=50",
        ]  # fmt: skip
        self.proc = popen_logged(self.lab, self.ns, argv, self.log)
        deadline = time.monotonic() + timeout
        while self._run([str(self.bin / "pg_isready"), "-q", "-h", self.socket_dir], check=False):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise LabError(f"PostgreSQL did not start:\n{self.log.read_text()[-2000:]}")
            time.sleep(0.1)
        self.sql(f"CREATE USER {KEA_USER} WITH PASSWORD '{KEA_PASSWORD}'")
        self.sql(f"CREATE DATABASE {DATABASE} OWNER {KEA_USER}")
        self._run(
            ["kea-admin", "db-init", "pgsql", "-h", self.socket_dir,
             "-u", KEA_USER, "-p", KEA_PASSWORD, "-n", DATABASE]
        )  # fmt: skip
        return self

    def reset(self) -> None:
        """Forget every lease (Kea must be stopped) and checkpoint: each run starts alike."""
        self.sql("TRUNCATE lease4, lease4_stat", database=DATABASE)  # the counts too
        self.sql("CHECKPOINT")

    def sql(self, statement: str, database: str = "postgres") -> None:
        self._run(
            [str(self.bin / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
             "-h", self.socket_dir, "-U", USER, "-d", database, "-c", statement]
        )  # fmt: skip

    def _run(self, argv: list[str], check: bool = True) -> int:
        """Run a client tool with a time bound; LabError with its output on failure."""
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
        except subprocess.TimeoutExpired as e:
            raise LabError(f"{argv[0]} did not finish within 120s") from e
        if check and out.returncode != 0:
            raise LabError(f"{' '.join(argv)} failed: {(out.stdout + out.stderr)[-1500:]}")
        return out.returncode

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # "fast" shutdown
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)
