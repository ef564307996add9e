"""The attestation policy: which measurements, TCB levels and modes a verifier accepts.

The policy is plain data. The overall inferproof policy file embeds it under an
``"attestation"`` key; :meth:`AttestationPolicy.from_dict` reads that dict and
rejects anything it does not know, so a typo never silently weakens a policy.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

from ..errors import InputError
from ._types import (
    CHECK_ADVISORIES,
    CHECK_DEBUG,
    CHECK_FRESHNESS,
    CHECK_MEASUREMENTS,
    CHECK_NONCE,
    CHECK_PLATFORM,
    CHECK_REPORT_DATA,
    CHECK_TCB_STATUS,
    PLATFORM_NAMES,
    PLATFORMS,
    AttestationReport,
    CheckList,
    Platform,
)

# Register names and their sizes in bytes, per platform.
# Nitro: attestation_process.md §3.2.2.2 (aws-nitro-enclaves-nsm-api): PCR index 0..31,
#   content 32, 48 or 64 bytes (48 with the SHA384 digest every document uses).
# TDX: TD Quote Body, Intel TDX DCAP Quote Generation Library and Quote Verification Library
#   API, Appendix A.3.2 (MRTD, RTMRs and the SEAM/owner registers are SHA-384, 48 bytes).
# SGX: SGX REPORT body, Intel SDM Vol. 3D §38.15 (MRENCLAVE/MRSIGNER are SHA-256).
# SNP: ATTESTATION_REPORT, AMD SEV-SNP Firmware ABI Specification (pub. 56860) Table 23.
MEASUREMENT_SIZES: Mapping[str, Mapping[str, tuple[int, ...]]] = MappingProxyType(
    {
        "nitro": MappingProxyType({f"PCR{i}": (32, 48, 64) for i in range(32)}),
        "tdx": MappingProxyType(
            {
                name: (48,)
                for name in (
                    "MRTD",
                    "RTMR0",
                    "RTMR1",
                    "RTMR2",
                    "RTMR3",
                    "MRSEAM",
                    "MRSIGNERSEAM",
                    "MRCONFIGID",
                    "MROWNER",
                    "MROWNERCONFIG",
                    "MRSERVICETD",
                )
            }
        ),
        "sgx": MappingProxyType({"MRENCLAVE": (32,), "MRSIGNER": (32,)}),
        "snp": MappingProxyType(
            {
                "MEASUREMENT": (48,),
                "HOST_DATA": (32,),
                "ID_KEY_DIGEST": (48,),
                "AUTHOR_KEY_DIGEST": (48,),
                "FAMILY_ID": (16,),
                "IMAGE_ID": (16,),
            }
        ),
    }
)

# Intel TCB statuses, from the TCB Info and QE Identity JSON formats (Intel PCS API v4,
# "tcbStatus"). "Revoked" is deliberately absent: no policy may accept revoked hardware.
TCB_STATUSES = (
    "UpToDate",
    "SWHardeningNeeded",
    "ConfigurationNeeded",
    "ConfigurationAndSWHardeningNeeded",
    "OutOfDate",
    "OutOfDateConfigurationNeeded",
)
_ADVISORY_RE = re.compile(r"^INTEL-SA-\d{5}$")
_HEX_RE = re.compile(r"^[0-9a-fA-F]*$")
_KEYS = {
    "platforms",
    "measurements",
    "allow_debug",
    "tcb_statuses",
    "advisories",
    "max_age_seconds",
    "report_data",
    "nonce",
}
# A nonce is a verifier's challenge: 1024 bytes is the Nitro nonce field's limit
# (attestation_process.md §2.2 CDDL), far above the 32 bytes a random challenge needs.
MAX_NONCE_BYTES = 1024


def _parse_hex(value: object, what: str, sizes: tuple[int, ...] | None = None) -> bytes:
    if not isinstance(value, str) or not _HEX_RE.match(value) or len(value) % 2:
        raise InputError(f"{what} must be a hex string, got {value!r:.80}")
    raw = bytes.fromhex(value)
    if sizes is not None and len(raw) not in sizes:
        raise InputError(f"{what} must be {' or '.join(map(str, sizes))} bytes, got {len(raw)}")
    return raw


def _str_list(value: object, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InputError(f"{what} must be a list of strings")
    return list(value)


def _parse_measurements(value: object) -> dict[str, dict[str, tuple[str, ...]]]:
    if not isinstance(value, dict):
        raise InputError("attestation.measurements must be an object keyed by platform")
    out: dict[str, dict[str, tuple[str, ...]]] = {}
    for platform, pins in value.items():
        if platform not in MEASUREMENT_SIZES:
            raise InputError(f"attestation.measurements: unknown platform {platform!r}")
        if not isinstance(pins, dict):
            raise InputError(f"attestation.measurements.{platform} must be an object")
        sizes = MEASUREMENT_SIZES[platform]
        out[platform] = {}
        for name, allowed in pins.items():
            if name not in sizes:
                known = ", ".join(sizes)
                raise InputError(f"unknown {platform} measurement {name!r} (known: {known})")
            values = _str_list(allowed, f"attestation.measurements.{platform}.{name}")
            if not values:
                raise InputError(f"attestation.measurements.{platform}.{name} is empty")
            where = f"attestation.measurements.{platform}.{name}"
            out[platform][name] = tuple(_parse_hex(v, where, sizes[name]).hex() for v in values)
    return out


@dataclass(frozen=True)
class AttestationPolicy:
    """What a verifier accepts from hardware attestation evidence.

    The defaults are safe: any platform, no debug mode, Intel TCB status
    ``UpToDate`` only, no advisories, and measurements unpinned (reported as
    "not checked", never as passed).

    Example::

        policy = AttestationPolicy.from_dict({
            "platforms": ["tdx"],
            "measurements": {"tdx": {"MRTD": ["91eb2b44..."], "RTMR0": ["44c0197b..."]}},
            "tcb_statuses": ["UpToDate"],
        })
    """

    platforms: tuple[Platform, ...] = PLATFORMS
    measurements: Mapping[str, Mapping[str, tuple[str, ...]]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    allow_debug: bool = False
    tcb_statuses: tuple[str, ...] = ("UpToDate",)
    advisories: tuple[str, ...] = ()
    max_age_seconds: int | None = None
    report_data: bytes | None = None
    nonce: bytes | None = None

    def __post_init__(self) -> None:
        frozen = {p: MappingProxyType(dict(pins)) for p, pins in self.measurements.items()}
        object.__setattr__(self, "measurements", MappingProxyType(frozen))

    @classmethod
    def from_dict(cls, data: object) -> AttestationPolicy:
        """Read a policy from its JSON form; unknown keys and bad values raise InputError."""
        if not isinstance(data, dict):
            raise InputError("the attestation policy must be a JSON object")
        unknown = sorted(set(data) - _KEYS)
        if unknown:
            raise InputError(f"unknown attestation policy key(s): {', '.join(unknown)}")
        kwargs: dict[str, Any] = {}
        if "platforms" in data:
            platforms = _str_list(data["platforms"], "attestation.platforms")
            bad = [p for p in platforms if p not in PLATFORMS]
            if bad or not platforms:
                raise InputError(f"attestation.platforms must be a non-empty subset of {PLATFORMS}")
            kwargs["platforms"] = tuple(platforms)
        if "measurements" in data:
            kwargs["measurements"] = _parse_measurements(data["measurements"])
        if "allow_debug" in data:
            if not isinstance(data["allow_debug"], bool):
                raise InputError("attestation.allow_debug must be true or false")
            kwargs["allow_debug"] = data["allow_debug"]
        if "tcb_statuses" in data:
            statuses = _str_list(data["tcb_statuses"], "attestation.tcb_statuses")
            bad = [s for s in statuses if s not in TCB_STATUSES]
            if bad:
                raise InputError(
                    f"attestation.tcb_statuses: {bad[0]!r} is not an acceptable Intel TCB status"
                    f" (one of {', '.join(TCB_STATUSES)})"
                )
            kwargs["tcb_statuses"] = tuple(statuses)
        if "advisories" in data:
            advisories = _str_list(data["advisories"], "attestation.advisories")
            bad = [a for a in advisories if not _ADVISORY_RE.match(a)]
            if bad:
                raise InputError(f"attestation.advisories: {bad[0]!r} is not an INTEL-SA-NNNNN id")
            kwargs["advisories"] = tuple(advisories)
        kwargs.update(_parse_freshness(data))
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form read by :meth:`from_dict`."""
        out: dict[str, Any] = {
            "platforms": list(self.platforms),
            "measurements": {
                p: {n: list(v) for n, v in pins.items()} for p, pins in self.measurements.items()
            },
            "allow_debug": self.allow_debug,
            "tcb_statuses": list(self.tcb_statuses),
            "advisories": list(self.advisories),
            "max_age_seconds": self.max_age_seconds,
            "report_data": None if self.report_data is None else self.report_data.hex(),
            "nonce": None if self.nonce is None else self.nonce.hex(),
        }
        return out


