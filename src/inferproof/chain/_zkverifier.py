"""EZKL's Solidity verifier for one ZK setup, built the same way by everyone.

:func:`build_verifier` has EZKL 23 write the Halo2 verifier for a setup's verifying
key, settings and SRS (``create_evm_verifier``), then compiles it with the pinned
solc-js under fixed settings. Both steps are deterministic, so a verifier of a receipt
builds the same runtime code from the setup the bundle carries and compares it with
the code deployed at the address the settlement contract names: that the chain's
verifier is the circuit's rests on this comparison, not on anyone's word.

EZKL runs in a child process: its Python binding of ``create_evm_verifier`` needs a
running event loop and crashes the interpreter at exit (PyGILState_Release, seen with
23.0.5), and it finds solc through ``$HOME/.svm``, which is given a private ``HOME``
holding the stand-in of :mod:`._svmshim` rather than the user's.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._canonical import sha256_digest
from ..errors import Error, ZkError
from . import _svmshim
from ._tools import compile_source

if TYPE_CHECKING:
    from ..hub import BlobStore
    from ..proofs.zk import ZkSetup

__all__ = ["VERIFIER_SETTINGS", "EvmVerifier", "build_verifier"]

# Fixed settings for every verifier build (a change changes every verifier's code).
# One optimizer run: the verifier is called rarely next to its size (13 kB of code
# for a small circuit); EZKL's own build uses the optimizer as well.
VERIFIER_SETTINGS: dict[str, Any] = {
    "optimizer": {"enabled": True, "runs": 1},
    "evmVersion": "shanghai",
    "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}},
}
# Seconds EZKL may take to write a verifier (about 2 s for the circuits proved here;
# the time grows with the number of columns, not with the rows).
GENERATE_TIMEOUT = 600
_FILE, _CONTRACT = "Verifier.sol", "Halo2Verifier"
_BUILT: dict[tuple[str, str, str], EvmVerifier] = {}


@dataclass(frozen=True)
class EvmVerifier:
    """A built verifier: its Solidity source, ABI, creation code and runtime code."""

    setup_digest: str
    source: str
    abi: tuple[dict[str, Any], ...]
    bytecode: str
    runtime: str

    @property
    def source_digest(self) -> str:
        return sha256_digest(self.source.encode())

    @property
    def code_hash(self) -> bytes:
        """keccak-256 of the runtime code: what ``EXTCODEHASH`` gives on chain."""
        from eth_utils.crypto import keccak

        return bytes(keccak(bytes.fromhex(self.runtime[2:])))


def build_verifier(
    setup: ZkSetup, store: BlobStore, progress: Callable[[str], None] | None = None
) -> EvmVerifier:
    """The Solidity verifier of ``setup`` (its keys and SRS from ``store``), compiled.

    Built once per process and setup artifacts. Example::

        built = build_verifier(record, hub.blobs)
        address = deploy_verifier(w3, sender, built)
    """
    key = (setup.vk_digest, setup.settings_digest, setup.srs_digest)
    if key in _BUILT:
        return _BUILT[key]
    from ..proofs.zk import artifact_path

    say = progress or (lambda _: None)
    with tempfile.TemporaryDirectory(prefix="inferproof-evm-") as tmp:
        work = Path(tmp)
        files = [
            artifact_path(store, digest, work, name)
            for digest, name in ((setup.vk_digest, "vk"), (setup.settings_digest, "settings"),
                                 (setup.srs_digest, "srs"))
        ]  # fmt: skip
        say("generating the Solidity verifier (EZKL)")
        source = _generate(work, *files)
    say("compiling the verifier (solc 0.8.20)")
    out = compile_source(_FILE, source, _CONTRACT, VERIFIER_SETTINGS)
    built = EvmVerifier(
        setup.digest(), source, tuple(out["abi"]),
        "0x" + out["evm"]["bytecode"]["object"], "0x" + out["evm"]["deployedBytecode"]["object"],
    )  # fmt: skip
    _BUILT[key] = built
    return built


def _generate(work: Path, vk: Path, settings: Path, srs: Path) -> str:
    """EZKL's ``create_evm_verifier`` in a child process; the Solidity it wrote."""
    home = work / "home"
    _svmshim.install(home)
    sol = work / _FILE
    env = {**os.environ, "HOME": str(home), "XDG_DATA_HOME": str(home / ".local" / "share")}
    # Absolute paths: the child runs in the work folder (a store's paths may be relative).
    files = [str(p.resolve()) for p in (vk, settings, srs, sol, work / "abi.json")]
    args = [sys.executable, "-m", "inferproof.chain._evmchild", *files]
    try:
        done = subprocess.run(args, env=env, cwd=work, capture_output=True, text=True,
                              timeout=GENERATE_TIMEOUT)  # fmt: skip
    except subprocess.TimeoutExpired:
        raise ZkError(f"EZKL ran longer than {GENERATE_TIMEOUT} s writing the verifier") from None
    if done.returncode != 0 or not sol.is_file():
        tail = (done.stderr or done.stdout).strip().splitlines()
        why = tail[-1][:300] if tail else f"exit {done.returncode}"
        raise Error(f"EZKL create_evm_verifier failed: {why}")
    return sol.read_text()
