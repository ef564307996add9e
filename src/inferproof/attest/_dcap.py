"""Intel TDX and SGX DCAP quotes, verified offline with ``dcap-qvl`` and supplied collateral.

``dcap_qvl.verify`` checks the quote's ECDSA signature, the QE report and its
binding to the attestation key, the PCK certificate chain to Intel's SGX Root
CA (which the library carries), the CRLs, and the TCB info and QE identity
signatures and validity at the given time; it returns the TCB status and
advisories. This module turns its result into an :class:`AttestationReport`
and leaves the acceptance of TCB statuses and advisories to the policy.
"""

from __future__ import annotations

import json
import struct
from datetime import datetime
from typing import Any

import dcap_qvl

from .._canonical import parse_json
from ..errors import InputError
from ._policy import AttestationPolicy, Facts, default_policy, finish
from ._types import (
    CHECK_CHAIN,
    CHECK_COLLATERAL,
    CHECK_FORMAT,
    CHECK_PLATFORM,
    CHECK_REVOCATION,
    CHECK_SIGNATURE,
    CHECK_TCB_STATUS,
    AttestationReport,
    CheckList,
    Platform,
)

# Quote header (Intel SGX ECDSA Quote Library API, §A.4 / TDX DCAP Quote Library API §A.3):
# version u16 (3 SGX, 4 or 5 TDX and SGX), attestation key type u16 (2 = ECDSA P-256,
# 3 = ECDSA P-384), TEE type u32 at offset 4 (0x00000000 SGX, 0x00000081 TDX).
QUOTE_VERSIONS = (3, 4, 5)
ATTESTATION_KEY_TYPES = (2, 3)
TEE_SGX = 0x00000000
TEE_TDX = 0x00000081
HEADER_BYTES = 48
# A quote with its PCK chain is about 5 KiB; collateral JSON about 16 KiB.
MAX_QUOTE_BYTES = 64 * 1024
MAX_COLLATERAL_BYTES = 1024 * 1024
# Debug bits: TDX TD_ATTRIBUTES bit 0 (DEBUG, Intel TDX Module ABI spec, TDATTRIBUTES);
# SGX SECS ATTRIBUTES.DEBUG is bit 1 (Intel SDM Vol. 3D §34.7.1, Table 34-3).
TDX_DEBUG_BIT = 0
SGX_DEBUG_BIT = 1
COLLATERAL_KEYS = (
    "pck_crl_issuer_chain",
    "root_ca_crl",
    "pck_crl",
    "tcb_info_issuer_chain",
    "tcb_info",
    "tcb_info_signature",
    "qe_identity_issuer_chain",
    "qe_identity",
    "qe_identity_signature",
)

_TDX_REGISTERS = {
    "MRTD": "mr_td",
    "RTMR0": "rt_mr0",
    "RTMR1": "rt_mr1",
    "RTMR2": "rt_mr2",
    "RTMR3": "rt_mr3",
    "MRSEAM": "mr_seam",
    "MRSIGNERSEAM": "mr_signer_seam",
    "MRCONFIGID": "mr_config_id",
    "MROWNER": "mr_owner",
    "MROWNERCONFIG": "mr_owner_config",
    "MRSERVICETD": "mr_service_td",
}


def quote_platform(quote: bytes) -> Platform | None:
    """``"tdx"`` or ``"sgx"`` when ``quote`` starts with a DCAP quote header, else None."""
    if len(quote) < HEADER_BYTES:
        return None
    version, key_type, tee = struct.unpack_from("<HHI", quote, 0)
    if version not in QUOTE_VERSIONS or key_type not in ATTESTATION_KEY_TYPES:
        return None
    return {TEE_TDX: "tdx", TEE_SGX: "sgx"}.get(tee)  # type: ignore[return-value]


def load_collateral(data: bytes | str) -> Any:
    """Parse DCAP collateral JSON (dcap-qvl's QuoteCollateralV3 form), or raise InputError."""
    try:
        text = data.decode("utf-8", "strict") if isinstance(data, bytes) else data
    except UnicodeDecodeError as exc:
        raise InputError(f"DCAP collateral is not UTF-8 JSON: {exc}") from exc
    obj = parse_json(text, "DCAP collateral", MAX_COLLATERAL_BYTES)
    if not isinstance(obj, dict) or not all(k in obj for k in COLLATERAL_KEYS):
        raise InputError(f"DCAP collateral must be a JSON object with {', '.join(COLLATERAL_KEYS)}")
    try:
        return dcap_qvl.QuoteCollateralV3.from_json(text)
    except ValueError as exc:
        raise InputError(f"DCAP collateral is malformed: {exc}") from exc


