"""Typed results of hardware attestation verification.

Every verifier returns an :class:`AttestationReport` listing each check it made
and each check it could not make; a failed check raises :class:`AttestationError`,
which carries the checks made up to and including the failure so that a caller
(the CLI, a verifier report) can show them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, Literal, NoReturn

from .._checks import Check, CheckStatus, failed, not_checked, passed
from ..errors import AttestationError

Platform = Literal["nitro", "tdx", "sgx", "snp"]
PLATFORMS: tuple[Platform, ...] = ("nitro", "tdx", "sgx", "snp")

PLATFORM_NAMES: Mapping[str, str] = MappingProxyType(
    {
        "nitro": "AWS Nitro Enclaves",
        "tdx": "Intel TDX",
        "sgx": "Intel SGX",
        "snp": "AMD SEV-SNP",
    }
)


def _hex(value: bytes | None) -> str | None:
    return None if value is None else value.hex()


@dataclass(frozen=True)
class AttestationReport:
    """What a verified hardware attestation says, and every check behind it.

    ``measurements`` maps a platform's register names (``PCR0`` for Nitro,
    ``MRTD``/``RTMR0`` for TDX, ``MRENCLAVE`` for SGX, ``MEASUREMENT`` for SNP)
    to lowercase hex. ``report_data`` is the 64-byte field the workload chose
    (TDX, SGX, SNP) or, for Nitro, the ``user_data`` field (empty when absent).

    Example::

        report = verify_evidence(raw, at=when, policy=policy)
        print(report.platform, report.measurements["PCR0"])
        for check in report.checks:
            print(check.name, check.status.value, check.detail)
    """

    platform: Platform
    measurements: Mapping[str, str]
    report_data: bytes
    debug: bool
    verified_at: datetime
    checks: tuple[Check, ...]
    user_data: bytes | None = None
    public_key: bytes | None = None
    nonce: bytes | None = None
    tcb_status: str | None = None
    advisories: tuple[str, ...] = ()
    produced_at: datetime | None = None
    details: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        # Freeze the mappings so a report cannot be edited after verification.
        object.__setattr__(self, "measurements", MappingProxyType(dict(self.measurements)))
        object.__setattr__(self, "details", MappingProxyType(dict(self.details)))

    @property
    def ok(self) -> bool:
        """True when no check failed (checks not made are listed, never counted as passed)."""
        return all(c.status is not CheckStatus.FAILED for c in self.checks)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (bytes as lowercase hex, times as RFC 3339)."""
        return {
            "platform": self.platform,
            "measurements": dict(self.measurements),
            "report_data": self.report_data.hex(),
            "user_data": _hex(self.user_data),
            "public_key": _hex(self.public_key),
            "nonce": _hex(self.nonce),
            "debug": self.debug,
            "tcb_status": self.tcb_status,
            "advisories": list(self.advisories),
            "produced_at": None if self.produced_at is None else _rfc3339(self.produced_at),
            "verified_at": _rfc3339(self.verified_at),
            "details": dict(self.details),
            "checks": [c.to_json() for c in self.checks],
        }


def _rfc3339(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


class CheckList:
    """Collects checks in order; :meth:`fail` records the failure and raises."""

    def __init__(self) -> None:
        self.items: list[Check] = []

    def passed(self, name: str, detail: str) -> None:
        self.items.append(passed(name, detail))

    def not_checked(self, name: str, detail: str) -> None:
        self.items.append(not_checked(name, detail))

    def failed(self, name: str, detail: str) -> None:
        """Record a failed check without raising (see :meth:`raise_first_failure`)."""
        self.items.append(failed(name, detail))

    def fail(self, name: str, detail: str) -> NoReturn:
        self.items.append(failed(name, detail))
        raise AttestationError(name, detail, tuple(self.items))

    def extend(self, checks: tuple[Check, ...] | list[Check]) -> None:
        self.items.extend(checks)

    def raise_first_failure(self) -> None:
        """Raise :class:`AttestationError` for the first failed check, if any."""
        for check in self.items:
            if check.status is CheckStatus.FAILED:
                raise AttestationError(check.name, check.detail, tuple(self.items))

    def freeze(self) -> tuple[Check, ...]:
        return tuple(self.items)


# Check names, stable across versions: tests, policies and reports refer to them.
CHECK_FORMAT = "attestation.format"
CHECK_SIGNATURE = "attestation.signature"
CHECK_CHAIN = "attestation.chain"
CHECK_ROOT = "attestation.root"
CHECK_VALIDITY = "attestation.validity"
CHECK_REVOCATION = "attestation.revocation"
CHECK_COLLATERAL = "attestation.collateral"
CHECK_TCB_BINDING = "attestation.tcb_binding"
CHECK_PLATFORM = "attestation.platform"
CHECK_MEASUREMENTS = "attestation.measurements"
CHECK_DEBUG = "attestation.debug"
CHECK_TCB_STATUS = "attestation.tcb_status"
CHECK_ADVISORIES = "attestation.advisories"
CHECK_REPORT_DATA = "attestation.report_data"
CHECK_NONCE = "attestation.nonce"
CHECK_FRESHNESS = "attestation.freshness"
CHECK_KEY_BINDING = "attestation.key_binding"
