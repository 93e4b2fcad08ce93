"""A throwaway PostgreSQL cluster from Debian's binaries, run as an unprivileged user."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg

UNPRIVILEGED = "nobody"


def pg_bin(name: str) -> Path:
    """The newest installed major version's binary (Debian keeps them off PATH)."""
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), key=lambda p: p.parts[-3])
    if not found:
        raise RuntimeError(
            f"{name} not found under /usr/lib/postgresql: run `make evidence-deps` (as root)"
        )
    return found[-1]


def _as_user() -> tuple[list[str], int | None, int | None]:
    """A command prefix that drops root (initdb and postgres refuse to run as root)."""
    if os.geteuid() != 0:
        return [], None, None
    user = pwd.getpwnam(UNPRIVILEGED)
    prefix = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups"]
    return prefix, user.pw_uid, user.pw_gid


class Cluster:
    """initdb + postgres in the foreground (our child, stopped by its PID), unix socket only."""

    def __init__(self, fsync: bool = False) -> None:
        # As root the cluster runs as `nobody`, who must reach it: /tmp, not a private TMPDIR.
        where = "/tmp" if os.geteuid() == 0 else None
        self.base = Path(tempfile.mkdtemp(prefix="lp-evidence-pg-", dir=where))
        self.data = self.base / "data"
        self.socket_dir = self.base / "run"
        self.fsync = fsync
        self.process: subprocess.Popen[bytes] | None = None

    def dsn(self, dbname: str = "postgres") -> str:
        return f"host={self.socket_dir} dbname={dbname} user=evidence"

    def start(self) -> None:
        prefix, uid, gid = _as_user()
        self.socket_dir.mkdir()
        if uid is not None and gid is not None:
            for path in (self.base, self.socket_dir):
                os.chown(path, uid, gid)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.base)}
        made = subprocess.run(
            [*prefix, str(pg_bin("initdb")), "-D", str(self.data), "-U", "evidence",
             "--auth=trust", "--no-locale", "--encoding=UTF8", "--no-sync"],
            check=False, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            cwd=self.base, text=True,
        )  # fmt: skip
        if made.returncode != 0:
            raise RuntimeError(f"initdb failed: {made.stderr.strip()}")
        options = [
            "-c",
            "listen_addresses=",
            "-k",
            str(self.socket_dir),
            "-c",
            "max_connections=200",
        ]
        if not self.fsync:
            options += ["-c", "fsync=off", "-c", "synchronous_commit=off"]
            options += ["-c", "full_page_writes=off"]
        log = open(self.base / "postgres.log", "wb")  # noqa: SIM115 - the child keeps it
        self.process = subprocess.Popen(
            [*prefix, str(pg_bin("postgres")), "-D", str(self.data), *options],
            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=self.base,
        )  # fmt: skip
        log.close()
        self._wait_ready()

    def _wait_ready(self) -> None:
        for _ in range(600):
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError((self.base / "postgres.log").read_text(errors="replace"))
            with contextlib.suppress(psycopg.OperationalError):
                psycopg.connect(self.dsn(), connect_timeout=2).close()
                return
            time.sleep(0.05)
        raise RuntimeError("postgres did not accept connections")

    def stop(self) -> None:
        """Fast shutdown of our postmaster by its PID, then the directory goes."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()
        shutil.rmtree(self.base, ignore_errors=True)

    def create_database(self, name: str, template: str | None = None) -> str:
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            sql = f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")
            conn.execute(sql.encode())
        return self.dsn(name)

    def dump(self, dbname: str) -> str:
        """pg_dump of one database, as text (the token canary reads it)."""
        return subprocess.run(
            [str(pg_bin("pg_dump")), "-h", str(self.socket_dir), "-U", "evidence", dbname],
            check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip


@contextlib.contextmanager
def running_cluster(fsync: bool = False) -> Iterator[Cluster]:
    cluster = Cluster(fsync=fsync)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
