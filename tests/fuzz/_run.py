"""Run one fuzz target for a bounded time: ``python -m tests.fuzz._run NAME [options]``.

From the repository root, for example ``python -m tests.fuzz._run bundle --seconds 600``.
Two engines run the same targets:

- ``atheris`` (the default where it is installed: Linux x86_64): libFuzzer, guided by
  the coverage of the inferproof package, which is instrumented as it is imported.
  libFuzzer bounds the time of each input (``-timeout``) and the process's memory
  (``-rss_limit_mb``); the target bounds each input's allocations (``bounded``).
- ``mutate``: a random mutator over the seeds (bit flips, byte edits, dictionary
  tokens, edge-case numbers, splices), for machines without atheris. It bounds
  each input's time with an interval timer.

Exit status 0 means no crash in the time given. Otherwise the input that broke
the property is in ``--artifacts`` (``crash-<sha1>`` or ``timeout-<sha1>``) and
stderr shows why. ``--material`` is a folder made by ``_material.build`` (made
afresh when absent). Only the standard library is imported before the
instrumentation starts, so every inferproof module is instrumented.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import random
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

DEFAULT_SECONDS = 3.0
# One input of at most 64 KiB taking this long is a hang: the slowest legitimate one,
# a model re-executed by the verifier, takes milliseconds.
TIME_LIMIT_SECONDS = 10
# Numbers a mutator writes over digits: the edges of the integer types we parse.
INTERESTING = (b"0", b"-1", b"255", b"65536", b"2147483648", b"4294967296", b"1e400")
INTERESTING += (b"9223372036854775808", b"18446744073709551616", b"68719476736")


def _options(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tests.fuzz._run", description=__doc__)
    p.add_argument("target")
    seconds = float(os.environ.get("INFERPROOF_FUZZ_SECONDS", DEFAULT_SECONDS))
    p.add_argument("--seconds", type=float, default=seconds)
    p.add_argument("--material", type=Path)
    artifacts = Path(tempfile.gettempdir()) / "inferproof-fuzz-artifacts"
    p.add_argument("--artifacts", type=Path, default=artifacts)
    p.add_argument("--corpus", type=Path)
    p.add_argument("--engine", choices=("atheris", "mutate"), default=_default_engine())
    p.add_argument("--time-limit", type=int, default=None, help="seconds per input")
    p.add_argument("--seed", type=int, default=0, help="0: random")
    return p.parse_args(argv)


def _default_engine() -> str:
    try:
        import atheris  # noqa: F401
    except ImportError:
        return "mutate"
    return "atheris"


def _load(opts: argparse.Namespace) -> Any:
    """The target, with its material (built now when none is given)."""
    from . import targets
    from ._material import Material, build

    root = opts.material
    if root is None:
        root = build(Path(tempfile.mkdtemp(prefix="inferproof-fuzz-")) / "material")
    os.environ.setdefault("INFERPROOF_HOME", str(root / "home"))
    return targets.load(opts.target, Material(root))


def _corpus(opts: argparse.Namespace, target: Any) -> Path:
    folder = opts.corpus or Path(tempfile.mkdtemp(prefix=f"corpus-{target.name}-"))
    folder.mkdir(parents=True, exist_ok=True)
    for seed in target.seeds:
        (folder / hashlib.sha1(seed).hexdigest()).write_bytes(seed)
    return folder


def run_atheris(opts: argparse.Namespace, limit: int) -> None:
    import atheris

    with atheris.instrument_imports(include=["inferproof"], exclude=_uncovered(opts.target)):
        target = _load(opts)
    from ._harness import bounded, dictionary_line

    corpus = _corpus(opts, target)
    words = corpus.parent / f"{target.name}.dict"
    words.write_text("".join(dictionary_line(t) + "\n" for t in target.tokens))
    opts.artifacts.mkdir(parents=True, exist_ok=True)
    args = [
        sys.argv[0],
        str(corpus),
        f"-max_total_time={max(int(opts.seconds), 1)}",
        f"-timeout={limit}",
        "-rss_limit_mb=2048",
        f"-max_len={max(target.max_len, *map(len, target.seeds))}",
        f"-artifact_prefix={opts.artifacts}/",
        f"-seed={opts.seed}",
        "-print_final_stats=1",
    ]
    if target.tokens:
        args.append(f"-dict={words}")
    print(f"fuzz: {target.name}: {len(target.seeds)} seeds, atheris", file=sys.stderr)
    atheris.Setup(args, bounded(target.run))
    atheris.Fuzz()


def _uncovered(name: str) -> list[str]:
    """The inferproof modules outside the target's coverage (``_names.COVERAGE``), found
    on disk, so nothing is imported before the instrumentation starts."""
    from ._names import COVERAGE

    spec = importlib.util.find_spec("inferproof")
    assert spec is not None and spec.submodule_search_locations
    root = Path(next(iter(spec.submodule_search_locations)))
    covered = COVERAGE.get(name, ("inferproof",))
    modules = []
    for path in root.rglob("*.py"):
        parts = ("inferproof", *path.relative_to(root).with_suffix("").parts)
        modules.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return [m for m in modules if not any(m == c or m.startswith(c + ".") for c in covered)]


class Hang(AssertionError):
    """One input ran past the time limit."""


def _alarm(_signum: int, _frame: FrameType | None) -> None:
    raise Hang("the input ran past the time limit")


def mutate(
    rng: random.Random, data: bytes, seeds: tuple[bytes, ...], tokens: tuple[bytes, ...]
) -> bytes:
    """One to four random edits of ``data``."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        pos = rng.randrange(len(buf) + 1)
        kind = rng.randrange(7)
        if kind == 0 and buf:
            buf[pos % len(buf)] ^= 1 << rng.randrange(8)
        elif kind == 1 and buf:
            buf[pos % len(buf)] = rng.choice((0, 0x7F, 0x80, 0xFF, rng.randrange(256)))
        elif kind == 2 and tokens:
            buf[pos:pos] = rng.choice(tokens)
        elif kind == 3:
            del buf[pos : pos + rng.randint(1, 16)]
        elif kind == 4:
            buf[pos:pos] = buf[pos : pos + rng.randint(1, 64)]
        elif kind == 5:
            buf = _renumber(rng, buf)
        else:
            other = rng.choice(seeds)
            buf = buf[:pos] + other[rng.randrange(len(other) + 1) :]
    return bytes(buf)


