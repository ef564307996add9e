"""The one error module of inferproof.

Every exception the library raises on purpose is an :class:`Error`. Callers that
only want to know "did verification fail?" catch :class:`VerificationError`;
callers handling user input catch :class:`InputError`.

Example::

    from inferproof.errors import VerificationError
    try:
        verifier.verify(bundle)
    except VerificationError as exc:
        print("failed check:", exc.check)
"""

from __future__ import annotations


class Error(Exception):
    """Base class of every error inferproof raises on purpose."""


class InputError(Error):
    """Bad input from outside: a malformed file, a wrong tensor, an unknown model."""


class VerificationError(Error):
    """A verification check failed; ``check`` names it (for example ``"signature"``).

    The message always starts with the check's name so a one-line report is useful.
    """

    def __init__(self, check: str, detail: str) -> None:
        self.check = check
        self.detail = detail
        super().__init__(f"{check}: {detail}")
