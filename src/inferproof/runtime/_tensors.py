"""Named tensors: parsing untrusted inputs, checking them against a model, digests.

A tensor set's digest is ``sha256`` over the RFC 8785 JSON of
``{name: {"dtype", "shape", "sha256"}}`` where ``sha256`` covers the tensor's
C-order little-endian bytes. Any change of a value, a dtype, a shape or a name
changes the digest, and two implementations compute it the same way.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._canonical import canonical_json, parse_json, sha256_digest
from ..errors import InputError

# Caps on untrusted inputs. 16 Mi elements (64 MiB as float32) is far above the
# tabular and small vision models this runtime targets, and bounds memory.
MAX_ELEMENTS = 16 * 1024 * 1024
MAX_INPUT_FILE_BYTES = 256 * 1024 * 1024
MAX_TENSORS = 256

Tensors = dict[str, np.ndarray]


@dataclass(frozen=True)
class NamedInputs:
    """Parsed input tensors; ``untyped`` names came from plain JSON lists (no dtype)."""

    tensors: Tensors
    untyped: frozenset[str] = frozenset()


# ONNX tensor element types (onnx.proto TensorProto.DataType) as onnxruntime names them.
ORT_TO_NUMPY: dict[str, str] = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(float16)": "float16",
    "tensor(int8)": "int8",
    "tensor(int16)": "int16",
    "tensor(int32)": "int32",
    "tensor(int64)": "int64",
    "tensor(uint8)": "uint8",
    "tensor(uint16)": "uint16",
    "tensor(uint32)": "uint32",
    "tensor(uint64)": "uint64",
    "tensor(bool)": "bool",
}
SUPPORTED_DTYPES = frozenset(ORT_TO_NUMPY.values())


def _le_bytes(array: np.ndarray) -> bytes:
    arr = np.ascontiguousarray(array)
    if arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    return arr.tobytes(order="C")


def tensor_manifest(tensors: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """The JSON object a tensor digest covers (names, dtypes, shapes, byte hashes)."""
    return {
        name: {
            "dtype": arr.dtype.name,
            "shape": list(arr.shape),
            "sha256": hashlib.sha256(_le_bytes(arr)).hexdigest(),
        }
        for name, arr in tensors.items()
    }


def tensors_digest(tensors: Mapping[str, np.ndarray]) -> str:
    """``sha256:<hex>`` identifying a set of named tensors exactly."""
    return sha256_digest(canonical_json(tensor_manifest(tensors)))


def encode_tensors(tensors: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """JSON form of tensors: ``{"dtype", "shape", "data"}``, or ``"b64"`` when non-finite."""
    out: dict[str, Any] = {}
    for name, arr in tensors.items():
        entry: dict[str, Any] = {"dtype": arr.dtype.name, "shape": list(arr.shape)}
        if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
            entry["b64"] = base64.b64encode(_le_bytes(arr)).decode()
        else:
            entry["data"] = arr.reshape(-1).tolist()
        out[name] = entry
    return out


def _check_shape(shape: Any, name: str) -> tuple[int, ...]:
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise InputError(f"tensor {name!r}: shape must be a list of non-negative integers")
    count = int(np.prod(shape)) if shape else 1
    if count > MAX_ELEMENTS:
        raise InputError(f"tensor {name!r} has {count} elements, over the cap of {MAX_ELEMENTS}")
    return tuple(shape)


def _decode_explicit(name: str, obj: dict[str, Any]) -> np.ndarray:
    unknown = set(obj) - {"dtype", "shape", "data", "b64"}
    if unknown:
        raise InputError(f"tensor {name!r}: unknown field(s) {sorted(unknown)}")
    dtype = obj.get("dtype")
    if dtype not in SUPPORTED_DTYPES:
        raise InputError(f"tensor {name!r}: unsupported dtype {dtype!r}")
    shape = _check_shape(obj.get("shape"), name)
    if ("data" in obj) == ("b64" in obj):
        raise InputError(f"tensor {name!r}: give exactly one of 'data' or 'b64'")
    if "b64" in obj:
        try:
            raw = base64.b64decode(str(obj["b64"]), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InputError(f"tensor {name!r}: 'b64' is not valid base64") from exc
        dt = np.dtype(dtype).newbyteorder("<")
        if len(raw) != int(np.prod(shape, dtype=np.int64)) * dt.itemsize:
            raise InputError(f"tensor {name!r}: {len(raw)} bytes do not fill shape {list(shape)}")
        return np.frombuffer(raw, dtype=dt).astype(dtype).reshape(shape)
    arr = _from_values(name, obj["data"], dtype)
    if arr.size != int(np.prod(shape, dtype=np.int64)):
        raise InputError(f"tensor {name!r}: {arr.size} values do not fill shape {list(shape)}")
    return arr.reshape(shape)


def _from_values(name: str, values: Any, dtype: str | None) -> np.ndarray:
    try:
        arr = np.array(values)
    except (ValueError, TypeError) as exc:
        raise InputError(f"tensor {name!r}: values are not a rectangular array: {exc}") from exc
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise InputError(f"tensor {name!r}: values must be numbers in a rectangular array")
    if arr.size > MAX_ELEMENTS:
        raise InputError(f"tensor {name!r} has {arr.size} elements, over the cap of {MAX_ELEMENTS}")
    return arr if dtype is None else _cast_exact(name, arr, dtype)


def _cast_exact(name: str, arr: np.ndarray, dtype: str) -> np.ndarray:
    """Cast JSON numbers to ``dtype`` only when no value changes class or overflows."""
    target = np.dtype(dtype)
    if target.kind in "iub":
        if arr.dtype.kind == "f" and not np.all(arr == np.round(arr)):
            raise InputError(f"tensor {name!r}: expected {dtype} but got non-integer values")
        if target.kind != "b" and arr.size:
            info = np.iinfo(target)
            if arr.min() < info.min or arr.max() > info.max:
                raise InputError(f"tensor {name!r}: values out of range for {dtype}")
        if target.kind == "b" and not np.all((arr == 0) | (arr == 1)):
            raise InputError(f"tensor {name!r}: expected bool (0/1 or true/false)")
    if target.kind == "f" and arr.size:
        finfo = np.finfo(target)
        if np.max(np.abs(arr.astype(np.float64))) > float(finfo.max):
            raise InputError(f"tensor {name!r}: values overflow {dtype}")
    return arr.astype(target)


def parse_json_tensors(data: bytes) -> NamedInputs:
    """Parse ``{"name": [[...]]}`` or ``{"name": {"dtype", "shape", "data"|"b64"}}``.

    Plain nested lists keep their JSON number kind until :func:`conform` casts them
    to the model's dtype.
    """
    obj = parse_json(data, "input JSON", MAX_INPUT_FILE_BYTES)
    if not isinstance(obj, dict) or not obj:
        raise InputError('input JSON must be an object of named tensors: {"name": [[...]]}')
    if len(obj) > MAX_TENSORS:
        raise InputError(f"input has {len(obj)} tensors, over the cap of {MAX_TENSORS}")
    out: Tensors = {}
    untyped = set()
    for name, value in obj.items():
        if isinstance(value, dict):
            out[name] = _decode_explicit(name, value)
        else:
            out[name] = _from_values(name, value, None)
            untyped.add(name)
    return NamedInputs(out, frozenset(untyped))


def parse_npz_tensors(data: bytes) -> NamedInputs:
    """Read a ``.npz`` archive of named arrays (no pickles)."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            names = list(archive.files)
            if len(names) > MAX_TENSORS:
                raise InputError(f"input has {len(names)} tensors, over the cap")
            out: Tensors = {}
            for name in names:
                arr = archive[name]
                if arr.size > MAX_ELEMENTS:
                    raise InputError(f"tensor {name!r} has {arr.size} elements, over the cap")
                if str(arr.dtype) not in SUPPORTED_DTYPES:
                    raise InputError(f"tensor {name!r}: unsupported dtype {arr.dtype}")
                out[name] = np.ascontiguousarray(arr)
            return NamedInputs(out)
    except InputError:
        raise
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise InputError(f"input is not a valid .npz archive: {exc}") from exc


def load_tensors(path: Path) -> NamedInputs:
    """Load named tensors from a ``.json`` or ``.npz`` file."""
    if not path.is_file():
        raise InputError(f"input file {path} does not exist")
    size = path.stat().st_size
    if size > MAX_INPUT_FILE_BYTES:
        raise InputError(f"input file {path} is {size} bytes, over the cap")
    data = path.read_bytes()
    if path.suffix.lower() == ".npz" or data[:2] == b"PK":
        return parse_npz_tensors(data)
    return parse_json_tensors(data)


def decode_tensors(obj: Any, what: str) -> Tensors:
    """Decode the JSON form written by :func:`encode_tensors` (explicit dtypes required)."""
    if not isinstance(obj, dict):
        raise InputError(f"{what} must be an object of named tensors")
    out: Tensors = {}
    for name, value in obj.items():
        if not isinstance(value, dict):
            raise InputError(f"{what}: tensor {name!r} needs dtype, shape and data")
        out[name] = _decode_explicit(name, value)
    return out
