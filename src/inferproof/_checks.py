"""The unit of a verification report: one named check and its outcome."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class CheckStatus(StrEnum):
    """Outcome of one check. ``NOT_CHECKED`` is never counted as a pass."""

    PASSED = "passed"
    FAILED = "failed"
    NOT_CHECKED = "not_checked"


@dataclass(frozen=True)
class Check:
    """One check made (or not made) during verification.

    Example::

        Check("signature", CheckStatus.PASSED, "DSSE envelope signed by node key ab12...")
    """

    name: str
    status: CheckStatus
    detail: str

    @property
    def passed(self) -> bool:
        return self.status is CheckStatus.PASSED

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status.value, "detail": self.detail}


def passed(name: str, detail: str) -> Check:
    return Check(name, CheckStatus.PASSED, detail)


def failed(name: str, detail: str) -> Check:
    return Check(name, CheckStatus.FAILED, detail)


def not_checked(name: str, detail: str) -> Check:
    return Check(name, CheckStatus.NOT_CHECKED, detail)
