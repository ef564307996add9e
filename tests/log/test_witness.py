"""A real tlog-witness server on 127.0.0.1: every status code of add-checkpoint, and the client."""

from __future__ import annotations

import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from inferproof.log import (
    Checkpoint,
    Log,
    SignerKey,
    Witness,
    WitnessEndpoint,
    cosign_checkpoint,
    make_server,
    open_checkpoint,
    sign_note,
)
from inferproof.log._witness import encode_request, parse_request

from .conftest import VECTORS, entry


@dataclass
class Server:
    url: str
    witness: Witness


@pytest.fixture
def server(tmp_path: Path, log: Log, witness_signer: SignerKey) -> Iterator[Server]:
    witness = Witness(
        witness_signer, [log.verifier_key], tmp_path / "witness.sqlite", lambda: 1700000000
    )
    httpd = make_server(witness, "127.0.0.1", 0, quiet=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield Server(f"http://127.0.0.1:{httpd.server_address[1]}", witness)
    httpd.shutdown()
    httpd.server_close()
    witness.close()


def _post(url: str, body: bytes) -> tuple[int, bytes, str]:
    req = urllib.request.Request(url + "/add-checkpoint", data=body, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read(), resp.headers["Content-Type"]
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), exc.headers["Content-Type"]


def test_request_format_parses_the_spec_example() -> None:
    old, proof, note = parse_request((VECTORS / "c2sp_witness_request.txt").read_bytes())
    assert old == 20852014 and len(proof) == 4 and note.startswith(b"example.com/behind-the-sofa\n")


def test_status_codes(server: Server, log: Log, log_signer: SignerKey) -> None:
    log.append_many([entry(i) for i in range(10)])
    cp10 = log.checkpoint().encode()
    status, body, _ = _post(server.url, encode_request(0, [], cp10))
    assert status == 200 and body.startswith("— test.example/witness1 ".encode())
    assert server.witness.recorded(log.origin) == (10, log.root(10))
    # Old size not the recorded one: 409 with the recorded size.
    log.append_many([entry(i) for i in range(10, 30)])
    cp30 = log.checkpoint().encode()
    status, body, ctype = _post(server.url, encode_request(0, [], cp30))
    assert (status, body, ctype) == (409, b"10\n", "text/x.tlog.size")
    # Bad consistency proof: 422.
    proof = log.consistency_proof(10, 30)
    bad = [bytes([proof[0][0] ^ 1]) + proof[0][1:], *proof[1:]]
    assert _post(server.url, encode_request(10, bad, cp30))[0] == 422
    # Old size above the checkpoint size: 400. Malformed: 400.
    assert _post(server.url, encode_request(31, [], cp30))[0] == 400
    assert _post(server.url, b"old 10\nnot base64\n\n" + cp30)[0] == 400
    assert _post(server.url, b"garbage")[0] == 400
    # Unknown origin: 404. No trusted signature: 403.
    stranger = SignerKey.generate("unknown.example/log")
    foreign = sign_note(Checkpoint(stranger.name, 1, bytes(32)).body(), [stranger]).encode()
    assert _post(server.url, encode_request(0, [], foreign))[0] == 404
    impostor = SignerKey.generate(log.origin)
    forged = sign_note(Checkpoint(log.origin, 30, log.root(30)).body(), [impostor]).encode()
    assert _post(server.url, encode_request(10, proof, forged))[0] == 403
    # The right request: 200, and the state moves to 30.
    status, body, _ = _post(server.url, encode_request(10, proof, cp30))
    assert status == 200
    assert server.witness.recorded(log.origin) == (30, log.root(30))


def test_a_fork_is_refused(server: Server, log: Log, log_signer: SignerKey) -> None:
    log.append_many([entry(i) for i in range(8)])
    assert _post(server.url, encode_request(0, [], log.checkpoint().encode()))[0] == 200
    # Same size, different root (signed by the real log key): 409, never a cosignature.
    fork = sign_note(Checkpoint(log.origin, 8, bytes(32)).body(), [log_signer]).encode()
    status, body, _ = _post(server.url, encode_request(8, [], fork))
    assert status == 409 and "—".encode() not in body
    # A larger fork: the honest consistency proof does not link it to the record.
    fork12 = sign_note(Checkpoint(log.origin, 12, bytes(32)).body(), [log_signer]).encode()
    log.append_many([entry(i) for i in range(8, 12)])
    assert _post(server.url, encode_request(8, log.consistency_proof(8, 12), fork12))[0] == 422
    assert server.witness.recorded(log.origin) == (8, log.root(8))


def test_client_attaches_cosignatures_from_several_witnesses(
    server: Server, log: Log, tmp_path: Path
) -> None:
    second_key = SignerKey.generate("test.example/witness2", 0x04)
    second = Witness(second_key, [log.verifier_key], tmp_path / "w2.sqlite")
    httpd = make_server(second, "127.0.0.1", 0, quiet=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    endpoints = [
        WitnessEndpoint(server.url, server.witness.verifier_key),
        WitnessEndpoint(f"http://127.0.0.1:{httpd.server_address[1]}", second_key.verifier()),
        WitnessEndpoint("http://127.0.0.1:9", second_key.verifier()),  # nothing listens
    ]
    try:
        for n in (3, 9, 9, 40):  # the second round needs a 409 and a retry with a proof
            if n > log.size:
                log.append_many([entry(i) for i in range(log.size, n)])
            outcome = cosign_checkpoint(log.checkpoint().encode(), endpoints, log.consistency_proof)
            assert len(outcome.cosigned_by) == 2 and len(outcome.failures) == 1
            stored = log.attach_cosignatures(outcome.note)
            assert len(stored.cosignatures) == 0  # none trusted by open_checkpoint's default
            signed = open_checkpoint(outcome.note, log.verifier_key, [e.key for e in endpoints[:2]])
            assert {c.witness.name for c in signed.cosignatures} == {
                "test.example/witness1",
                "test.example/witness2",
            }
            assert all(c.timestamp > 0 for c in signed.cosignatures)
    finally:
        httpd.shutdown()
        httpd.server_close()
        second.close()


def test_state_survives_a_restart(tmp_path: Path, log: Log, witness_signer: SignerKey) -> None:
    log.append_many([entry(i) for i in range(4)])
    state = tmp_path / "state.sqlite"
    first = Witness(witness_signer, [log.verifier_key], state)
    assert first.add_checkpoint(encode_request(0, [], log.checkpoint().encode())).status == 200
    first.close()
    again = Witness(witness_signer, [log.verifier_key], state)
    response = again.add_checkpoint(encode_request(0, [], log.checkpoint().encode()))
    assert (response.status, response.body) == (409, b"4\n")
    again.close()
