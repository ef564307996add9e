"""`inferproof policy init`: write a commented policy to start from."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from ..attest import DEFAULT_MAX_AGE_SECONDS
from ..engine import LocalNode
from ..errors import InputError
from ._common import console, handle_errors

policy_app = typer.Typer(help="Verification policies.", no_args_is_help=True)

C = "$comment"

# What to pin on each platform (see docs/attestation.md for the reasoning).
_ATTESTATION: dict[str, dict[str, Any]] = {
    "nitro": {
        C: "PCR0 is the enclave image, PCR1 the kernel and boot ramfs, PCR2 the application; "
        "pin all three (values from `nitro-cli build-enclave`). Debug enclaves have all-zero PCRs.",
        "platforms": ["nitro"],
        "measurements": {
            "nitro": {"PCR0": ["<96 hex>"], "PCR1": ["<96 hex>"], "PCR2": ["<96 hex>"]}
        },
        "allow_debug": False,
        "max_age_seconds": DEFAULT_MAX_AGE_SECONDS["nitro"],
    },
    "tdx": {
        C: "MRTD is the TD's initial memory (firmware); RTMR0-2 firmware config, kernel and "
        "command line; RTMR3 the application (dstack: the compose hash). Accept only UpToDate "
        "unless you have reviewed the advisories.",
        "platforms": ["tdx"],
        "measurements": {
            "tdx": {"MRTD": ["<96 hex>"], "RTMR1": ["<96 hex>"], "RTMR2": ["<96 hex>"]}
        },
        "tcb_statuses": ["UpToDate"],
        "advisories": [],
        "max_age_seconds": DEFAULT_MAX_AGE_SECONDS["tdx"],
    },
    "sgx": {
        C: "MRENCLAVE pins the exact enclave build; MRSIGNER the signing key (any build by it).",
        "platforms": ["sgx"],
        "measurements": {"sgx": {"MRENCLAVE": ["<64 hex>"]}},
        "tcb_statuses": ["UpToDate"],
        "advisories": [],
        "max_age_seconds": DEFAULT_MAX_AGE_SECONDS["sgx"],
    },
    "snp": {
        C: "MEASUREMENT is the launch digest of the guest (firmware, kernel, initrd, cmdline "
        "with measured direct boot). Debug guests (policy bit 19) are rejected.",
        "platforms": ["snp"],
        "measurements": {"snp": {"MEASUREMENT": ["<96 hex>"]}},
        "allow_debug": False,
        "max_age_seconds": DEFAULT_MAX_AGE_SECONDS["snp"],
    },
}


def policy_document(node: LocalNode, platform: str | None) -> dict[str, Any]:
    """A policy trusting this node, with every requirement spelled out.

    It verifies what the node it was written for produces: the publishers this
    install trusts are listed, and a model signature is required only when there is
    one to trust (the comment says what to add otherwise)."""
    publishers = [p.read_text() for p in sorted((node.home.trust / "publishers").glob("*.pem"))]
    signature_note = (
        "Publisher keys (PEM) whose model signatures are accepted: those this install trusts."
        if publishers
        else "No publisher is trusted here yet: add the PEM public keys of the publishers "
        "whose models you accept, then set require.model_signature to true."
    )
    doc: dict[str, Any] = {
        C: "inferproof verification policy. '$comment' keys are ignored; unknown keys are errors.",
        "version": 1,
        "trust": {
            C: "Keys listed here replace the verifier's local trust for that kind of key. "
            + signature_note,
            "node_keys": [base64.b64encode(node.public_key).decode()],
            "publisher_keys": publishers,
            "log_keys": [str(node.log.verifier_key)],
            "witness_keys": [],
        },
        "require": {
            C: "What must pass; a check whose material is missing then fails.",
            "model_signature": bool(publishers),
            "input": False,
            "reexecution": False,
            "nonce": False,
            "hardware": platform is not None,
            "log": True,
            "confidential": False,
        },
        "confidential": {
            C: "With require.confidential, a confidential client (--confidential) sends only "
            "to a node whose Oblivious HTTP key hardware attestation binds; allow_software "
            "also accepts a software node's key, bound by its node key alone.",
            "allow_software": False,
        },
        "log": {C: "How many of the witness keys must cosign the checkpoint.", "witness_quorum": 0},
        "freshness": {C: "Maximum receipt age in seconds.", "max_age_seconds": 86400},
        "environment": {
            C: "Allowed software measurement digests (see `inferproof node identity`); "
            "require_logged_image: the receipt must name an image a trusted publisher logged "
            "(give the image entries with `verify --image DIR`).",
            "allowed_measurements": [],
            "require_logged_image": False,
        },
    }
    if platform is not None:
        doc["attestation"] = _ATTESTATION[platform]
    return doc


@policy_app.command("init")
@handle_errors
def policy_init(
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write it.")] = Path(
        "policy.json"
    ),
    platform: Annotated[
        str | None, typer.Option("--platform", help="Require hardware: nitro|tdx|sgx|snp.")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented policy trusting this node; edit it, then `verify --policy`."""
    if platform is not None and platform not in _ATTESTATION:
        raise InputError(f"unknown platform {platform!r}: choose nitro, tdx, sgx or snp")
    if output.exists() and not force:
        raise InputError(f"{output} exists; use --force to overwrite it")
    doc = policy_document(LocalNode(), platform)
    output.write_text(json.dumps(doc, indent=2) + "\n")
    console.print(f"policy written to {output}")
