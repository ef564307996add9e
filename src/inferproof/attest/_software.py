"""The software measurement: what a node without TEE hardware can honestly report.

It is self-reported by the node and only as trustworthy as the node's key; the
verifier labels it "software, not hardware-backed" and never as attested.
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import re
import sys
from importlib import metadata
from typing import Any

from .._canonical import canonical_json, sha256_digest
from .._version import __version__
from ..errors import InputError

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


# The image a node runs from, as whoever started it says (`inferproof image build`
# prints it; the deployment passes it in, since an image cannot hold its own digest).
IMAGE_VARIABLE = "INFERPROOF_IMAGE"
_IMAGE = re.compile(r"sha256:[0-9a-f]{64}")


@functools.lru_cache(maxsize=1)
def software_measurement() -> dict[str, Any]:
    """The node's software measurement (cached: it does not change while running),
    with the image it runs from when ``INFERPROOF_IMAGE`` names one."""
    import onnxruntime

    measurement = {
        "inferproof": __version__,
        "python": f"{sys.implementation.name} {platform.python_version()}",
        "onnxruntime": onnxruntime.__version__,
        "platform": f"{platform.system()}-{platform.release()}-{platform.machine()}",
        "distributions": _distributions_digest(),
    }
    image = os.environ.get(IMAGE_VARIABLE)
    if image:
        if not _IMAGE.fullmatch(image):
            raise InputError(f"{IMAGE_VARIABLE} must be an image digest sha256:<64 hex>")
        measurement["image"] = image
    return measurement


def software_environment() -> dict[str, Any]:
    """The receipt's environment block for a node without attestation hardware."""
    measurement = software_measurement()
    return {
        "type": SOFTWARE,
        "hardware_backed": False,
        "measurement": measurement,
        "digest": sha256_digest(canonical_json(measurement)),
    }
