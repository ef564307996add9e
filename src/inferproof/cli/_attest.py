"""``inferproof attest``: verify hardware attestation evidence on its own."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from .._canonical import parse_json
from .._checks import Check, CheckStatus
from ..attest import (
    MAX_EVIDENCE_BYTES,
    PLATFORM_NAMES,
    PLATFORMS,
    AttestationError,
    AttestationPolicy,
    AttestationReport,
    verify_evidence,
)
from ..errors import InputError
from ._common import console, handle_errors

attest_app = typer.Typer(
    help="Hardware attestation evidence: AWS Nitro, Intel TDX/SGX, AMD SEV-SNP.",
    no_args_is_help=True,
)

# RFC 3339 §5.6 date-time: a full date, "T" (or a space, §5.6 NOTE), a time with
# optional fraction, and a mandatory offset.
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
)
MAX_COLLATERAL_FILE_BYTES = 1024 * 1024
MAX_POLICY_FILE_BYTES = 1024 * 1024
_STATUS_LABEL = {
    CheckStatus.PASSED: "passed",
    CheckStatus.FAILED: "FAILED",
    CheckStatus.NOT_CHECKED: "not checked",
}


def parse_time(text: str) -> datetime:
    """Parse an RFC 3339 date-time with its offset into an aware UTC datetime."""
    if not _RFC3339.match(text):
        raise InputError(f"--at {text!r} is not an RFC 3339 time such as 2025-07-01T00:00:00Z")
    fraction = re.search(r"\.(\d+)", text)
    if fraction and len(fraction.group(1)) > 6:
        # Python keeps microseconds; finer fractions are cut, never rounded up.
        text = text.replace(fraction.group(0), fraction.group(0)[:7])
    try:
        return datetime.fromisoformat(text.upper().replace(" ", "T")).astimezone(UTC)
    except ValueError as exc:
        raise InputError(f"--at {text!r} is not a valid date and time: {exc}") from exc


def _read_capped(path: Path, cap: int, what: str) -> bytes:
    size = path.stat().st_size
    if size > cap:
        raise InputError(f"{what} {path} is {size} bytes, over the {cap}-byte cap")
    return path.read_bytes()


def load_policy_file(path: Path) -> AttestationPolicy:
    """Read an attestation policy, bare or under the overall policy's "attestation" key."""
    data = parse_json(_read_capped(path, MAX_POLICY_FILE_BYTES, "policy"), f"policy {path}")
    if isinstance(data, dict) and "attestation" in data:
        data = data["attestation"]
    return AttestationPolicy.from_dict(data)


def _out(text: str) -> None:
    # No markup (details quote certificate names with brackets) and no hard wrapping
    # (long hex values stay on one line for copy and paste).
    console.print(text, markup=False, soft_wrap=True)


def _render_checks(checks: tuple[Check, ...]) -> None:
    _out("checks:")
    width = max((len(c.name) for c in checks), default=0)
    for check in checks:
        label = _STATUS_LABEL[check.status]
        _out(f"  {label:<11} {check.name:<{width}}  {check.detail}")


def _render_report(report: AttestationReport) -> None:
    out = _out
    out(f"platform: {report.platform} ({PLATFORM_NAMES[report.platform]})")
    out("measurements:")
    for name, value in report.measurements.items():
        out(f"  {name:<17} {value}")
    field = "user data" if report.platform == "nitro" else "report data"
    out(f"{field}: {report.report_data.hex() or '(none)'}")
    if report.platform == "nitro":
        for label, blob in (("public key", report.public_key), ("nonce", report.nonce)):
            out(f"{label}: {'(none)' if blob is None else blob.hex()}")
    out(f"debug: {'yes' if report.debug else 'no'}")
    if report.tcb_status is not None:
        advisories = ", ".join(report.advisories) or "none"
        out(f"tcb status: {report.tcb_status} (advisories: {advisories})")
    if report.produced_at is not None:
        out(f"produced at: {report.produced_at.isoformat()}")
    out(f"verified at: {report.verified_at.isoformat()}")
    _render_checks(report.checks)
    made = sum(c.status is CheckStatus.PASSED for c in report.checks)
    skipped = sum(c.status is CheckStatus.NOT_CHECKED for c in report.checks)
    out(f"result: verified ({made} checks passed, {skipped} not checked)")


@attest_app.command("verify")
@handle_errors
def verify_command(
    evidence: Annotated[
        Path, typer.Argument(help="Attestation document or quote: binary, hex or base64.")
    ],
    platform: Annotated[
        str | None,
        typer.Option("--platform", help="nitro, tdx, sgx or snp (detected when omitted)."),
    ] = None,
    collateral: Annotated[
        list[Path] | None,
        typer.Option(
            "--collateral",
            help="DCAP collateral JSON (tdx/sgx), or VCEK and ASK/ARK certificates (snp). "
            "Repeatable.",
        ),
    ] = None,
    at: Annotated[
        str | None,
        typer.Option("--at", help="Verification time, RFC 3339 (default: now)."),
    ] = None,
    policy: Annotated[
        Path | None,
        typer.Option("--policy", help="JSON attestation policy (or a policy with 'attestation')."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Verify one attestation document or quote; exit 0 only when no check fails."""
    if platform is not None and platform not in PLATFORMS:
        raise InputError(f"--platform must be one of {', '.join(PLATFORMS)}, not {platform!r}")
    when = parse_time(at) if at is not None else datetime.now(UTC)
    rules = load_policy_file(policy) if policy is not None else None
    data = _read_capped(evidence, MAX_EVIDENCE_BYTES, "evidence")
    files = [_read_capped(p, MAX_COLLATERAL_FILE_BYTES, "collateral") for p in collateral or []]
    try:
        report = verify_evidence(data, platform, files, at=when, policy=rules)
    except AttestationError as exc:
        _show_failure(exc, as_json)
        raise
    if as_json:
        doc: dict[str, Any] = {"verified": True, **report.to_json()}
        console.print_json(json.dumps(doc))
    else:
        _render_report(report)


def _show_failure(exc: AttestationError, as_json: bool) -> None:
    if as_json:
        doc = {
            "verified": False,
            "error": {"check": exc.check, "detail": exc.detail},
            "checks": [c.to_json() for c in exc.checks],
        }
        console.print_json(json.dumps(doc))
    elif exc.checks:
        _render_checks(exc.checks)
