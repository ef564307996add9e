"""Durable log appends on SQLite and on PostgreSQL, printed as markdown.

    .venv/bin/python bench/bench_pglog.py [--appends 200000] [--threads 64] [--out FILE]

Starts its own PostgreSQL (tests/_postgres.py) WITH ``fsync=on``, so every COMMIT the
log waits for is flushed to disk, as SQLite's ``synchronous=FULL`` is. Measures, on
each store: durable batched appends per second (``Log.append_many``, one transaction
and one signed checkpoint per batch of 256, 1024 and 4096 entries of 100 bytes);
acknowledged appends per second through ``Log.submit`` from one thread (the sequencer
batches them, up to 1024); and through ``Log.append`` from ``--threads`` threads at
once (each waits for its own acknowledgement). Then, for PostgreSQL, three ways to
write 4096 entries in one transaction: binary COPY built by us (what the store does),
psycopg's ``write_row`` COPY, and ``executemany`` (pipelined by psycopg).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests._postgres import Postgres

from inferproof.log import Log, LogStore, SignerKey, SQLiteLogStore
from inferproof.stores import PostgresLogStore
from inferproof.stores._pglog import _copy_binary

BATCHES = (256, 1024, 4096)


def _entries(n: int, start: int = 0) -> list[bytes]:
    return [f"bench entry {i:012d} ".encode().ljust(100, b".") for i in range(start, start + n)]


def _rate(count: int, fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return count / (time.perf_counter() - t)


def batched(make: Callable[[], LogStore], batch: int, count: int) -> float:
    data = _entries(count)
    with Log(make(), SignerKey.generate("bench.example/log")) as log:
        log.append_many(data[:batch])  # warm: schema, pool, first tiles

        def run() -> None:
            for i in range(batch, count + batch, batch):
                log.append_many(data[i - batch : i])

        return _rate(count, run)


def submitted(make: Callable[[], LogStore], count: int) -> float:
    with Log(make(), SignerKey.generate("bench.example/log")) as log:
        log.append(b"warm")
        data = _entries(count)
        return _rate(count, lambda: [p.result() for p in [log.submit(d) for d in data]])


def threaded(make: Callable[[], LogStore], threads: int, per_thread: int) -> float:
    with Log(make(), SignerKey.generate("bench.example/log")) as log:
        log.append(b"warm")
        go = threading.Barrier(threads + 1)

        def work(t: int) -> None:
            data = _entries(per_thread, t * per_thread)
            go.wait()
            for d in data:
                log.append(d)

        pool = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
        for th in pool:
            th.start()

        def run() -> None:
            go.wait()
            for th in pool:
                th.join()

        return _rate(threads * per_thread, run)


def entry_writes(conninfo: str, rows: int = 4096, rounds: int = 20) -> dict[str, float]:
    """Rows/s writing entries in one transaction each way, into a scratch table."""
    data = _entries(rows)
    out: dict[str, float] = {}
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("CREATE TABLE scratch (idx BIGINT PRIMARY KEY, data BYTEA NOT NULL)")

        def ours(start: int) -> None:
            with conn.cursor() as cur, cur.copy("COPY scratch FROM STDIN (FORMAT BINARY)") as c:
                c.write(_copy_binary(start, data))

        def write_row(start: int) -> None:
            with conn.cursor() as cur, cur.copy("COPY scratch FROM STDIN (FORMAT BINARY)") as c:
                c.set_types(["int8", "bytea"])
                for i, d in enumerate(data, start):
                    c.write_row((i, d))

        def executemany(start: int) -> None:
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO scratch VALUES (%s, %s)",
                                [(i, d) for i, d in enumerate(data, start)])  # fmt: skip

        n = 0
        for name, fn in (("binary COPY, our encoder", ours), ("COPY write_row", write_row),
                         ("executemany (pipeline)", executemany)):  # fmt: skip
            t = time.perf_counter()
            for _ in range(rounds):
                with conn.transaction():
                    fn(n)
                n += rows
            out[name] = rows * rounds / (time.perf_counter() - t)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--appends", type=int, default=200_000)
    parser.add_argument("--threads", type=int, default=64)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    rows = ["| store | measure | appends/s |", "|---|---|---|"]
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp, Postgres(fsync=True) as pg:
        admin = pg.url.replace("+psycopg", "")

        def pg_store() -> LogStore:
            name = "bench_" + uuid.uuid4().hex[:12]
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f"CREATE DATABASE {name}")
            return PostgresLogStore(pg.url.rsplit("/", 1)[0] + "/" + name)

        def lite_store() -> LogStore:
            return SQLiteLogStore(Path(tmp) / f"{uuid.uuid4().hex}.sqlite")

        stores = (("SQLite (WAL, synchronous=FULL)", lite_store),
                  ("PostgreSQL 15 (fsync=on, synchronous_commit=on)", pg_store))  # fmt: skip
        for label, make in stores:
            for batch in BATCHES:
                rate = batched(make, batch, args.appends)
                rows.append(f"| {label} | append_many, batches of {batch:,} | {rate:,.0f} |")
            rate = submitted(make, args.appends // 4)
            rows.append(f"| {label} | submit() from one thread, acknowledged | {rate:,.0f} |")
            per = max(1, args.appends // 20 // args.threads)
            rate = threaded(make, args.threads, per)
            rows.append(f"| {label} | append() from {args.threads} threads | {rate:,.0f} |")
        for name, rate in entry_writes(admin).items():
            rows.append(f"| PostgreSQL | 4096 entries in one transaction: {name} | {rate:,.0f} |")
    text = "\n".join(rows) + "\n"
    print(text)
    if args.out is not None:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
