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
    ``postgres``, user ``postgres``)."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
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
        options = (f"-p {self.port} -k {self._dir} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c max_connections=100")  # fmt: skip
        self._run(str(bindir / "pg_ctl"), "-D", str(data), "-o", options,
                  "-l", str(self._dir / "log"), "-w", "-t", "60", "start")  # fmt: skip
        self._bindir = bindir
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._dir is None:
            return
        try:
            self._run(str(self._bindir / "pg_ctl"), "-D", str(self._dir / "data"), "-m", "fast",
                      "-w", "stop")  # fmt: skip
        finally:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
