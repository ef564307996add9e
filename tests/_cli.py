"""Running the command line as a user does: ``python -m inferproof`` in a real process."""

from __future__ import annotations

import subprocess
import sys


def inferproof(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "inferproof", *args],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