def _parse_freshness(data: dict[str, Any]) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    max_age = data.get("max_age_seconds")
    if max_age is not None:
        if isinstance(max_age, bool) or not isinstance(max_age, int) or max_age <= 0:
            raise InputError("attestation.max_age_seconds must be a positive integer")
        kwargs["max_age_seconds"] = max_age
    if data.get("report_data") is not None:
        kwargs["report_data"] = _parse_hex(data["report_data"], "attestation.report_data", (64,))
    if data.get("nonce") is not None:
        nonce = _parse_hex(data["nonce"], "attestation.nonce")
        if not 1 <= len(nonce) <= MAX_NONCE_BYTES:
            raise InputError(f"attestation.nonce must be 1 to {MAX_NONCE_BYTES} bytes")
        kwargs["nonce"] = nonce
    return kwargs


def default_policy() -> AttestationPolicy:
    """The safe default policy (see :class:`AttestationPolicy`)."""
    return AttestationPolicy()


@dataclass(frozen=True)
class Facts:
    """What a platform verifier extracted from evidence whose signatures it checked."""

    platform: Platform
    measurements: dict[str, str]
    report_data: bytes
    debug: bool
    user_data: bytes | None = None
    public_key: bytes | None = None
    nonce: bytes | None = None
    tcb_status: str | None = None
    advisories: tuple[str, ...] = ()
    produced_at: datetime | None = None
    details: dict[str, str] = field(default_factory=dict)


