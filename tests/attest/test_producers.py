"""Evidence producers against stand-ins for the hardware interfaces.

configfs-tsm: a fake tree in tmp_path whose "kernel" is a thread serving FIFOs (the one
fake the project allows, since it stands for TEE hardware; the blob it hands back is a
real TDX quote or SEV-SNP report from the vectors). dstack: the real dstack-sdk client
talking HTTP over a real unix socket to a small local server.
"""

from __future__ import annotations

import json
import os
import socketserver
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import ClassVar

import pytest

from inferproof.attest import (
    ConfigfsTsmProducer,
    DstackProducer,
    ProducerError,
    detect_producer,
    expected_report_data,
    verify_evidence,
)
from inferproof.attest._producers import DEFAULT_TSM_ROOT, DSTACK_SOCKETS
from inferproof.errors import InputError

from .conftest import needs_vectors, utc, vector

REPORT_DATA = expected_report_data(bytes(range(32)), b"nonce")
TIMEOUT = 10.0


class FakeTsmEntry:
    """A configfs-tsm report entry whose kernel side is a thread (stands for hardware).

    Like the kernel, writing ``inblob`` bumps ``generation`` and reading ``outblob``
    returns the report. ``extra_writes`` simulates another process writing the entry.
    """

    def __init__(
        self, path: Path, blob: bytes, provider: str, *, extra_writes: int = 0, writes: int = 1
    ) -> None:
        path.mkdir(parents=True)
        (path / "provider").write_text(provider + "\n")
        (path / "generation").write_text("7\n")
        os.mkfifo(path / "inblob")
        os.mkfifo(path / "outblob")
        self.path, self.blob = path, blob
        self.bump = writes + extra_writes
        self.inblob: bytes | None = None
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        with (self.path / "inblob").open("rb") as handle:
            self.inblob = handle.read()
        (self.path / "generation").write_text(f"{7 + self.bump}\n")
        with (self.path / "outblob").open("wb") as handle:
            handle.write(self.blob)

    def join(self) -> None:
        self.thread.join(TIMEOUT)
        assert not self.thread.is_alive()


@needs_vectors
def test_configfs_tdx_round_trip(tmp_path: Path) -> None:
    entry = FakeTsmEntry(tmp_path / "report" / "shared", vector("tdx/tdx_quote"), "tdx_guest")
    evidence = ConfigfsTsmProducer(tmp_path / "report", entry="shared").produce(REPORT_DATA)
    entry.join()
    assert entry.inblob == REPORT_DATA
    assert evidence.platform == "tdx" and evidence.provider == "configfs-tsm:tdx_guest"
    assert evidence.auxblob is None
    report = verify_evidence(
        evidence.data,
        evidence.platform,
        [vector("tdx/tdx_quote_collateral.json")],
        at=utc("2025-07-01T00:00:00"),
    )
    assert report.tcb_status == "UpToDate"


@needs_vectors
def test_configfs_snp_with_auxblob_and_privlevel(tmp_path: Path) -> None:
    root = tmp_path / "report"
    entry = FakeTsmEntry(root / "e", vector("snp/attestation.bin"), "sev_guest", writes=2)
    (entry.path / "auxblob").write_bytes(b"certificate table")
    (entry.path / "privlevel").write_text("")
    evidence = ConfigfsTsmProducer(root, entry="e", privlevel=0).produce(REPORT_DATA)
    entry.join()
    assert (entry.path / "privlevel").read_text() == "0"
    assert evidence.platform == "snp" and evidence.auxblob == b"certificate table"
    assert evidence.data == vector("snp/attestation.bin")


def test_configfs_detects_a_concurrent_writer(tmp_path: Path) -> None:
    entry = FakeTsmEntry(tmp_path / "r" / "e", b"\x04\x00report", "tdx_guest", extra_writes=1)
    with pytest.raises(ProducerError, match="concurrently"):
        ConfigfsTsmProducer(tmp_path / "r", entry="e").produce(REPORT_DATA)
    entry.join()


def test_configfs_unknown_provider(tmp_path: Path) -> None:
    entry = FakeTsmEntry(tmp_path / "r" / "e", b"blob", "arm_cca_guest")
    with pytest.raises(ProducerError, match="provider"):
        ConfigfsTsmProducer(tmp_path / "r", entry="e").produce(REPORT_DATA)
    entry.join()


def test_configfs_fresh_entry_is_removed_on_failure(tmp_path: Path) -> None:
    # A plain directory is no configfs: the new entry has no attributes.
    root = tmp_path / "report"
    root.mkdir()
    producer = ConfigfsTsmProducer(root)
    assert producer.available()
    with pytest.raises(ProducerError, match="generation"):
        producer.produce(REPORT_DATA)
    assert list(root.iterdir()) == []


