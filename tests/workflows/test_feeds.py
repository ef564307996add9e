"""Feeds: files under an allowed root, HTTP JSON on loopback, signed payloads, and the
query that turns a window of rows into the model's tensor."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from inferproof.errors import InputError, VerificationError
from inferproof.log import SignerKey, sign_note
from inferproof.runtime import TensorSpec
from inferproof.workflows import MAX_FEED_BYTES, FeedSpec, Query, fetch

ROWS = [{"close": 100 + i, "volume": 10 * i} for i in range(40)]


def test_an_http_json_feed(server) -> None:
    url, routes = server
    body = json.dumps({"rows": ROWS}).encode()
    routes["/prices"] = (200, body, {"Content-Type": "application/json"})
    got = fetch(FeedSpec.parse(url + "/prices"))
    assert got.rows == tuple(ROWS) and got.payload == body
    assert got.digest == "sha256:" + hashlib.sha256(body).hexdigest()
    assert got.signature == {"scheme": None, "verified": False, "detail": "the feed is not signed"}


def test_an_ed25519_signed_feed_and_its_forgery(server) -> None:
    url, routes = server
    key = Ed25519PrivateKey.generate()
    pub = base64.b64encode(key.public_key().public_bytes_raw()).decode()
    body = json.dumps(ROWS).encode()
    good = base64.b64encode(key.sign(body)).decode()
    routes["/ok"] = (200, body, {"Feed-Signature": good})
    routes["/forged"] = (200, body.replace(b"100", b"999"), {"Feed-Signature": good})
    routes["/unsigned"] = (200, body, {})
    got = fetch(FeedSpec.parse(url + "/ok", signature="ed25519", key=pub))
    assert got.signature["verified"] is True and got.signature["scheme"] == "ed25519"
    with pytest.raises(VerificationError, match="ed25519 signature does not verify"):
        fetch(FeedSpec.parse(url + "/forged", signature="ed25519", key=pub))
    with pytest.raises(VerificationError, match="came without a signature"):
        fetch(FeedSpec.parse(url + "/unsigned", signature="ed25519", key=pub))


def test_an_ecdsa_signed_file_feed(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    csv_text = "close,volume\n" + "".join(f"{r['close']},{r['volume']}\n" for r in ROWS)
    (tmp_path / "prices.csv").write_text(csv_text)
    sig = key.sign(csv_text.encode(), ec.ECDSA(hashes.SHA256()))
    (tmp_path / "prices.csv.sig").write_text(base64.b64encode(sig).decode())
    spec = FeedSpec.parse("prices.csv", signature="ecdsa-p256", key=pem)
    got = fetch(spec, root=tmp_path)
    assert got.signature["verified"] and got.rows[0] == {"close": "100", "volume": "0"}
    (tmp_path / "prices.csv").write_text(csv_text.replace("139", "1390"))
    with pytest.raises(VerificationError, match="ecdsa-p256 signature does not verify"):
        fetch(spec, root=tmp_path)


def test_a_signed_note_feed(server) -> None:
    url, routes = server
    signer = SignerKey.generate("prices.example/feed")
    note = sign_note(json.dumps(ROWS) + "\n", [signer])
    routes["/note"] = (200, note.encode(), {})
    got = fetch(FeedSpec.parse(url + "/note", signature="note", key=str(signer.verifier())))
    assert got.signature == {"scheme": "note", "verified": True, "key": "prices.example/feed"}
    assert len(got.rows) == 40
    other = SignerKey.generate("prices.example/feed")
    with pytest.raises(VerificationError):
        fetch(FeedSpec.parse(url + "/note", signature="note", key=str(other.verifier())))


def test_file_feeds_stay_inside_their_root(tmp_path: Path) -> None:
    (tmp_path / "outside.json").write_text("[]")
    root = tmp_path / "feeds"
    root.mkdir()
    for source in ("../outside.json", str(tmp_path / "outside.json"), "/etc/passwd"):
        with pytest.raises(InputError, match="outside the feed folder"):
            fetch(FeedSpec("file", source), root=root)
    with pytest.raises(InputError, match="file feeds are not allowed here"):
        fetch(FeedSpec("file", "x.json"), root=None)
    with pytest.raises(InputError, match="cannot read feed file"):
        fetch(FeedSpec("file", "absent.json"), root=root)


def test_bad_answers_and_oversized_feeds_fail(server) -> None:
    url, routes = server
    routes["/big"] = (200, b"[" + b" " * MAX_FEED_BYTES + b"]", {})
    routes["/500"] = (500, b"oops", {})
    routes["/redirect"] = (302, b"", {"Location": "file:///etc/passwd"})
    routes["/notrows"] = (200, b'{"a": 1}', {})
    routes["/junk"] = (200, b"{nope", {})
    cases = {"/big": "is over", "/500": "answered 500", "/redirect": "answered 302",
             "/notrows": "must be rows", "/junk": "is not valid json"}  # fmt: skip
    for path, message in cases.items():
        with pytest.raises(InputError, match=message):
            fetch(FeedSpec.parse(url + path))
    with pytest.raises(InputError, match="could not be fetched"):
        fetch(FeedSpec.parse("http://127.0.0.1:1/x"))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"kind": "ftp", "source": "x"}, "feed kind"),
        ({"kind": "http", "source": "file:///etc/passwd"}, "must start with http"),
        ({"kind": "file", "source": "a", "format": "xml"}, "feed format"),
        ({"kind": "file", "source": "a", "signature": "ed25519"}, "needs both"),
        ({"kind": "file", "source": "a", "signature": "rsa", "key": "k"}, "signature must be"),
        ({"kind": "file", "source": "a", "signature": "ed25519", "key": "!!"}, "does not parse"),
        ({"kind": "file", "source": "a", "signature": "ecdsa-p256", "key": "x"}, "does not parse"),
        ({"kind": "file", "source": "a", "extra": 1}, "unknown field"),
    ],
)
def test_bad_feed_specs_are_refused(spec, message: str) -> None:
    with pytest.raises(InputError, match=message):
        FeedSpec.from_json(spec)


SPEC3 = TensorSpec("X", "float32", (1, 30, 2))
SPEC2 = TensorSpec("X", "float32", (None, 60))


def test_a_query_takes_the_last_window_of_rows() -> None:
    q = Query("X", ("close", "volume"), 30)
    x = q.tensors(ROWS, SPEC3)["X"]
    assert x.shape == (1, 30, 2) and x.dtype == np.float32
    assert x[0, 0].tolist() == [110.0, 100.0] and x[0, -1].tolist() == [139.0, 390.0]
    flat = q.tensors(ROWS, SPEC2)["X"]
    assert flat.shape == (1, 60) and flat[0, :2].tolist() == [110.0, 100.0]


def test_query_normalisations() -> None:
    rows = [{"a": 1, "b": 5}, {"a": 2, "b": 5}, {"a": 3, "b": 5}]
    spec = TensorSpec("X", "float32", (1, 3, 2))
    z = Query("X", ("a", "b"), 3, "zscore").tensors(rows, spec)["X"][0]
    np.testing.assert_allclose(z[:, 0], [-1.2247449, 0, 1.2247449], rtol=1e-6)
    assert z[:, 1].tolist() == [0, 0, 0]  # a constant column: 0, not a division by 0
    m = Query("X", ("a", "b"), 3, "minmax").tensors(rows, spec)["X"][0]
    assert m[:, 0].tolist() == [0, 0.5, 1] and m[:, 1].tolist() == [0, 0, 0]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (ROWS[:5], "the feed has 5 rows, the query needs 30"),
        ([{"close": 1}] * 30, "has no column 'volume'"),
        ([{"close": "abc", "volume": 1}] * 30, "is not a finite number: 'abc'"),
        ([{"close": "nan", "volume": 1}] * 30, "is not a finite number"),
        ([{"close": True, "volume": 1}] * 30, "is not a finite number"),
    ],
)
def test_bad_rows_fail_the_query(rows, message: str) -> None:
    with pytest.raises(InputError, match=message):
        Query("X", ("close", "volume"), 30).tensors(rows, SPEC3)


def test_a_query_must_fit_the_model() -> None:
    with pytest.raises(InputError, match=r"gives X \[1, 10, 2\] \(10 rows of 2 columns\)"):
        Query("X", ("close", "volume"), 10).shape(SPEC3)
    with pytest.raises(InputError, match="queries give floats"):
        Query("X", ("close", "volume"), 30).shape(TensorSpec("X", "int64", (1, 30, 2)))
    for bad in ({"input": "X", "columns": [], "window": 3}, {"input": "X", "columns": ["a", "a"],
                "window": 3}, {"input": "X", "columns": ["a"], "window": 0},
                {"input": "X", "columns": ["a"], "window": True},
                {"input": "X", "columns": ["a"], "window": 3, "normalise": "log"}):  # fmt: skip
        with pytest.raises(InputError):
            Query.from_json(bad)


def test_a_feed_that_trickles_is_cut_at_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading
    import time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from inferproof.workflows import _feeds

    class Slow(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            for _ in range(100):  # each byte well inside httpx's per-read timeout
                self.wfile.write(b" ")
                self.wfile.flush()
                time.sleep(0.05)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    monkeypatch.setattr(_feeds, "FETCH_DEADLINE", 0.5)
    try:
        with pytest.raises(InputError, match=r"took over 0.5 s"):
            fetch(FeedSpec.parse(f"http://127.0.0.1:{httpd.server_address[1]}/"))
    finally:
        httpd.shutdown()
