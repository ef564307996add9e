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
          env: dict[str, str]) -> tuple[float, str, int]:  # fmt: skip
    args = [*CLI, "image", "build", "-o", str(out), "--variant", variant, "--checkout", str(clone)]
    start = time.perf_counter()
    done = subprocess.run(args, env={**os.environ, **env, "INFERPROOF_HOME": str(home)},
                          capture_output=True, text=True, timeout=7200)  # fmt: skip
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"build failed: {done.stderr.strip()[-600:]}")
    digest = done.stdout.strip().splitlines()[-1]
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file() and "blobs" in p.parts)
    return wall, digest, size


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--variant", default="full")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
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
                wall, digest, size = build(clone, home, base / f"out-{variant}-{name}", variant,
                                           env)  # fmt: skip
            finally:
                os.umask(old)
            rows.append((variant, name, wall, size, digest))
            print(f"{variant} {name}: {wall:.1f} s", file=sys.stderr)
        print("| variant | build | wall time | image size | digest |")
        print("|---|---|---:|---:|---|")
        for variant, name, wall, size, digest in rows:
            print(f"| {variant} | {name} | {wall:.1f} s | {size:,} bytes | `{digest}` |")
        for variant in ("reduced", args.variant):
            a, b = (r[4] for r in rows if r[0] == variant)
            print(f"\n{variant}: the two builds are {'IDENTICAL' if a == b else 'DIFFERENT'}")
        full = [r for r in rows if r[0] == args.variant]
        reduced = [r for r in rows if r[0] == "reduced"]
        print(f"\n{args.variant} / reduced wall time (build A): {full[0][2] / reduced[0][2]:.1f}x")


if __name__ == "__main__":
    main()
