"""``inferproof key generate``: a publisher key pair for signing models.

OpenSSF model-signing's key mode signs with an unencrypted PEM ECDSA private key and
verifies with the PEM public key (``model_signing sign key --private_key FILE`` /
``verify key --public_key FILE.pub``); inferproof verifies P-256 and P-384, so those
are the two types offered. The private key is PKCS#8 PEM, created 0600 and never
overwritten; its public half (SubjectPublicKeyInfo PEM) goes beside it as
``FILE.pub``, the file a verifier trusts (``INFERPROOF_HOME/trust/publishers/`` or a
policy's ``publisher_keys``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from .._files import write_atomic, write_private
from ..errors import InputError
from ..hub import load_publisher_key, publisher_id
from ._common import console, err_console, handle_errors

__all__ = ["key_app"]

key_app = typer.Typer(help="Publisher keys for signing models.", no_args_is_help=True)

_CURVES: dict[str, ec.EllipticCurve] = {"ecdsa-p256": ec.SECP256R1(), "ecdsa-p384": ec.SECP384R1()}


def _pems(curve: ec.EllipticCurve) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(curve)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


@key_app.command("generate")
@handle_errors
def key_generate(
    output: Annotated[
        Path, typer.Option("-o", "--output", help="Private key file to create (0600).")
    ],
    key_type: Annotated[
        str, typer.Option("--type", help="ecdsa-p256 (default) or ecdsa-p384.")
    ] = "ecdsa-p256",
) -> None:
    """Make a publisher key pair: FILE (private, 0600) and FILE.pub (public PEM)."""
    curve = _CURVES.get(key_type.lower())
    if curve is None:
        raise InputError(f"--type must be one of {', '.join(_CURVES)}, not {key_type!r:.40}")
    public_path = output.with_name(output.name + ".pub")
    for path in (output, public_path):
        if path.exists():
            raise InputError(f"{path} exists: a key is never overwritten (choose another -o)")
    private, public = _pems(curve)
    write_private(output, private)  # create-if-absent: a file made meanwhile is kept
    write_atomic(public_path, public, mode=0o644)
    pid = publisher_id(load_publisher_key(public, str(public_path)))
    err_console.print(
        f"private key {output} (keep it secret), public key {public_path}; sign with "
        f"`inferproof model push MODEL --name NAME --sign-key {output}`",
        markup=False,
        soft_wrap=True,
    )
    console.print(pid, markup=False)