def finish(
    facts: Facts, checks: CheckList, policy: AttestationPolicy, at: datetime
) -> AttestationReport:
    """Apply ``policy`` to verified ``facts``; raise on a failure, else return the report."""
    _check_platform(facts, checks, policy)
    _check_measurements(facts, checks, policy)
    _check_debug(facts, checks, policy)
    _check_tcb(facts, checks, policy)
    _check_report_data(facts, checks, policy)
    _check_nonce(facts, checks, policy)
    _check_freshness(facts, checks, policy, at)
    checks.raise_first_failure()
    return AttestationReport(
        platform=facts.platform,
        measurements=facts.measurements,
        report_data=facts.report_data,
        debug=facts.debug,
        verified_at=at,
        checks=checks.freeze(),
        user_data=facts.user_data,
        public_key=facts.public_key,
        nonce=facts.nonce,
        tcb_status=facts.tcb_status,
        advisories=facts.advisories,
        produced_at=facts.produced_at,
        details=facts.details,
    )


def _check_platform(facts: Facts, checks: CheckList, policy: AttestationPolicy) -> None:
    name = PLATFORM_NAMES[facts.platform]
    if facts.platform in policy.platforms:
        checks.passed(CHECK_PLATFORM, f"{name} is accepted by the policy")
    else:
        checks.failed(CHECK_PLATFORM, f"{name} is not among the policy's platforms")


def _check_measurements(facts: Facts, checks: CheckList, policy: AttestationPolicy) -> None:
    pins = policy.measurements.get(facts.platform, {})
    if not pins:
        checks.not_checked(CHECK_MEASUREMENTS, f"the policy pins no {facts.platform} measurement")
        return
    for name, allowed in sorted(pins.items()):
        value = facts.measurements.get(name)
        if value is None:
            checks.failed(CHECK_MEASUREMENTS, f"{name} is not in the evidence")
            return
        if value not in allowed:
            checks.failed(CHECK_MEASUREMENTS, f"{name} {value} is not in the policy's allow-list")
            return
    checks.passed(CHECK_MEASUREMENTS, f"{', '.join(sorted(pins))} match the policy's allow-list")


