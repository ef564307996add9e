"""The child process that has EZKL write a Solidity verifier (see :mod:`._zkverifier`).

Run as ``python -m inferproof.chain._evmchild VK SETTINGS SRS SOL ABI`` with the
private ``HOME`` that holds the solc stand-in. It imports nothing of inferproof's, so
the child starts fast and the package's ``__init__`` is not run a second time.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any


def main(vk: str, settings: str, srs: str, sol: str, abi: str) -> None:
    import ezkl

    async def run() -> Any:
        # EZKL 23's binding wants a running event loop; it may return an awaitable.
        result = ezkl.create_evm_verifier(vk, settings, sol, abi, srs, False)
        return await result if hasattr(result, "__await__") else result

    try:
        ok = asyncio.run(run())
    except Exception as exc:  # EZKL raises bare RuntimeError from Rust
        sys.stderr.write(f"{exc}\n")
        ok = False
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip the interpreter's shutdown, which EZKL's binding crashes (PyGILState_Release).
    os._exit(0 if ok is not False else 1)


if __name__ == "__main__":
    main(*sys.argv[1:6])