def _renumber(rng: random.Random, buf: bytearray) -> bytearray:
    """Write an edge-case number over one run of ASCII digits."""
    starts = [
        i
        for i, b in enumerate(buf)
        if 0x30 <= b <= 0x39 and (i == 0 or not 0x30 <= buf[i - 1] <= 0x39)
    ]
    if not starts:
        return buf
    start = end = rng.choice(starts)
    while end < len(buf) and 0x30 <= buf[end] <= 0x39:
        end += 1
    return buf[:start] + rng.choice(INTERESTING) + buf[end:]


def run_mutate(opts: argparse.Namespace, limit: int) -> None:
    target = _load(opts)
    from ._harness import bounded

    one = bounded(target.run)
    rng = random.Random(opts.seed or None)
    corpus = target.seeds
    print(f"fuzz: {target.name}: {len(corpus)} seeds, mutate", file=sys.stderr)
    signal.signal(signal.SIGALRM, _alarm)
    for seed in corpus:
        _execute(one, seed, opts.artifacts, limit)
    runs, deadline = len(corpus), time.monotonic() + opts.seconds
    while time.monotonic() < deadline:
        data = mutate(rng, rng.choice(corpus), corpus, target.tokens)
        _execute(one, data[: target.max_len], opts.artifacts, limit)
        runs += 1
    print(f"Done {runs} runs in {opts.seconds:g} second(s)", file=sys.stderr)


def _execute(one: Callable[[bytes], None], data: bytes, artifacts: Path, limit: int) -> None:
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        one(data)
    except BaseException as exc:  # every escape, even SystemExit, is a crash to record
        signal.setitimer(signal.ITIMER_REAL, 0)
        kind = "timeout" if isinstance(exc, Hang) else "crash"
        artifacts.mkdir(parents=True, exist_ok=True)
        path = artifacts / f"{kind}-{hashlib.sha1(data).hexdigest()}"
        path.write_bytes(data)
        traceback.print_exc()
        print(f"fuzz: {kind} input written to {path}", file=sys.stderr)
        sys.exit(1)
    signal.setitimer(signal.ITIMER_REAL, 0)


def main(argv: list[str]) -> None:
    opts = _options(argv)
    limit = opts.time_limit or TIME_LIMIT_SECONDS
    (run_atheris if opts.engine == "atheris" else run_mutate)(opts, limit)


if __name__ == "__main__":
    main(sys.argv[1:])
