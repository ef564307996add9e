"""Files under INFERPROOF_HOME: where it is, and writing secrets without a window."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["default_home", "write_private"]


def default_home() -> Path:
    """``$INFERPROOF_HOME`` or ``~/.inferproof``."""
    env = os.environ.get("INFERPROOF_HOME")
    return Path(env).expanduser() if env else Path.home() / ".inferproof"


def write_private(path: Path, data: bytes) -> None:
    """Create ``path`` with mode 0600 from the start (never world-readable, even briefly)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
