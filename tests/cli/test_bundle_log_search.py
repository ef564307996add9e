"""Finding receipts from the command line: `bundle list|get --node`, `log get INDEX` and
`log search` (local, and through a node's public tiles), against a real node on loopback."""

from __future__ import annotations

import base64
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from inferproof.cli import app
from inferproof.engine import receipt_digest
from inferproof.log import verify_consistency, verify_tlog_proof
from inferproof.node import TokenStore
from inferproof.receipts import Bundle

from ..node.conftest import Running, start
from .test_cli import assert_one_line_error

runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def ok(*args: str) -> str:
    code, out, err = run(*args)
    assert code == 0, err
    return out


@pytest.fixture()
def served(
    home: Path, tmp_path: Path, credit_files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Running, list[str]]]:
    """A node holding risk:1 and two receipts issued through the CLI; their digests."""
    for name in ("INFERPROOF_NODE", "INFERPROOF_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    running = start(tmp_path / "node")
    model, inp = credit_files
    url, token = running.url, running.token
    ok("model", "push", str(model), "--name", "risk", "--version", "1", "--node", url,
       "--token", token)  # fmt: skip
    digests = []
    for nonce in ("first", "second"):
        out = ok("infer", "risk:1", "--input", str(inp), "--nonce", nonce, "--node", url,
                 "--token", token, "-o", str(tmp_path / f"{nonce}.json"))  # fmt: skip
        line = next(x for x in out.splitlines() if x.startswith("receipt "))
        digests.append(line.split()[1].rstrip(","))
        assert line.endswith(f"nonce {nonce}")
    yield running, digests
    running.stop()


def _listed(running: Running, *args: str, token: str | None = None) -> list[dict[str, object]]:
    out = ok("bundle", "list", "--node", running.url, "--token", token or running.token,
             "--json", *args)  # fmt: skip
    return list(json.loads(out)["bundles"])


def test_bundle_list_filters_and_pages(served: tuple[Running, list[str]]) -> None:
    running, digests = served
    listed = _listed(running)
    assert [b["receipt_digest"] for b in listed] == digests[::-1]  # newest first
    assert len(_listed(running, "--model", "risk:1")) == 2
    assert len(_listed(running, "--model", "risk")) == 2
    assert _listed(running, "--model", "other") == []
    assert [b["nonce"] for b in _listed(running, "--nonce", "first")] == ["first"]
    assert len(_listed(running, "--since", "1h")) == 2
    assert len(_listed(running, "--since", "2000-01-01")) == 2
    assert _listed(running, "--until", "1h") == []
    assert len(_listed(running, "--limit", "1")) == 1
    other = TokenStore(running.home).create("other")
    assert _listed(running, token=other) == []  # another token's bundles are not its own
    human = ok("bundle", "list", "--node", running.url, "--token", running.token)
    assert str(listed[0]["id"]) in human and "risk:1" in human and "second" in human


def test_bundle_get_by_id_and_digest(served: tuple[Running, list[str]], tmp_path: Path) -> None:
    running, digests = served
    first = _listed(running)[-1]
    out = tmp_path / "got.json"
    ok("bundle", "get", str(first["id"]), "--node", running.url, "-o", str(out))
    assert receipt_digest(Bundle.read(out)) == digests[0]
    ok("verify", str(out), "--node", running.url)
    printed = ok("bundle", "get", str(first["id"]), "--node", running.url)
    assert receipt_digest(Bundle.loads(printed)) == digests[0]
    by_digest = ok("bundle", "get", digests[1], "--node", running.url, "--token", running.token)
    assert receipt_digest(Bundle.loads(by_digest)) == digests[1]


@pytest.mark.parametrize(
    "args,needle",
    [
        (["bundle", "list"], "bundle list needs --node"),
        (["bundle", "list", "--node", "{url}"], "node answered 401"),
        (["bundle", "list", "--node", "{url}", "--token", "{token}", "--limit", "0"], "--limit"),
        (["bundle", "list", "--node", "{url}", "--token", "{token}", "--since", "yesterday"],
         "node answered 400 invalid_request: since must be"),
        (["bundle", "list", "--node", "{url}", "--token", "{token}", "--model", "a b"],
         "node answered 422"),
        (["bundle", "list", "--node", "http://127.0.0.1:9", "--token", "t"], "cannot reach"),
        (["bundle", "get", "abc", "--node", "{url}"], "is not a bundle id"),
        (["bundle", "get", "0" * 24, "--node", "{url}"], "node answered 404"),
        (["bundle", "get", "{digest}", "--node", "{url}"], "node answered 401"),
        (["bundle", "get", "sha256:12", "--node", "{url}", "--token", "{token}"], "sha256"),
        (["bundle", "get", "0" * 24], "bundle get needs --node"),
        (["log", "get", "7", "--node", "{url}"], "index 7 is outside the log of size 2"),
        (["log", "search", "--node", "{url}"], "give at least one of"),
    ],
)  # fmt: skip
def test_node_commands_reject_bad_input_in_one_line(
    served: tuple[Running, list[str]], args: list[str], needle: str
) -> None:
    running, digests = served
    values = {"url": running.url, "token": running.token, "digest": digests[0]}
    code, _, err = run(*[a.format(**values) for a in args])
    assert code == 2
    assert_one_line_error(code, err, needle)


def test_log_get_and_search_through_the_node(served: tuple[Running, list[str]]) -> None:
    running, digests = served
    doc = json.loads(ok("log", "get", "1", "--node", running.url, "--json"))
    assert doc["receipt_digest"] == digests[1] and doc["inclusion"] == "verified"
    assert doc["checkpoint"]["size"] == 2 and doc["receipt"]["nonce"] == "second"
    human = "".join(ok("log", "get", "0", "--node", running.url).split())
    assert f"receipt{digests[0]}" in human and "inclusionverified" in human
    found = json.loads(ok("log", "search", "--nonce", "first", "--node", running.url, "--json"))
    assert [e["index"] for e in found["entries"]] == [0]
    found = json.loads(ok("log", "search", "--receipt", digests[1], "--node", running.url,
                          "--json"))  # fmt: skip
    assert [e["receipt_digest"] for e in found["entries"]] == [digests[1]]
    found = json.loads(ok("log", "search", "--model", "risk:1", "--node", running.url, "--json"))
    assert [e["index"] for e in found["entries"]] == [0, 1]
    one = json.loads(ok("log", "search", "--model", "risk", "--limit", "1", "--node",
                        running.url, "--json"))  # fmt: skip
    assert len(one["entries"]) == 1


@pytest.fixture()
def local_log(home: Path, credit_files: tuple[Path, Path], tmp_path: Path) -> list[str]:
    """Two local receipts and, between them, an entry that is not a receipt."""
    model, inp = credit_files
    ok("model", "push", str(model), "--name", "risk", "--version", "1")
    ok("infer", "risk:1", "--input", str(inp), "--nonce", "a", "-o", str(tmp_path / "a.json"))
    other = tmp_path / "note.txt"
    other.write_text("not a receipt")
    ok("log", "append", str(other))
    ok("infer", str(model), "--input", str(inp), "--nonce", "b", "-o", str(tmp_path / "b.json"))
    return [receipt_digest(Bundle.read(tmp_path / f"{n}.json")) for n in ("a", "b")]


def test_log_search_local(local_log: list[str]) -> None:
    def indexes(*args: str) -> list[int]:
        doc = json.loads(ok("log", "search", *args, "--json"))
        return [e["index"] for e in doc["entries"]]

    assert indexes("--model", "risk:1") == [0]  # the second ran the file, named "credit"
    assert indexes("--model", "credit") == [2]
    assert indexes("--nonce", "b") == [2]
    assert indexes("--receipt", local_log[0]) == [0]
    assert indexes("--receipt", local_log[0], "--nonce", "b") == []  # every criterion holds
    assert indexes("--model", "sha256:" + "0" * 64) == []
    human = ok("log", "search", "--nonce", "a")
    assert "risk:1" in human and "1 found" in human


def test_log_get_local(local_log: list[str]) -> None:
    doc = json.loads(ok("log", "get", "2", "--json"))
    assert doc["receipt_digest"] == local_log[1] and doc["receipt"]["model"]["name"] == "credit"
    assert doc["envelope"]["payloadType"] == "application/vnd.in-toto+json"
    note = json.loads(ok("log", "get", "1", "--json"))
    assert note["receipt"] is None and note["entry_base64"]
    assert "not a receipt" in ok("log", "get", "1")


def test_log_get_fails_on_a_rewritten_entry(local_log: list[str], home: Path) -> None:
    """An entry changed in the store no longer proves into the signed tree: exit 1."""
    db = sqlite3.connect(home / "log" / "log.sqlite")
    db.execute("UPDATE entries SET data = ? WHERE idx = 1", (b"rewritten",))
    db.commit()
    db.close()
    code, _, err = run("log", "get", "1")
    assert code == 1
    assert_one_line_error(code, err, "log.inclusion")
    code, _, err = run("log", "search", "--nonce", "b")  # the hit after it still proves
    assert code == 0, err


@pytest.mark.parametrize(
    "args,needle",
    [
        (["log", "get", "3"], "index 3 is outside the log of size 3"),
        (["log", "search"], "give at least one of --model, --nonce or --receipt"),
        (["log", "search", "--receipt", "sha256:zz"], "--receipt is not a sha256"),
        (["log", "search", "--nonce", "a", "--limit", "0"], "--limit must be at least 1"),
        (["log", "get", "0", "--node", "ftp://x"], "must start with http"),
    ],
)
def test_log_commands_reject_bad_input_in_one_line(
    local_log: list[str], args: list[str], needle: str
) -> None:
    code, _, err = run(*args)
    assert code == 2
    assert_one_line_error(code, err, needle)


def test_log_info_proof_and_consistency_through_the_node(
    served: tuple[Running, list[str]], tmp_path: Path
) -> None:
    running, _ = served
    log = running.node.log
    info = ok("log", "info", "--node", running.url)
    assert f"origin: {log.origin}" in info and "size: 2" in info
    assert f"verifier key: {log.verifier_key}" in info
    proof = ok("log", "proof", "1", "--node", running.url)
    result = verify_tlog_proof(proof, log.entry(1), log.verifier_key)
    assert result.index == 1 and result.checkpoint.size == 2
    hashes = ok("log", "consistency", "1", "2", "--node", running.url).split()
    proof_hashes = [base64.b64decode(h) for h in hashes]
    assert proof_hashes == log.consistency_proof(1, 2)
    verify_consistency(1, 2, log.root(1), log.root(2), proof_hashes)


@pytest.mark.parametrize(
    "args,needle",
    [
        (
            ["log", "proof", "0", "--size", "1"],
            "--size must be the node's latest checkpoint size 2",
        ),
        (["log", "proof", "5"], "index 5 is outside the log of size 2"),
        (["log", "consistency", "1", "3"], "NEW must be the node's latest checkpoint size 2"),
        (["log", "consistency", "3", "2"], "old size 3 is outside 0..2"),
    ],
)
def test_log_node_proofs_reject_bad_input(
    served: tuple[Running, list[str]], args: list[str], needle: str
) -> None:
    running, _ = served
    code, _, err = run(*args, "--node", running.url)
    assert code == 2
    assert_one_line_error(code, err, needle)
