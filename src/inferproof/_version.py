"""The package version, in a module of its own so any layer can read it without
importing the package's front door."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
