"""Beyond one process (issue 17): the node against a bare FastAPI + onnxruntime server.

Every row is driven by the same client load in the same run: ``--procs`` client
processes with ``--threads`` threads each, one request per inference, on this machine
(clients and servers share its cores). The rows:

- bare: FastAPI + onnxruntime, no receipt, no log (what a user would run instead);
- the embedded node (SQLite, one process), unverified and verified by the client;
- the node on PostgreSQL with 1 and 2 workers (``serve --database --workers N``).

"verified" means the client checks every receipt (signature, log inclusion,
consistency with the checkpoints it saw, input, nonce, model). Every receipt is
durably logged in every node row (PostgreSQL here runs with fsync on).

Run: .venv/bin/python bench/bench_scale.py [--seconds 6] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

from inferproof.client import Client
from inferproof.node import TokenStore
from inferproof.testing import mlp_model

SIZES = (32, 64, 32, 2)  # the "mlp-4k" of bench_core and bench_node: 4,258 parameters
MODEL = "mlp:1"
ROOT = Path(__file__).resolve().parent.parent


def _x(rng: np.random.Generator) -> list[list[float]]:
    return rng.standard_normal((1, SIZES[0])).astype(np.float32).tolist()  # type: ignore[no-any-return]


def _pct(samples: list[float], q: float) -> float:
    return float(np.percentile(samples, q)) * 1e3 if samples else float("nan")


# -- the client processes ----------------------------------------------------------------
def client(url: str, token: str, home: str, seconds: float, threads: int, mode: str) -> None:
    """One client process: ``threads`` threads until time is up; prints counts as JSON.

    Every thread first opens its connection and makes one request (imports, the TLS
    context, the client's pin of the node's keys), then waits: the process prints
    ``ready`` and the timed window starts only when the parent answers ``go``, once
    every client process is ready. Otherwise the node rows, whose client imports more,
    would pay its start-up inside the window, on the cores the server also uses.
    """
    lat: list[float] = []
    count = [0]
    lock = threading.Lock()
    ready = threading.Barrier(threads + 1)
    go = threading.Event()
    stop = [0.0]

    def timed(call: Callable[[], object]) -> None:
        try:
            call()  # warm up
        except BaseException:
            ready.abort()  # the process fails instead of waiting for this thread
            raise
        ready.wait()
        go.wait()
        while time.monotonic() < stop[0]:
            t0 = time.perf_counter()
            call()
            with lock:
                lat.append(time.perf_counter() - t0)
                count[0] += 1

    def bare(i: int) -> None:
        rng = np.random.default_rng(i)
        with httpx.Client(base_url=url, timeout=30) as http:
            timed(lambda: http.post("/infer", json={"x": _x(rng)}).raise_for_status())

    def node(i: int) -> None:
        rng = np.random.default_rng(i)
        with Client(url, token=token, home=Path(home) / str(i), verify=mode == "verified") as c:
            timed(lambda: c.infer(MODEL, {"x": np.asarray(_x(rng), np.float32)}))

    with ThreadPoolExecutor(threads) as ex:
        futures = [ex.submit(bare if mode == "bare" else node, i) for i in range(threads)]
        ready.wait()
        print("ready", flush=True)
        sys.stdin.readline()
        t0 = time.perf_counter()
        stop[0] = time.monotonic() + seconds
        go.set()
        for f in futures:
            f.result()
    print(json.dumps({"count": count[0], "elapsed": time.perf_counter() - t0, "lat": lat}))


def load(
    url: str, token: str, seconds: float, procs: int, threads: int, mode: str
) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, __file__, "--client", url, token]
        children = [
            subprocess.Popen(
                [*cmd, f"{tmp}/{p}", str(seconds), str(threads), mode],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for p in range(procs)
        ]
        for c in children:  # every process warmed up before any is timed
            assert c.stdout is not None
            if c.stdout.readline().strip() != "ready":
                raise SystemExit("a client process did not start")
        for c in children:
            assert c.stdin is not None
            c.stdin.write("go\n")
            c.stdin.flush()
        outs = [json.loads(c.communicate()[0]) for c in children]
    lat = [x for o in outs for x in o["lat"]]
    rate = sum(o["count"] / o["elapsed"] for o in outs)
    return {"rate": rate, "p50": _pct(lat, 50), "p99": _pct(lat, 99)}


# -- the servers -------------------------------------------------------------------------
def _started(cmd: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("listening on "):
        proc.kill()
        raise SystemExit(f"{cmd[:4]} did not start")
    url = line.removeprefix("listening on ")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"{cmd[:4]} did not become ready")


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def bare_server(model: Path) -> tuple[subprocess.Popen[str], str]:
    script = ROOT / "bench" / "_bare_server.py"
    return _started([sys.executable, str(script), str(model)], dict(os.environ))


def node_server(
    home: Path, workers: int, database: str | None
) -> tuple[subprocess.Popen[str], str]:
    cmd = [str(Path(sys.executable).parent / "inferproof"), "serve", "--port", "0",
           "--workers", str(workers), "--max-inflight", "1024"]  # fmt: skip
    if database:
        cmd += ["--database", database]
    return _started(cmd, {**os.environ, "INFERPROOF_HOME": str(home)})


def _push(url: str, token: str, tmp: Path) -> None:
    with Client(url, token=token, home=tmp / "pusher") as c:
        c.push(mlp_model(SIZES), name="mlp", version="1")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        url, token, home, seconds, threads, mode = sys.argv[2:8]
        client(url, token, home, float(seconds), int(threads), mode)
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from tests._postgres import Postgres

    s, p, t = args.seconds, args.procs, args.threads
    rows: list[tuple[str, dict[str, float]]] = []
    with tempfile.TemporaryDirectory() as tmp_name, Postgres(fsync=True) as pg:
        tmp = Path(tmp_name)
        (tmp / "mlp.onnx").write_bytes(mlp_model(SIZES))
        proc, url = bare_server(tmp / "mlp.onnx")
        try:
            base = load(url, "-", s, p, t, "bare")
        finally:
            _stop(proc)
        rows.append(("bare FastAPI + onnxruntime, no receipt (reference)", base))
        setups = [("embedded node (SQLite, 1 process)", 1, None),
                  ("PostgreSQL node, 1 worker", 1, pg.url),
                  ("PostgreSQL node, 2 workers", 2, pg.url)]  # fmt: skip
        for n, (label, workers, database) in enumerate(setups):
            home = tmp / f"node{n}"
            token = TokenStore(home).create("bench") if database is None else _db_token(database)
            proc, url = node_server(home, workers, database)
            try:
                _push(url, token, tmp / f"c{n}")
                for mode in ("unverified", "verified"):
                    rows.append((f"{label}, {mode}", load(url, token, s, p, t, mode)))
            finally:
                _stop(proc)
            if database:
                _reset(database)
    _report(rows, base, args)


def _db_token(database: str) -> str:
    from inferproof.stores import SQLTokenStore

    return SQLTokenStore(database).create("bench")


def _reset(database: str) -> None:
    """Drop every table, so the next row starts from an empty database."""
    import psycopg

    with psycopg.connect(database.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")


def _report(
    rows: list[tuple[str, dict[str, float]]], base: dict[str, float], args: argparse.Namespace
) -> None:
    lines = [
        f"`.venv/bin/python bench/bench_scale.py --seconds {args.seconds:g}` on {os.cpu_count()} "
        f"cores; model mlp-4k ({SIZES}); one request per inference from {args.procs} client "
        f"processes x {args.threads} threads on the same machine; every node receipt durably "
        "logged (PostgreSQL with fsync on).",
        "",
        "| setup | requests/s | ratio to bare | p50 latency (ms) | p99 latency (ms) |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, r in rows:
        lines.append(f"| {label} | {r['rate']:,.0f} | {r['rate'] / base['rate']:.2f} | "
                     f"{r['p50']:.2f} | {r['p99']:.2f} |")  # fmt: skip
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
