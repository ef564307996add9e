"""``serve --workers N``: several node processes on one listening socket.

One Python process serves a few hundred verified receipts per second: the GIL holds
request parsing, inference, signing and the log's hashing to one core. Workers are
separate processes, so each has its own GIL. The parent binds the socket once and
starts each worker with a copy of it (the kernel hands each new connection to one of
the processes waiting in ``accept``); it restarts a worker that dies and, on SIGTERM or
SIGINT, stops them all gracefully.

Workers share what the node keeps: the log (each batch takes the store's write lock,
so every receipt is appended exactly once, in one tree, whichever worker issued it),
the registry, tokens, bundles and jobs. With the embedded default those are the
home's SQLite files, each safe across processes; with ``--database`` they are in
PostgreSQL. Only worker 0 anchors the log on chain, so one schedule sends.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import replace
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType

from .._files import default_home
from ..engine import ChatConfig, Storage
from ..errors import Error, InputError
from ._config import NodeConfig
from ._serve import GRACEFUL_SECONDS, bind, run_on, url_of

__all__ = ["MAX_WORKERS", "serve", "serve_workers"]

# A bound on --workers: each worker holds its own models and connection pools.
MAX_WORKERS = 64
# A worker that dies is restarted after _RESTART_DELAY seconds, doubled after each
# death up to _MAX_RESTART_DELAY (a worker that cannot start while the database is down
# would otherwise restart every second), and back to the first delay once a worker has
# run _HEALTHY_SECONDS.
_RESTART_DELAY = 1.0
_MAX_RESTART_DELAY = 30.0
_HEALTHY_SECONDS = 60.0
# A worker's exit code when its configuration is refused (another node's log key, a
# bad setting): restarting cannot help, so the node stops. EX_CONFIG of sysexits.h;
# not 3, which uvicorn exits with when an app's startup fails (a database down).
EXIT_REFUSED = 78
# How often the parent looks for a dead worker.
_POLL_SECONDS = 0.2

_logger = logging.getLogger("inferproof.node.workers")


def _worker(
    index: int,
    sock: socket.socket,
    home: Path | None,
    config: NodeConfig,
    chat: ChatConfig | None,
    storage: Storage,
    log_level: str,
) -> None:
    """One worker: a node over ``sock`` until SIGTERM (in a spawned process)."""
    # Ctrl-C reaches the whole process group; the parent decides when workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if index != 0:  # one anchoring schedule for the whole node
        config = replace(config, anchor_every=None, anchor_receipts=None)
    try:
        run_on(sock, home=home, config=config, chat=chat, storage=storage,
               log_level=log_level)  # fmt: skip
    except InputError as exc:
        print(f"worker {index}: {exc}", file=sys.stderr, flush=True)
        sys.exit(EXIT_REFUSED)
    except Error as exc:  # the database is down, say: the parent restarts it later
        print(f"worker {index}: {exc}", file=sys.stderr, flush=True)
        sys.exit(1)


class _Supervisor:
    """Starts, watches and stops the worker processes."""

    def __init__(self, count: int, args: tuple[object, ...]) -> None:
        self._ctx = multiprocessing.get_context("spawn")
        self._args = args
        self._procs: list[BaseProcess | None] = [None] * count
        self._started = [0.0] * count
        self._delay = [_RESTART_DELAY] * count
        self._stopping = threading.Event()
        self.refused = False

    def _start(self, index: int) -> None:
        proc = self._ctx.Process(
            target=_worker, args=(index, *self._args), name=f"inferproof-worker-{index}"
        )
        proc.start()
        self._procs[index] = proc
        self._started[index] = time.monotonic()

    def stop(self, *_: object) -> None:
        self._stopping.set()

    def run(self) -> int:
        for index in range(len(self._procs)):
            self._start(index)
        while not self._stopping.wait(_POLL_SECONDS):
            for index, proc in enumerate(self._procs):
                if proc is not None and not proc.is_alive():
                    self._restart(index, proc)
        return self._shutdown()

    def _restart(self, index: int, proc: BaseProcess) -> None:
        code = proc.exitcode
        proc.close()
        self._procs[index] = None
        if code == EXIT_REFUSED:
            _logger.error("worker %d refused to start (its message is above); stopping", index)
            self.refused = True
            self._stopping.set()
            return
        if time.monotonic() - self._started[index] > _HEALTHY_SECONDS:
            self._delay[index] = _RESTART_DELAY
        delay = self._delay[index]
        self._delay[index] = min(delay * 2, _MAX_RESTART_DELAY)
        _logger.warning("worker %d exited with code %s; restarting it in %.0f s",
                        index, code, delay)  # fmt: skip
        if not self._stopping.wait(delay):
            self._start(index)

    def _shutdown(self) -> int:
        live = [p for p in self._procs if p is not None and p.is_alive()]
        for proc in live:
            proc.terminate()  # SIGTERM: in-flight requests finish, the log is flushed
        deadline = time.monotonic() + GRACEFUL_SECONDS + 10
        code = 0
        for proc in live:
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
                proc.join()
            code = code or (proc.exitcode or 0)
        return code


def _start_ray() -> str:
    """Start a local Ray in this (the parent) process; return its address."""
    from ..engine import RayProver

    return RayProver(None).address


def serve_workers(
    workers: int,
    sock: socket.socket,
    *,
    home: Path | None,
    config: NodeConfig,
    chat: ChatConfig | None,
    storage: Storage,
    log_level: str,
) -> int:
    """Run ``workers`` node processes on the bound ``sock`` until SIGTERM or SIGINT;
    return the first non-zero exit code of a worker (0 when all stopped cleanly)."""
    sock.listen(socket.SOMAXCONN)
    if config.zk_backend == "ray":  # one Ray for the node, which every worker joins
        config = replace(config, zk_backend=_start_ray())
    supervisor = _Supervisor(workers, (sock, home, config, chat, storage, log_level))

    def on_signal(signum: int, frame: FrameType | None) -> None:
        supervisor.stop()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        code = supervisor.run()
        if supervisor.refused:
            raise InputError("a worker refused to start (its message is above)")
        return code
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        sys.stdout.flush()


def serve(
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    home: str | os.PathLike[str] | None = None,
    config: NodeConfig | None = None,
    chat: ChatConfig | None = None,
    storage: Storage | None = None,
    workers: int = 1,
    announce: bool = True,
    log_level: str = "warning",
) -> None:
    """Serve a node on ``host:port`` until SIGINT or SIGTERM, then flush the log.

    Prints ``listening on URL`` on stdout once the port is bound (``port=0`` picks
    one), so a parent process learns where to connect. ``storage`` says where the
    node keeps its state (:class:`~inferproof.engine.Storage`; by default the
    environment's or the home's ``config.toml``, else the embedded files);
    ``workers`` > 1 runs that many processes on the one socket (module docs).

    Example::

        serve("127.0.0.1", 8080)          # blocks; Ctrl-C stops it cleanly
    """
    if not 1 <= workers <= MAX_WORKERS:
        raise InputError(f"workers must be 1..{MAX_WORKERS}")
    config = config or NodeConfig()
    sock = bind(host, port)
    if announce:
        print(f"listening on {url_of(sock)}", flush=True)
    try:
        if workers == 1:
            run_on(sock, home=home, config=config, chat=chat, storage=storage,
                   log_level=log_level)  # fmt: skip
        else:
            root = Path(home) if home is not None else None
            serve_workers(workers, sock, home=root, config=config, chat=chat,
                          storage=storage or Storage.resolve(default_home() if root is None
                                                             else root),
                          log_level=log_level)  # fmt: skip
    finally:
        sock.close()
    sys.stdout.flush()
