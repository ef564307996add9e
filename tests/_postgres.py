"""A real PostgreSQL server for the tests, in a temporary folder, on a free loopback port.

Debian's server binaries (``/usr/lib/postgresql/<major>/bin``) are used, installed
with apt-get when missing. The cluster is made by ``initdb`` (trust authentication,
loopback only) and run by ``pg_ctl`` as the ``postgres`` user when the tests run as
root (PostgreSQL refuses to run as root). Nothing outlives the context: the server is
stopped and its folder removed.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

__all__ = ["Postgres"]


def _bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        subprocess.run(["apt-get", "install", "-y", "-q", "postgresql"], check=True,
                       capture_output=True, timeout=900)  # fmt: skip
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise RuntimeError("PostgreSQL's server binaries are not installed")
    return Path(found[-1]).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Postgres:
    """``with Postgres() as pg: pg.url`` (a ``postgresql+psycopg://`` URL, database
    ``postgres``, user ``postgres``).

    ``fsync=False`` (the default) is for speed: a crash of the machine could lose
    commits, which no test makes. Benchmarks of durable writes pass ``fsync=True``.
    :meth:`stop`, :meth:`start` and :meth:`restart` are for fault tests."""

    def __init__(self, *, fsync: bool = False) -> None:
        self.port = _free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        self.fsync = fsync
        self._dir: Path | None = None

    def _run(self, *args: str) -> None:
        command = list(args)
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def __enter__(self) -> Postgres:
        bindir = _bindir()
        self._dir = Path(tempfile.mkdtemp(prefix="inferproof-pg-"))
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self._dir, user.pw_uid, user.pw_gid)
        data = self._dir / "data"
        self._run(str(bindir / "initdb"), "-D", str(data), "-U", "postgres",
                  "--auth=trust", "-E", "UTF8", "--no-sync")  # fmt: skip
        self._bindir = bindir
        self.start()
        return self

    @property
    def directory(self) -> Path:
        """The server's folder (``data`` inside it, ``log`` beside it)."""
        if self._dir is None:
            raise RuntimeError("the server is not set up")
        return self._dir

    def start(self) -> None:
        """Start the server (again) on the same port and data; returns once it accepts."""
        fsync = "on" if self.fsync else "off"
        options = (f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 "
                   f"-c fsync={fsync} -c max_connections=100")  # fmt: skip
        self._run(str(self._bindir / "pg_ctl"), "-D", str(self.directory / "data"),
                  "-o", options, "-l", str(self.directory / "log"), "-w", "-t", "60",
                  "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: ``fast`` ends sessions (their clients see a shutdown),
        ``immediate`` is a crash (recovery replays the WAL at the next start)."""
        self._run(str(self._bindir / "pg_ctl"), "-D", str(self.directory / "data"),
                  "-m", mode, "-w", "stop")  # fmt: skip

    def restart(self, mode: str = "fast") -> None:
        self.stop(mode)
        self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._dir is None:
            return
        try:
            self._run(str(self._bindir / "pg_ctl"), "-D", str(self._dir / "data"), "-m", "fast",
                      "-w", "stop")  # fmt: skip
        except subprocess.CalledProcessError:
            pass  # already stopped (by a fault test that failed before restarting it)
        finally:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
