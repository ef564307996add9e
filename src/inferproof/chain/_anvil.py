"""A real local EVM node: Foundry's anvil on loopback, for tests and the demo."""

from __future__ import annotations

import socket
import subprocess
import time
from typing import Any

from ..errors import Error
from ._tools import anvil_binary

__all__ = ["Anvil"]

# anvil's default chain id; its ten funded development accounts are unlocked.
CHAIN_ID = 31337
_START_SECONDS = 60.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Anvil:
    """anvil on a free loopback port, stopped on exit.

    Example::

        with Anvil() as chain:
            print(chain.url, chain.web3.eth.block_number)
    """

    def __init__(self, *, block_time: float | None = None, accounts: int = 10) -> None:
        """``block_time``: mine every so many seconds (default: on each transaction);
        ``accounts``: how many funded development accounts the node unlocks."""
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._block_time = block_time
        self._accounts = accounts
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Anvil:
        args = [str(anvil_binary()), "--host", "127.0.0.1", "--port", str(self.port),
                "--chain-id", str(CHAIN_ID), "--accounts", str(self._accounts),
                "--silent"]  # fmt: skip
        if self._block_time is not None:
            args += ["--block-time", f"{self._block_time:g}"]
        self._proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + _START_SECONDS
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                err = (self._proc.stderr.read() if self._proc.stderr else b"").decode()[:300]
                raise Error(f"anvil exited with code {self._proc.returncode}: {err}")
            try:
                if self.web3.is_connected():
                    return self
            except Exception:  # not listening yet
                pass
            time.sleep(0.05)
        self.__exit__()
        raise Error(f"anvil did not answer within {_START_SECONDS:.0f} s")

    def __exit__(self, *_: object) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()

    @property
    def web3(self) -> Any:
        from web3 import Web3

        return Web3(Web3.HTTPProvider(self.url, request_kwargs={"timeout": 30}))

    @property
    def accounts(self) -> list[str]:
        return list(self.web3.eth.accounts)