def _failure_check(message: str) -> str:
    """Map a dcap-qvl error message to the check it reports."""
    lowered = message.lower()
    rules = (
        (("decode",), CHECK_FORMAT),
        (("tcb level",), CHECK_TCB_STATUS),
        (("revoked",), CHECK_REVOCATION),
        (("expired", "in the future", "not yet valid", "next update"), CHECK_COLLATERAL),
        (("qe identity", "tcb info", "tcbinfo", "collateral", "fmspc"), CHECK_COLLATERAL),
        (("certificate",), CHECK_CHAIN),
        (("signature", "mismatch", "hash"), CHECK_SIGNATURE),
        (("unsupported",), CHECK_FORMAT),
    )
    for words, check in rules:
        if any(w in lowered for w in words):
            return check
    return CHECK_COLLATERAL


def _bit(hex_le: str, bit: int) -> bool:
    return bool(int.from_bytes(bytes.fromhex(hex_le), "little") >> bit & 1)


def _facts(result: dict[str, Any]) -> Facts:
    report = result.get("report", {})
    status = str(result["status"])
    advisories = tuple(str(a) for a in result.get("advisory_ids", []))
    body = report.get("TD15") or report.get("TD10")
    if body is not None:
        measurements = {
            name: str(body[field]) for name, field in _TDX_REGISTERS.items() if field in body
        }
        return Facts(
            platform="tdx",
            measurements=measurements,
            report_data=bytes.fromhex(body["report_data"]),
            debug=_bit(body["td_attributes"], TDX_DEBUG_BIT),
            tcb_status=status,
            advisories=advisories,
            details={"td_attributes": str(body["td_attributes"]), "xfam": str(body["xfam"])},
        )
    sgx = report.get("SgxEnclave")
    if sgx is None:
        raise InputError(f"dcap-qvl returned an unknown report type: {sorted(report)}")
    return Facts(
        platform="sgx",
        measurements={"MRENCLAVE": str(sgx["mr_enclave"]), "MRSIGNER": str(sgx["mr_signer"])},
        report_data=bytes.fromhex(sgx["report_data"]),
        debug=_bit(sgx["attributes"][:16], SGX_DEBUG_BIT),
        tcb_status=status,
        advisories=advisories,
        details={
            "attributes": str(sgx["attributes"]),
            "isv_prod_id": str(sgx["isv_prod_id"]),
            "isv_svn": str(sgx["isv_svn"]),
        },
    )


def verify_dcap(
    quote: bytes,
    collateral: bytes | str,
    *,
    at: datetime,
    policy: AttestationPolicy | None = None,
    platform: Platform | None = None,
) -> AttestationReport:
    """Verify an Intel TDX or SGX DCAP quote with its collateral at time ``at``.

    ``collateral`` is the JSON that ``dcap_qvl.QuoteCollateralV3.to_json`` writes
    (PCK CRL and chain, root CA CRL, TCB info, QE identity and their signatures).
    ``platform`` ("tdx" or "sgx"), when given, must match the quote. The policy
    decides which TCB statuses and advisories are accepted (default: UpToDate only).
    Raises AttestationError naming the failed check, or InputError for bad input.

    Example::

        report = verify_dcap(quote, collateral_json, at=datetime(2025, 7, 1, tzinfo=UTC))
        report.tcb_status, report.measurements["MRTD"]
    """
    policy = policy or default_policy()
    checks = CheckList()
    if len(quote) > MAX_QUOTE_BYTES:
        checks.fail(CHECK_FORMAT, f"quote is {len(quote)} bytes, over {MAX_QUOTE_BYTES}")
    kind = quote_platform(quote)
    if kind is None:
        checks.fail(CHECK_FORMAT, "not a DCAP quote (header version, key type or TEE type)")
    if platform is not None and platform != kind:
        checks.fail(CHECK_PLATFORM, f"expected a {platform} quote, got a {kind} quote")
    parsed = load_collateral(collateral)
    try:
        verified = dcap_qvl.verify(quote, parsed, int(at.timestamp()))
    except ValueError as exc:
        message = " ".join(str(exc).split())
        checks.fail(_failure_check(message), f"dcap-qvl: {message}")
    result = json.loads(verified.to_json())
    checks.passed(CHECK_FORMAT, f"{kind.upper()} DCAP quote v{struct.unpack_from('<H', quote)[0]}")
    checks.passed(CHECK_SIGNATURE, "quote, QE report and attestation key binding verified")
    checks.passed(CHECK_CHAIN, "PCK certificate chain to the Intel SGX Root CA (dcap-qvl)")
    checks.passed(CHECK_REVOCATION, "PCK and root CA CRLs from the collateral checked")
    checks.passed(
        CHECK_COLLATERAL, f"TCB info, QE identity and CRLs signed and valid at {at.isoformat()}"
    )
    return finish(_facts(result), checks, policy, at)
