"""The software measurement: what a node without TEE hardware can honestly report.

It is self-reported by the node and only as trustworthy as the node's key; the
verifier labels it "software, not hardware-backed" and never as attested.
"""

from __future__ import annotations

import functools
import hashlib
import platform
import sys
from importlib import metadata
from typing import Any

from .._canonical import canonical_json, sha256_digest
from .._version import __version__

SOFTWARE = "software"


def _distributions_digest() -> str:
    # Every installed distribution as "name==version", sorted: a change of any
    # dependency changes the measurement.
    lines = sorted(
        {
            f"{(d.metadata['Name'] or '').lower()}=={d.version}"
            for d in metadata.distributions()
            if d.metadata["Name"]
        }
    )
    return "sha256:" + hashlib.sha256("\n".join(lines).encode()).hexdigest()


@functools.lru_cache(maxsize=1)
def software_measurement() -> dict[str, Any]:
    """The node's software measurement (cached: it does not change while running)."""
    import onnxruntime

    return {
        "inferproof": __version__,
        "python": f"{sys.implementation.name} {platform.python_version()}",
        "onnxruntime": onnxruntime.__version__,
        "platform": f"{platform.system()}-{platform.release()}-{platform.machine()}",
        "distributions": _distributions_digest(),
    }


def software_environment() -> dict[str, Any]:
    """The receipt's environment block for a node without attestation hardware."""
    measurement = software_measurement()
    return {
        "type": SOFTWARE,
        "hardware_backed": False,
        "measurement": measurement,
        "digest": sha256_digest(canonical_json(measurement)),
    }
