"""Re-export of :mod:`inferproof._checks` (kept so ``verify._checks`` imports work)."""

from __future__ import annotations

from .._checks import Check, CheckStatus, failed, not_checked, passed

__all__ = ["Check", "CheckStatus", "failed", "not_checked", "passed"]