def test_configfs_input_errors(tmp_path: Path) -> None:
    with pytest.raises(ProducerError, match="cannot create"):
        ConfigfsTsmProducer(tmp_path / "absent").produce(REPORT_DATA)
    for data in (b"", bytes(65)):
        with pytest.raises(InputError, match="1 to 64"):
            ConfigfsTsmProducer(tmp_path).produce(data)
    for bad in ("", "..", "a/b"):
        with pytest.raises(InputError, match="entry"):
            ConfigfsTsmProducer(tmp_path, entry=bad)
    with pytest.raises(InputError, match="privlevel"):
        ConfigfsTsmProducer(tmp_path, privlevel=4)


APP_COMPOSE = '{"manifest_version":2,"name":"agent-test"}'


class _AgentHandler(BaseHTTPRequestHandler):
    quote: bytes = b""
    status = 200
    requests: ClassVar[list[tuple[str, dict[str, str]]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append((self.path, body))
        answer = {"quote": self.quote.hex(), "event_log": "[]"}
        if self.path == "/Info":  # the agent's own description, the app-compose within
            tcb = {k: "00" for k in ("mrtd", "rtmr0", "rtmr1", "rtmr2", "rtmr3",
                                     "mr_aggregated", "os_image_hash", "compose_hash",
                                     "device_id")}  # fmt: skip
            tcb |= {"app_compose": APP_COMPOSE, "event_log": []}
            answer = {k: "x" for k in ("app_id", "instance_id", "app_cert", "app_name",
                                       "device_id", "key_provider_info", "compose_hash")}
            answer["tcb_info"] = json.dumps(tcb)  # type: ignore[assignment]
        reply = json.dumps(answer).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def address_string(self) -> str:  # unix sockets have no client address
        return "unix"

    def log_message(self, *args: object) -> None:
        pass


class _UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


@pytest.fixture()
def agent(tmp_path: Path) -> Iterator[tuple[str, type[_AgentHandler]]]:
    pytest.importorskip("dstack_sdk", reason="the dstack producer needs dstack-sdk")
    socket_path = str(tmp_path / "dstack.sock")
    handler = type("Handler", (_AgentHandler,), {"requests": [], "quote": b"", "status": 200})
    server = _UnixHTTPServer(socket_path, handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield socket_path, handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join(TIMEOUT)


@needs_vectors
def test_dstack_producer_over_a_unix_socket(agent: tuple[str, type[_AgentHandler]]) -> None:
    socket_path, handler = agent
    handler.quote = vector("tdx/tdx_quote")
    producer = DstackProducer(socket_path)
    assert producer.available()
    evidence = producer.produce(REPORT_DATA)
    assert handler.requests == [("/GetQuote", {"report_data": REPORT_DATA.hex()}), ("/Info", {})]
    assert evidence.platform == "tdx" and evidence.data == vector("tdx/tdx_quote")
    assert evidence.event_log == "[]" and evidence.app_compose == APP_COMPOSE.encode()


def test_dstack_producer_errors(agent: tuple[str, type[_AgentHandler]], tmp_path: Path) -> None:
    socket_path, handler = agent
    handler.status = 500
    with pytest.raises(ProducerError, match="dstack"):
        DstackProducer(socket_path).produce(REPORT_DATA)
    handler.status, handler.quote = 200, b""
    with pytest.raises(ProducerError, match="empty quote"):
        DstackProducer(socket_path).produce(REPORT_DATA)
    with pytest.raises(ProducerError, match="dstack"):
        DstackProducer(str(tmp_path / "absent.sock")).produce(REPORT_DATA)


def test_detect_producer(tmp_path: Path, agent: tuple[str, type[_AgentHandler]]) -> None:
    socket_path, _handler = agent
    absent_tsm, absent_sock = tmp_path / "no-tsm", str(tmp_path / "no.sock")
    assert detect_producer(absent_tsm, absent_sock) is None
    found = detect_producer(absent_tsm, socket_path)
    assert isinstance(found, DstackProducer) and found.endpoint == socket_path
    (tmp_path / "tsm").mkdir()
    assert isinstance(detect_producer(tmp_path / "tsm", socket_path), ConfigfsTsmProducer)


@pytest.mark.skipif(
    DEFAULT_TSM_ROOT.exists() or any(os.path.exists(p) for p in DSTACK_SOCKETS),
    reason="this machine exposes a TEE interface",
)
def test_no_producer_on_ordinary_hardware() -> None:
    assert detect_producer() is None
