"""The one error module of inferproof.

Every exception the library raises on purpose is an :class:`Error`. Callers that
only want to know "did verification fail?" catch :class:`VerificationError`;
callers handling user input catch :class:`InputError`. The whole tree::

    Error
    ├── InputError              bad input from outside (file, tensor, request, reference)
    │   └── ModelNotFound       no model under that reference (HTTP 404)
    ├── VerificationError       a check failed; ``check`` names it
    │   └── AttestationError    a hardware attestation check failed, with the checks made
    ├── BlobCorruptError        a stored blob no longer hashes to its name
    ├── ZkError                 EZKL failed on something that is not the caller's input
    ├── ProducerError           the TEE interface failed or answered something unexpected
    └── UpstreamError           a relay's upstream was unreachable or answered nonsense

Example::

    from inferproof.errors import VerificationError
    try:
        verifier.verify(bundle)
    except VerificationError as exc:
        print("failed check:", exc.check)
"""

from __future__ import annotations

from ._checks import Check

__all__ = [
    "AttestationError",
    "BlobCorruptError",
    "Error",
    "InputError",
    "ModelNotFound",
    "ProducerError",
    "StoreUnavailable",
    "UpstreamError",
    "VerificationError",
    "ZkError",
]


class Error(Exception):
    """Base class of every error inferproof raises on purpose."""


class InputError(Error):
    """Bad input from outside: a malformed file, a wrong tensor, an unknown model."""


class ModelNotFound(InputError):
    """No model under that reference (an HTTP layer answers 404, OpenAI's
    ``model_not_found``)."""


class VerificationError(Error):
    """A verification check failed; ``check`` names it (for example ``"signature"``).

    The message always starts with the check's name so a one-line report is useful.
    """

    def __init__(self, check: str, detail: str) -> None:
        self.check = check
        self.detail = detail
        super().__init__(f"{check}: {detail}")


class AttestationError(VerificationError):
    """An attestation check failed; ``exc.check`` names the first failed check.

    ``checks`` lists every check made up to the failure: a cryptographic failure
    stops verification at once, while the policy checks are all evaluated and
    listed before the first failed one is raised.
    """

    def __init__(self, check: str, detail: str, checks: tuple[Check, ...] = ()) -> None:
        super().__init__(check, detail)
        self.checks = checks


class BlobCorruptError(Error):
    """A stored blob's bytes no longer hash to its name."""


class ZkError(Error):
    """EZKL failed on something that is not the caller's input (a bug or a resource)."""


class ProducerError(Error):
    """The TEE interface failed or answered something unexpected."""


class StoreUnavailable(Error):
    """A store cannot be written or reached now (its server restarts, the database is
    read only, the disk is full): nothing was stored, and retrying later may work.
    The node answers 503."""


class UpstreamError(Error):
    """The upstream of a relay could not be reached or gave an unusable answer."""
