"""A stand-in for a native ``solc`` 0.8.20 where EZKL looks for one, running solc-js.

EZKL's ``create_evm_verifier`` compiles the verifier it writes with a native solc
found through svm (``$HOME/.svm/0.8.20/solc-0.8.20``, svm-rs 0.5's data folder) and
otherwise downloads one. No download happens here: :func:`install` writes this
module's launcher at that path under a private ``HOME`` made for one EZKL call, and
the launcher answers solc's command line with the pinned solc-js (the same compiler
version; the solc-js build of it). Only what EZKL asks is answered: ``--version`` and
``--standard-json`` with the request on stdin.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from ._tools import SOLC_VERSION, node_modules, solc_json

__all__ = ["install"]

# solc's own answer to --version (its native format, which svm and foundry parse).
_VERSION = f"solc, the solidity compiler commandline interface\nVersion: {SOLC_VERSION}+commit.a1b79de6.Linux.g++\n"  # noqa: E501
# The largest request read from stdin: EZKL's verifier sources are about 70 kB; a
# circuit several hundred times larger would not deploy on any EVM chain either.
MAX_REQUEST_BYTES = 64 << 20


def install(home: Path) -> Path:
    """Write the svm launcher under ``home`` (a private HOME); its path."""
    target = home / ".svm" / SOLC_VERSION / f"solc-{SOLC_VERSION}"
    target.parent.mkdir(parents=True, exist_ok=True)
    env = shlex.quote(str(node_modules()))
    python = shlex.quote(sys.executable)
    target.write_text(
        "#!/bin/sh\n"
        f'INFERPROOF_NODE_MODULES={env} exec {python} -m inferproof.chain._svmshim "$@"\n'
    )
    target.chmod(0o700)
    return target


def main(argv: list[str]) -> int:
    if "--version" in argv:
        sys.stdout.write(_VERSION)
        return 0
    if "--standard-json" not in argv:
        sys.stderr.write(f"this solc stand-in answers --version and --standard-json only: {argv}\n")
        return 2
    request = sys.stdin.buffer.read(MAX_REQUEST_BYTES + 1)
    if len(request) > MAX_REQUEST_BYTES:
        sys.stderr.write(f"request over {MAX_REQUEST_BYTES} bytes\n")
        return 2
    sys.stdout.write(solc_json(request.decode("utf-8")))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
