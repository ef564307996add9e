"""Verifiers the bundle targets run, and what a report must satisfy."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime

from inferproof.errors import Error
from inferproof.receipts import Bundle
from inferproof.verify import Material as Given
from inferproof.verify import Policy, Verifier

from .._harness import PropertyBroken, must
from .._material import WITNESS_TIME, Material

# A fixed verification time: a report must not depend on the clock.
NOW = datetime.fromtimestamp(WITNESS_TIME + 60, UTC)

Pair = tuple[Verifier, Given]


def verifiers(m: Material) -> tuple[Pair, ...]:
    """A lenient verifier with nothing given, and a strict one given the model and nonce.

    Neither keeps a checkpoint memory, so every input is checked from the same state.
    """
    strict = Policy(
        require_model_signature=True,
        require_input=True,
        require_reexecution=True,
        require_nonce=True,
        max_age_seconds=3600.0,
        require_log=True,
        witness_quorum=1,
    )
    return (
        (Verifier(m.trust, Policy()), Given()),
        (Verifier(m.trust, strict), Given(model_bytes=m.onnx, nonce="fuzz-nonce", now=NOW)),
    )


# Verifier.check turns whatever a step raises into a failed check named after the
# step, "malformed bundle (<exception class>): ...". For the library's own errors that
# is the design; any other class is a parser inside the verifier breaking the property,
# which the report would otherwise hide.
_MASKED = re.compile(r"malformed bundle \((\w+)\)")


def _error_names(cls: type[BaseException] = Error) -> set[str]:
    return {cls.__name__}.union(*(_error_names(sub) for sub in cls.__subclasses__()))


def check_all(pairs: Sequence[Pair], bundle: Bundle) -> None:
    """Verifier.check never raises, nothing in it fails but with the library's errors,
    and its report is consistent and serialisable."""
    allowed = _error_names()
    for verifier, given in pairs:
        try:
            report = verifier.check(bundle, given)
        except Exception as exc:
            raise PropertyBroken(f"Verifier.check raised {type(exc).__name__}: {exc}") from exc
        for check in report.checks:
            masked = _MASKED.match(check.detail)
            must(masked is None or masked.group(1) in allowed, f"{check.name}: {check.detail}")
        must(
            report.verified == (report.first_failure is None),
            "the report's verdict disagrees with its checks",
        )
        json.dumps(report.to_json())
