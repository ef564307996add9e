"""Hardware attestation: produce evidence inside a TEE, verify it offline.

Verifiers take the verification time as an argument and never read the clock.

Example::

    from datetime import UTC, datetime
    from inferproof.attest import AttestationPolicy, verify_evidence

    policy = AttestationPolicy.from_dict({"measurements": {"tdx": {"MRTD": ["91eb..."]}}})
    report = verify_evidence(quote, "tdx", [collateral_json],
                             at=datetime(2025, 7, 1, tzinfo=UTC), policy=policy)
    print(report.measurements["MRTD"], report.tcb_status)
"""

from __future__ import annotations

from ._binding import check_key_binding, expected_report_data
from ._dcap import verify_dcap
from ._evidence import decode_evidence, detect_platform, verify_evidence
from ._nitro import AWS_NITRO_ROOT_G1_SHA256, verify_nitro
from ._policy import AttestationPolicy, default_policy
from ._producers import (
    ConfigfsTsmProducer,
    DstackProducer,
    Evidence,
    EvidenceProducer,
    ProducerError,
    detect_producer,
)
from ._snp import verify_snp
from ._types import PLATFORMS, AttestationError, AttestationReport, Platform

__all__ = [
    "AWS_NITRO_ROOT_G1_SHA256",
    "PLATFORMS",
    "AttestationError",
    "AttestationPolicy",
    "AttestationReport",
    "ConfigfsTsmProducer",
    "DstackProducer",
    "Evidence",
    "EvidenceProducer",
    "Platform",
    "ProducerError",
    "check_key_binding",
    "decode_evidence",
    "default_policy",
    "detect_platform",
    "detect_producer",
    "expected_report_data",
    "verify_dcap",
    "verify_evidence",
    "verify_nitro",
    "verify_snp",
]
