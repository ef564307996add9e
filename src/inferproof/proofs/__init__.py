"""Proof systems: one module each, behind :class:`ProofSystem`."""

from __future__ import annotations

from ._base import ProofSystem, ProveContext, VerifyContext
from .reexec import Reexecution

__all__ = ["ProofSystem", "ProveContext", "Reexecution", "VerifyContext"]
