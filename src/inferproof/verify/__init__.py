"""Verification: a :class:`Verifier` built from a :class:`TrustRoot` and a :class:`Policy`.

Example::

    from inferproof.verify import Verifier, TrustRoot, Policy
    report = Verifier(trust, Policy()).check(bundle)
    print(report.verified, [c.to_json() for c in report.checks])
"""

from __future__ import annotations

from .._checks import Check, CheckStatus
from ._imagecheck import LoggedImage, LoggedImages
from ._policy import Policy, TrustRoot, load_policy, parse_policy
from ._runcheck import CallReport, RunReport, RunVerifier, log_checks_of
from ._verifier import Material, VerificationReport, VerifiedReceipt, Verifier
from ._zkcheck import zk_setup_of

__all__ = [
    "CallReport",
    "Check",
    "CheckStatus",
    "LoggedImage",
    "LoggedImages",
    "Material",
    "Policy",
    "RunReport",
    "RunVerifier",
    "TrustRoot",
    "VerificationReport",
    "VerifiedReceipt",
    "Verifier",
    "load_policy",
    "log_checks_of",
    "parse_policy",
    "zk_setup_of",
]