def _check_debug(facts: Facts, checks: CheckList, policy: AttestationPolicy) -> None:
    if not facts.debug:
        checks.passed(CHECK_DEBUG, "production mode (not debug)")
    elif policy.allow_debug:
        checks.passed(CHECK_DEBUG, "DEBUG mode, accepted because the policy sets allow_debug")
    else:
        checks.failed(
            CHECK_DEBUG, "the evidence is from a debug-mode TEE, which the policy rejects"
        )


def _check_tcb(facts: Facts, checks: CheckList, policy: AttestationPolicy) -> None:
    if facts.tcb_status is None:
        why = {
            "nitro": "AWS Nitro documents carry no TCB status",
            "snp": "no minimum SNP TCB in the policy; see attestation.tcb_binding",
        }.get(facts.platform, "no TCB status")
        checks.not_checked(CHECK_TCB_STATUS, why)
        checks.not_checked(CHECK_ADVISORIES, "no advisories are reported for this platform")
        return
    if facts.tcb_status in policy.tcb_statuses:
        checks.passed(CHECK_TCB_STATUS, f"TCB status {facts.tcb_status} is accepted")
    else:
        accepted = ", ".join(policy.tcb_statuses)
        checks.failed(
            CHECK_TCB_STATUS, f"TCB status {facts.tcb_status} is not accepted ({accepted})"
        )
    extra = [a for a in facts.advisories if a not in policy.advisories]
    if extra:
        checks.failed(
            CHECK_ADVISORIES, f"advisories not accepted by the policy: {', '.join(extra)}"
        )
    elif facts.advisories:
        checks.passed(CHECK_ADVISORIES, f"accepted advisories: {', '.join(facts.advisories)}")
    else:
        checks.passed(CHECK_ADVISORIES, "no security advisories apply")


def _check_report_data(facts: Facts, checks: CheckList, policy: AttestationPolicy) -> None:
    if policy.report_data is None:
        checks.not_checked(CHECK_REPORT_DATA, "the policy requires no report data")
    elif facts.report_data == policy.report_data:
        checks.passed(CHECK_REPORT_DATA, "report data equals the policy's")
    else:
        checks.failed(CHECK_REPORT_DATA, "report data differs from the policy's")


def _check_nonce(facts: Facts, checks: CheckList, policy: AttestationPolicy) -> None:
    if policy.nonce is None:
        checks.not_checked(CHECK_NONCE, "no verifier nonce was given")
        return
    if facts.platform == "nitro":
        ok = facts.nonce == policy.nonce
        where = "the document's nonce field"
    else:
        # Binding layout (docs/attestation.md): report_data[32:64] = SHA-256(nonce).
        ok = facts.report_data[32:64] == hashlib.sha256(policy.nonce).digest()
        where = "report_data[32:64] (SHA-256 of the nonce)"
    if ok:
        checks.passed(CHECK_NONCE, f"the verifier's nonce is in {where}")
    else:
        checks.failed(CHECK_NONCE, f"the verifier's nonce is not in {where}")


def _check_freshness(
    facts: Facts, checks: CheckList, policy: AttestationPolicy, at: datetime
) -> None:
    if facts.produced_at is None:
        checks.not_checked(
            CHECK_FRESHNESS,
            f"{PLATFORM_NAMES[facts.platform]} evidence carries no time; a nonce gives freshness",
        )
        return
    age = (at - facts.produced_at).total_seconds()
    if age < 0:
        checks.failed(
            CHECK_FRESHNESS, f"the document is dated {-age:.0f}s after the verification time"
        )
    elif policy.max_age_seconds is None:
        checks.not_checked(CHECK_FRESHNESS, f"document age {age:.0f}s; the policy sets no maximum")
    elif age <= policy.max_age_seconds:
        checks.passed(CHECK_FRESHNESS, f"document age {age:.0f}s <= {policy.max_age_seconds}s")
    else:
        checks.failed(CHECK_FRESHNESS, f"document age {age:.0f}s > {policy.max_age_seconds}s")
