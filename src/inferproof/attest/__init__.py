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

from ..errors import AttestationError, ProducerError
from ._binding import check_key_binding, expected_report_data
from ._dcap import verify_dcap
from ._evidence import MAX_EVIDENCE_BYTES, decode_evidence, detect_platform, verify_evidence
from ._identity import (
    DEFAULT_MAX_AGE_SECONDS,
    NodeIdentity,
    attested_measurements,
    identity_age_check,
    identity_signer_check,
    max_identity_age,
    produce_identity,
    verify_identity,
    verify_identity_evidence,
)
from ._keybinding import (
    OHTTP_BINDING_CONTEXT,
    check_ohttp_binding,
    ohttp_binding_message,
    sign_ohttp_binding,
)
from ._nitro import AWS_NITRO_ROOT_G1_SHA256, verify_nitro
from ._policy import AttestationPolicy, default_policy
from ._producers import (
    ConfigfsTsmProducer,
    DstackProducer,
    Evidence,
    EvidenceProducer,
    detect_producer,
)
from ._snp import verify_snp
from ._software import SOFTWARE, software_environment, software_measurement
from ._types import PLATFORM_NAMES, PLATFORMS, AttestationReport, Platform

__all__ = [
    "AWS_NITRO_ROOT_G1_SHA256",
    "DEFAULT_MAX_AGE_SECONDS",
    "MAX_EVIDENCE_BYTES",
    "OHTTP_BINDING_CONTEXT",
    "PLATFORMS",
    "PLATFORM_NAMES",
    "SOFTWARE",
    "AttestationError",
    "AttestationPolicy",
    "AttestationReport",
    "ConfigfsTsmProducer",
    "DstackProducer",
    "Evidence",
    "EvidenceProducer",
    "NodeIdentity",
    "Platform",
    "ProducerError",
    "attested_measurements",
    "check_key_binding",
    "check_ohttp_binding",
    "decode_evidence",
    "default_policy",
    "detect_platform",
    "detect_producer",
    "expected_report_data",
    "identity_age_check",
    "identity_signer_check",
    "max_identity_age",
    "ohttp_binding_message",
    "produce_identity",
    "sign_ohttp_binding",
    "software_environment",
    "software_measurement",
    "verify_dcap",
    "verify_evidence",
    "verify_identity",
    "verify_identity_evidence",
    "verify_nitro",
    "verify_snp",
]
