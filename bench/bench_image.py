"""The node image built twice, as two machines would: each build in its own clean
home (its own download cache, so each compiles llama-cpp-python from source on its
own), the second under another umask and time zone, both from a fresh
clone of the same commit. Prints each build's time, size and digest, whether they are
equal, and the reduced variant (what CI builds on every run) as the reference.

Run: .venv/bin/python bench/bench_image.py [--variant full]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "inferproof"]


def build(clone: Path, home: Path, out: Path, variant: str,
          env: dict[str, str]) -> tuple[float, str, int, dict[str, str]]:  # fmt: skip
    args = [*CLI, "image", "build", "-o", str(out), "--variant", variant, "--checkout", str(clone)]
    start = time.perf_counter()
    done = subprocess.run(args, env={**os.environ, **env, "INFERPROOF_HOME": str(home)},
                          capture_output=True, text=True, timeout=7200)  # fmt: skip
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"build failed: {done.stderr.strip()[-600:]}")
    lines = done.stdout.strip().splitlines()
    layers = dict(line.removeprefix("layer ").split(": ", 1) for line in lines
                  if line.startswith("layer "))  # fmt: skip
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file() and "blobs" in p.parts)
    return wall, lines[-1], size, layers


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--variant", default="full")
    parser.add_argument("--keep", type=Path, help="build in this new folder and keep it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = args.keep or Path(tmp)
        if args.keep:
            base.mkdir(parents=True)  # a new folder: nothing of an earlier run is reused
        clone = base / "clone"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        rows = []
        runs = [("reduced", "A", {}), ("reduced", "B", {"TZ": "Asia/Tokyo"}),
                (args.variant, "A", {}), (args.variant, "B", {"TZ": "Asia/Tokyo"})]  # fmt: skip
        for variant, name, env in runs:
            # Each home is new: nothing downloaded or compiled by the other build is seen.
            home = base / f"home-{variant}-{name}"
            old = os.umask(0o077 if name == "B" else 0o022)
            try:
                wall, digest, size, layers = build(clone, home, base / f"out-{variant}-{name}", variant,
                                           env)  # fmt: skip
            finally:
                os.umask(old)
            rows.append((variant, name, wall, size, digest, layers))
            print(f"{variant} {name}: {wall:.1f} s", file=sys.stderr)
        print("| variant | build | wall time | image size | digest |")
        print("|---|---|---:|---:|---|")
        for variant, name, wall, size, digest, _ in rows:
            print(f"| {variant} | {name} | {wall:.1f} s | {size:,} bytes | `{digest}` |")
        for variant in ("reduced", args.variant):
            (a, la), (b, lb) = ((r[4], r[5]) for r in rows if r[0] == variant)
            differ = [n for n in la if la[n] != lb.get(n)]
            print(f"\n{variant}: the two builds are {'IDENTICAL' if a == b else 'DIFFERENT'}"
                  + (f" (layers that differ: {', '.join(differ)})" if differ else ""))  # fmt: skip
        full = [r for r in rows if r[0] == args.variant]
        reduced = [r for r in rows if r[0] == "reduced"]
        print(f"\n{args.variant} / reduced wall time (build A): {full[0][2] / reduced[0][2]:.1f}x")


if __name__ == "__main__":
    main()
