"""Debian's Chromium for the browser tests, driven by Playwright, installed when missing.

Playwright's own browser download is never used (`playwright install` reaches hosts this
machine cannot): the `playwright` package drives the system's `/usr/bin/chromium` through
``executable_path``. When it is missing it is installed with apt-get, as the PostgreSQL
tests install their server (tests/_postgres.py). The flags keep Chromium off the network:
without the background-networking ones it tries Google's hosts at every start, and each
refused connection is a console error a page test would count.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

__all__ = ["CHROMIUM_ARGS", "chromium_path"]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # the tests run as root in a container; the sandbox needs user namespaces
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
]


def chromium_path() -> str:
    """The Chromium binary, installed with apt-get first if this machine has none."""
    found = shutil.which("chromium") or (str(CHROMIUM) if CHROMIUM.exists() else None)
    if found:
        return found
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "chromium"]
    done = subprocess.run(install, capture_output=True, timeout=900, env=env)
    if done.returncode != 0:  # a fresh machine may have no package lists yet
        subprocess.run(["apt-get", "update", "-q"], capture_output=True, timeout=600, env=env)
        subprocess.run(install, check=True, capture_output=True, timeout=900, env=env)
    if not CHROMIUM.exists():
        raise RuntimeError("Debian's chromium package did not install /usr/bin/chromium")
    return str(CHROMIUM)
