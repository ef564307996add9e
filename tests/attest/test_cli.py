"""``inferproof attest verify``: output, exit codes and one-line errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from inferproof.cli._attest import attest_app, parse_time

from .conftest import ATTESTATION, needs_vectors

# The sub-app mounted as the lead mounts it in the main `inferproof` app.
app = typer.Typer(pretty_exceptions_enable=False)
app.add_typer(attest_app, name="attest")
runner = CliRunner()
NITRO = str(ATTESTATION / "nitro/nitrite_valid.b64")
NITRO_AT = "2024-09-07T14:37:40Z"


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["attest", "verify", *args])
    return result.exit_code, result.stdout, result.stderr


def assert_one_line_error(code: int, err: str, needle: str, exit_code: int = 2) -> None:
    assert code == exit_code, err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and needle in lines[0], lines[0]


@needs_vectors
def test_nitro_human_output() -> None:
    code, out, err = run(NITRO, "--at", NITRO_AT)
    assert code == 0, err
    assert "platform: nitro" in out and "PCR0" in out
    assert "passed      attestation.signature" in out
    assert "not checked attestation.measurements" in out
    assert out.strip().splitlines()[-1].startswith("result: verified")


@needs_vectors
def test_tdx_json_output() -> None:
    code, out, err = run(
        str(ATTESTATION / "tdx/tdx_quote"),
        "--platform",
        "tdx",
        "--collateral",
        str(ATTESTATION / "tdx/tdx_quote_collateral.json"),
        "--at",
        "2025-07-01T00:00:00+00:00",
        "--json",
    )
    assert code == 0, err
    doc = json.loads(out)
    assert doc["verified"] is True and doc["platform"] == "tdx"
    assert doc["tcb_status"] == "UpToDate"
    assert doc["measurements"]["MRTD"].startswith("91eb2b44")
    assert {c["name"]: c["status"] for c in doc["checks"]}["attestation.signature"] == "passed"


@needs_vectors
def test_snp_with_two_collateral_files_and_policy(tmp_path: Path) -> None:
    policy = tmp_path / "policy.json"
    policy.write_text(
        json.dumps({"receipts": {"other": "lead's keys"}, "attestation": {"allow_debug": True}})
    )
    args = [
        str(ATTESTATION / "snp/attestation.bin"),
        "--collateral",
        str(ATTESTATION / "snp/vcek.der"),
        "--collateral",
        str(ATTESTATION / "snp/ask_ark_milan.pem"),
        "--at",
        "2022-09-24T01:00:00Z",
    ]
    code, out, err = run(*args)
    assert_one_line_error(code, err, "attestation.debug", exit_code=1)
    assert "FAILED      attestation.debug" in out  # the checks are shown before the error
    code, out, err = run(*args, "--policy", str(policy))
    assert code == 0, err
    assert "debug: yes" in out


@needs_vectors
def test_failure_as_json() -> None:
    debug_doc = str(ATTESTATION / "nitro/nitrite_debug.b64")
    code, out, err = run(debug_doc, "--at", "2024-09-07T14:38:07Z", "--json")
    assert_one_line_error(code, err, "attestation.debug", exit_code=1)
    doc = json.loads(out)
    assert doc["verified"] is False and doc["error"]["check"] == "attestation.debug"


@needs_vectors
def test_without_at_uses_now() -> None:
    # Every vector's certificates expired long ago, so "now" must fail validity.
    code, _out, err = run(NITRO)
    assert_one_line_error(code, err, "attestation.validity", exit_code=1)


@needs_vectors
@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--at", "yesterday"], "RFC 3339"),
        (["--at", "2024-09-07T14:37:40"], "RFC 3339"),  # no offset
        (["--at", "2024-13-07T14:37:40Z"], "valid date"),
        (["--platform", "tpm"], "--platform"),
        (["--policy", "/nonexistent/policy.json"], "No such file"),
        (["--collateral", "/nonexistent/c.json"], "No such file"),
    ],
)
def test_bad_options(args: list[str], needle: str) -> None:
    code, _out, err = run(NITRO, *args)
    assert_one_line_error(code, err, needle)


def test_bad_evidence_and_policy_files(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"\x00\x01\x02 not evidence")
    code, _out, err = run(str(garbage), "--at", NITRO_AT)
    assert_one_line_error(code, err, "platform")
    code, _out, err = run(str(tmp_path / "missing.bin"), "--at", NITRO_AT)
    assert_one_line_error(code, err, "No such file")
    policy = tmp_path / "p.json"
    policy.write_text('{"allow_debug": true, "alow_debug": true}')
    code, _out, err = run(str(garbage), "--at", NITRO_AT, "--policy", str(policy))
    assert_one_line_error(code, err, "unknown attestation policy key")
    policy.write_text("{not json")
    code, _out, err = run(str(garbage), "--at", NITRO_AT, "--policy", str(policy))
    assert_one_line_error(code, err, "not valid JSON")


def test_parse_time() -> None:
    assert parse_time("2025-07-01T02:00:00+02:00") == datetime(2025, 7, 1, tzinfo=UTC)
    assert parse_time("2025-07-01t00:00:00.123456789z") == datetime(
        2025, 7, 1, 0, 0, 0, 123456, tzinfo=UTC
    )
