"""Refuse, before starting, a circuit whose proving would not fit in memory.

Peak resident memory of ``ezkl.prove`` (and ``ezkl.setup``) grows with the number of
rows, 2**logrows, times the circuit's columns. Measured on this project's 2-core,
24 GiB machine with EZKL 23.0.5 (a small MLP forced to each logrows, peak RSS of a
child process running prove; proving key size in brackets):

    logrows  params=fixed            params=hashed
    12       128 MiB (pk  29 MiB)    143 MiB (pk  40 MiB)
    14       329 MiB (pk 112 MiB)    403 MiB (pk 162 MiB)
    16       634 MiB (pk 264 MiB)   1376 MiB (pk 628 MiB)
    17      1261 MiB (pk 528 MiB)   2661 MiB (pk 1256 MiB)

Two bounds fit every row: 64 MiB + 24 KiB per row (the hashed column, which has the
most columns per row), and 64 MiB + 2.4 x the proving key once the key exists (the
key holds the circuit's polynomials, so it scales with rows x columns whatever the
model). The estimate is the larger of the two.
"""

from __future__ import annotations

from pathlib import Path

from ...errors import InputError

_BASE = 64 * 1024 * 1024
_PER_ROW = 24 * 1024
_PER_PK_BYTE = 2.4


def estimate_bytes(logrows: int, pk_bytes: int | None = None) -> int:
    """Estimated peak memory of proving (or key setup) for a circuit of ``logrows``."""
    by_rows = _PER_ROW * (1 << logrows)
    by_key = int(_PER_PK_BYTE * pk_bytes) if pk_bytes else 0
    return _BASE + max(by_rows, by_key)


def available_bytes() -> int:
    """Memory the kernel says is available now (MemAvailable), or total RAM."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    import os

    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_memory(
    logrows: int, what: str, *, pk_bytes: int | None = None, available: int | None = None
) -> int:
    """Raise InputError when ``what`` would need more memory than is available.

    ``available`` overrides the machine's figure (tests and cautious callers).
    Returns the estimate in bytes.
    """
    need = estimate_bytes(logrows, pk_bytes)
    have = available_bytes() if available is None else available
    if need > have:
        raise InputError(
            f"{what} needs about {need / 2**20:,.0f} MiB (circuit of 2^{logrows} rows) but "
            f"only {have / 2**20:,.0f} MiB is available; refusing to start rather than be "
            "killed: use a smaller model, --target resources, or a bigger machine"
        )
    return need
