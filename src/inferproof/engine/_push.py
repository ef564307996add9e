"""Adding a model to the hub: check it loads, store it, sign it or record a signature."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization

from .._files import PathLike, write_atomic
from ..errors import InputError
from ..hub import ModelRecord, check_name, load_publisher_key, publisher_id, sign_model
from ..runtime import OnnxModel, TensorSpec, is_gguf
from ..verify import TrustRoot
from ._chatmodels import ChatModels
from ._models import OnnxModels, read_model

__all__ = ["push", "trust_publisher"]


def push(
    models: OnnxModels,
    chat_models: ChatModels,
    trust_dir: Path,
    model: PathLike | bytes,
    *,
    name: str,
    version: str | None = None,
    sign_key: PathLike | None = None,
    signature: bytes | None = None,
) -> ModelRecord:
    """Check the file is a loadable ONNX or GGUF model, store it, optionally sign it
    (``sign_key``, whose public half ``trust_dir`` then trusts) or record a
    publisher's ready signature bundle (``signature``)."""
    if sign_key is not None and signature is not None:
        raise InputError("give a signing key or a signature, not both")
    check_name(name, "model name")  # before anything is stored
    if version is not None:
        check_name(version, "version")
    data = read_model(model)
    loaded: OnnxModel | None = None
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    if is_gguf(data):
        chat_models.check(data)
        inputs, outputs, fmt = (), (), "gguf"
    else:
        loaded = OnnxModel(data)
        inputs, outputs, fmt = loaded.signature.inputs, loaded.signature.outputs, "onnx"
    if sign_key is not None:
        signature = sign_model(data, Path(sign_key))
        trust_publisher(trust_dir, sign_key)
    record = models.hub.add(
        data,
        name=name,
        version=version,
        inputs=inputs,
        outputs=outputs,
        signature=signature,
        fmt=fmt,
        publishers=TrustRoot.from_directory(trust_dir).publishers,
    )
    if loaded is not None:
        models.keep(record.digest, loaded)
    else:
        models.forget(record.digest)
    return record


def trust_publisher(trust_dir: Path, sign_key: PathLike) -> None:
    """Trust the public half of a local publisher key.

    The local user holds this private key, so the local trust root trusts its
    public half, as a fresh install trusts its own node key."""
    priv = serialization.load_pem_private_key(Path(sign_key).read_bytes(), password=None)
    pem = priv.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    pid = publisher_id(load_publisher_key(pem))
    target = trust_dir / "publishers" / f"{pid.split(':')[1]}.pem"
    if not target.exists():
        write_atomic(target, pem, mode=0o644)
