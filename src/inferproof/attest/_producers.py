"""Evidence producers: ask the TEE this process runs in for a signed report.

Two producers share one interface (:class:`EvidenceProducer`):

* :class:`ConfigfsTsmProducer`, the Linux configfs-tsm report interface
  (``/sys/kernel/config/tsm/report``, kernel >= 6.7), which serves Intel TDX
  and AMD SEV-SNP guests. Protocol: Documentation/ABI/testing/configfs-tsm-report.
* :class:`DstackProducer`, the dstack guest agent (PyPI ``dstack-sdk``) for TDX.

AWS Nitro's NSM device (``/dev/nsm``) speaks CBOR over an ioctl that no
maintained Python package wraps; it is not supported here.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..errors import InputError, ProducerError
from ._types import Platform

DEFAULT_TSM_ROOT = Path("/sys/kernel/config/tsm/report")
# include/linux/tsm.h: TSM_REPORT_INBLOB_MAX 64, TSM_REPORT_OUTBLOB_MAX SZ_32K,
# TSM_REPORT_PRIVLEVEL_MAX 3.
TSM_INBLOB_MAX = 64
TSM_OUTBLOB_MAX = 32 * 1024
TSM_PRIVLEVEL_MAX = 3
# The provider attribute names the driver (KBUILD_MODNAME of drivers/virt/coco/*).
TSM_PROVIDERS: dict[str, Platform] = {"tdx_guest": "tdx", "sev_guest": "snp"}
# Where the dstack guest agent listens (dstack-sdk get_endpoint, first existing path).
DSTACK_SOCKETS = (
    "/var/run/dstack.sock",
    "/run/dstack.sock",
    "/var/run/dstack/dstack.sock",
    "/run/dstack/dstack.sock",
)
_SMALL_ATTRIBUTE = 4096


@dataclass(frozen=True)
class Evidence:
    """Raw evidence from a producer, ready for :func:`verify_evidence`.

    ``auxblob`` holds what configfs-tsm returns beside the report (the SEV-SNP
    certificate table); ``event_log`` the dstack agent's RTMR event log (JSON) and
    ``app_compose`` the app-compose.json it booted (whose hash RTMR3 carries).
    """

    platform: Platform
    data: bytes
    provider: str
    auxblob: bytes | None = None
    event_log: str | None = None
    app_compose: bytes | None = None


class EvidenceProducer(Protocol):
    """Something that turns 1 to 64 bytes of report data into signed evidence."""

    name: str

    def produce(self, report_data: bytes) -> Evidence: ...


def _check_report_data(report_data: bytes) -> None:
    if not isinstance(report_data, bytes) or not 1 <= len(report_data) <= TSM_INBLOB_MAX:
        raise InputError(f"report data must be 1 to {TSM_INBLOB_MAX} bytes")


class ConfigfsTsmProducer:
    """Produce TDX or SEV-SNP evidence through Linux configfs-tsm.

    By default each call creates its own report entry under ``root`` and removes
    it afterwards (the ABI's way to avoid conflicts). With ``entry`` it uses an
    existing, possibly shared entry and relies on the ``generation`` attribute to
    detect a concurrent writer, as the ABI describes.

    Example::

        producer = ConfigfsTsmProducer()
        evidence = producer.produce(expected_report_data(node_key, nonce))
    """

    name = "configfs-tsm"

    def __init__(
        self,
        root: Path = DEFAULT_TSM_ROOT,
        *,
        entry: str | None = None,
        privlevel: int | None = None,
    ) -> None:
        if entry is not None and (not entry or "/" in entry or entry in (".", "..")):
            raise InputError(f"invalid configfs-tsm entry name {entry!r}")
        if privlevel is not None and not 0 <= privlevel <= TSM_PRIVLEVEL_MAX:
            raise InputError(f"privlevel must be 0 to {TSM_PRIVLEVEL_MAX}")
        self.root = root
        self.entry = entry
        self.privlevel = privlevel

    def available(self) -> bool:
        """True when ``root`` exists (the kernel exposes configfs-tsm reports)."""
        return self.root.is_dir()

    def produce(self, report_data: bytes) -> Evidence:
        _check_report_data(report_data)
        if self.entry is not None:
            return self._produce_in(self.root / self.entry, report_data)
        path = self.root / f"inferproof-{secrets.token_hex(8)}"
        try:
            path.mkdir()
        except OSError as exc:
            raise ProducerError(f"cannot create a configfs-tsm report entry: {exc}") from exc
        try:
            return self._produce_in(path, report_data)
        finally:
            # Removing the entry frees the kernel's report; failing to is harmless.
            with contextlib.suppress(OSError):
                path.rmdir()

    def _produce_in(self, path: Path, report_data: bytes) -> Evidence:
        start = self._generation(path)
        writes = 0
        if self.privlevel is not None:
            self._write(path / "privlevel", str(self.privlevel).encode())
            writes += 1
        self._write(path / "inblob", report_data)
        writes += 1
        outblob = self._read(path / "outblob", TSM_OUTBLOB_MAX)
        end = self._generation(path)
        # ABI: generation increments on each write; any other count means another
        # writer changed the entry between our write and our read.
        if end != start + writes:
            raise ProducerError(
                f"configfs-tsm entry changed concurrently: generation {end}, "
                f"expected {start + writes}"
            )
        provider = self._read(path / "provider", _SMALL_ATTRIBUTE).decode("ascii", "replace")
        provider = provider.strip()
        platform = TSM_PROVIDERS.get(provider)
        if platform is None:
            raise ProducerError(f"unsupported configfs-tsm provider {provider!r}")
        if not outblob:
            raise ProducerError("configfs-tsm returned an empty report")
        auxblob = None
        if (path / "auxblob").exists():
            with contextlib.suppress(OSError):
                auxblob = self._read(path / "auxblob", TSM_OUTBLOB_MAX) or None
        return Evidence(platform, outblob, f"configfs-tsm:{provider}", auxblob=auxblob)

    @staticmethod
    def _read(path: Path, cap: int) -> bytes:
        try:
            with path.open("rb") as handle:
                data = handle.read(cap + 1)
        except OSError as exc:
            raise ProducerError(f"cannot read {path.name} of {path.parent}: {exc}") from exc
        if len(data) > cap:
            raise ProducerError(f"{path.name} is over {cap} bytes")
        return data

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        try:
            with path.open("wb") as handle:
                handle.write(data)
        except OSError as exc:
            raise ProducerError(f"cannot write {path.name} of {path.parent}: {exc}") from exc

    def _generation(self, path: Path) -> int:
        text = self._read(path / "generation", _SMALL_ATTRIBUTE).strip()
        if not text.isdigit():
            raise ProducerError(f"{path}/generation is not a number: {text[:20]!r}")
        return int(text)


class DstackProducer:
    """Produce TDX evidence through the dstack guest agent (PyPI ``dstack-sdk``).

    ``endpoint`` is the agent's unix socket (or an http URL); by default the first
    of the agent's standard socket paths that exists.

    Example::

        evidence = DstackProducer().produce(expected_report_data(node_key))
        evidence.event_log  # RTMR event log, JSON text
    """

    name = "dstack"

    def __init__(self, endpoint: str | None = None, *, timeout: float = 30.0) -> None:
        self.endpoint = endpoint or next(
            (p for p in DSTACK_SOCKETS if os.path.exists(p)), DSTACK_SOCKETS[0]
        )
        self.timeout = timeout

    def available(self) -> bool:
        """True when the agent's socket exists (or the endpoint is an http URL)."""
        return self.endpoint.startswith(("http://", "https://")) or os.path.exists(self.endpoint)

    def produce(self, report_data: bytes) -> Evidence:
        _check_report_data(report_data)
        try:
            import httpx
            from dstack_sdk import DstackClient
        except ImportError as exc:
            raise ProducerError("the dstack producer needs the dstack-sdk package") from exc
        try:
            client = DstackClient(self.endpoint, timeout=self.timeout)
            response = client.get_quote(report_data)
            quote = response.decode_quote()
            # The app-compose RTMR3 measured, so a verifier can tell which image runs.
            compose = client.info().tcb_info.app_compose
        # The SDK lets through httpx errors, pydantic's ValidationError (a ValueError),
        # hex decoding errors and OS errors (a missing socket).
        except (httpx.HTTPError, OSError, ValueError, RuntimeError) as exc:
            raise ProducerError(f"dstack guest agent at {self.endpoint}: {exc}") from exc
        if not quote:
            raise ProducerError("the dstack guest agent returned an empty quote")
        return Evidence("tdx", quote, "dstack", event_log=response.event_log or None,
                        app_compose=compose.encode() if compose else None)  # fmt: skip


def detect_producer(
    tsm_root: Path = DEFAULT_TSM_ROOT, dstack_endpoint: str | None = None
) -> EvidenceProducer | None:
    """The producer for the TEE this process runs in, or None on ordinary hardware.

    configfs-tsm is preferred (it needs no agent); then the dstack guest agent.

    Example::

        producer = detect_producer()
        if producer is None:
            environment = software_environment()  # no TEE: software measurement
    """
    tsm = ConfigfsTsmProducer(tsm_root)
    if tsm.available():
        return tsm
    dstack = DstackProducer(dstack_endpoint)
    if dstack.available():
        return dstack
    return None
