"""Named tensors: parsing untrusted inputs, checking them against a model, digests.

A tensor set's digest is ``sha256`` over the RFC 8785 JSON of
``{name: {"dtype", "shape", "sha256"}}`` where ``sha256`` covers the tensor's
C-order little-endian bytes. Any change of a value, a dtype, a shape or a name
changes the digest, and two implementations compute it the same way.
"""

from __future__ import annotations

import ast
import base64
import binascii
import hashlib
import io
import math
import struct
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._canonical import canonical_json, parse_json, sha256_digest
from ..errors import Error, InputError

# Caps on untrusted inputs. 16 Mi elements (64 MiB as float32) is far above the
# tabular and small vision models this runtime targets, and bounds memory.
MAX_ELEMENTS = 16 * 1024 * 1024
MAX_INPUT_FILE_BYTES = 256 * 1024 * 1024
MAX_TENSORS = 256
# 32 dimensions: numpy 1.x's NPY_MAXDIMS, so a tensor we accept loads in any numpy;
# ONNX models in practice use at most 8.
MAX_DIMS = 32

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


def checked_shape(shape: Any, name: str) -> tuple[tuple[int, ...], int]:
    """``shape`` and its element count, refused over the caps before anything is allocated.

    The count is a Python integer: ``np.prod`` works in 64 bits and wraps, so
    ``[2**32, 2**32]`` would count 0 and slip past the cap (issue 11, low).
    """
    if not isinstance(shape, list | tuple) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise InputError(f"tensor {name!r}: shape must be a list of non-negative integers")
    if len(shape) > MAX_DIMS:
        raise InputError(f"tensor {name!r} has {len(shape)} dimensions, over the cap of {MAX_DIMS}")
    # One dimension over the cap is refused even when another is 0 (the count then is
    # 0): no sensible tensor has it, and numpy cannot even reshape to it past 2**63.
    if any(d > MAX_ELEMENTS for d in shape):
        raise InputError(f"tensor {name!r}: a dimension is over the cap of {MAX_ELEMENTS}")
    count = math.prod(shape)
    if count > MAX_ELEMENTS:
        raise InputError(f"tensor {name!r} has {count} elements, over the cap of {MAX_ELEMENTS}")
    return tuple(shape), count


def _check_name(name: str) -> None:
    """A tensor's name goes into its digest's RFC 8785 bytes, so it must be valid Unicode:
    JSON's ``\\ud800`` escapes make lone surrogates, which have no UTF-8 (tests/fuzz)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(f"tensor name {name!r:.80} is not valid Unicode") from None


def _decode_explicit(name: str, obj: dict[str, Any]) -> np.ndarray:
    unknown = set(obj) - {"dtype", "shape", "data", "b64"}
    if unknown:
        raise InputError(f"tensor {name!r}: unknown field(s) {sorted(unknown)}")
    dtype = obj.get("dtype")
    # A list is not hashable: the type is checked before the set lookup (tests/fuzz).
    if not isinstance(dtype, str) or dtype not in SUPPORTED_DTYPES:
        raise InputError(f"tensor {name!r}: unsupported dtype {str(dtype)[:40]!r}")
    shape, count = checked_shape(obj.get("shape"), name)
    if ("data" in obj) == ("b64" in obj):
        raise InputError(f"tensor {name!r}: give exactly one of 'data' or 'b64'")
    if "b64" in obj:
        try:
            raw = base64.b64decode(str(obj["b64"]), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InputError(f"tensor {name!r}: 'b64' is not valid base64") from exc
        dt = np.dtype(dtype).newbyteorder("<")
        if len(raw) != count * dt.itemsize:
            raise InputError(f"tensor {name!r}: {len(raw)} bytes do not fill shape {list(shape)}")
        return np.frombuffer(raw, dtype=dt).astype(dtype).reshape(shape)
    arr = _from_values(name, obj["data"], dtype)
    if arr.size != count:
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
        _check_name(name)
        if isinstance(value, dict):
            out[name] = _decode_explicit(name, value)
        else:
            out[name] = _from_values(name, value, None)
            untyped.add(name)
    return NamedInputs(out, frozenset(untyped))


# The .npy format (numpy/lib/format.py, "Format Version 1.0" to "3.0"): a 6-byte magic,
# a major and minor version byte, the header length (2 bytes little-endian in 1.0,
# 4 bytes in 2.0 and 3.0), then a Python dict literal with exactly the keys descr,
# fortran_order and shape, padded with spaces to a 64-byte boundary and ended by '\n'.
_NPY_MAGIC = b"\x93NUMPY"
_NPY_HEADER_LENGTH = {1: "<H", 2: "<I", 3: "<I"}
# numpy writes headers of about 128 bytes; its own reader refuses over 10000.
_MAX_NPY_HEADER = 4096
# The only array descriptions accepted: little-endian (or byte-sized) numbers and bools.
_NPY_DESCR = {np.dtype(name).newbyteorder("<").str: name for name in SUPPORTED_DTYPES}


def _npy_header(member: str, head: bytes) -> tuple[dict[str, Any], int]:
    """The header dict of a .npy member and where its data starts; nothing is allocated."""
    if head[:6] != _NPY_MAGIC or len(head) < 8 or head[6] not in _NPY_HEADER_LENGTH:
        raise InputError(f"member {member!r} is not a .npy array (version 1 to 3)")
    fmt = _NPY_HEADER_LENGTH[head[6]]
    start = 8 + struct.calcsize(fmt)
    if len(head) < start:
        raise InputError(f"member {member!r}: the .npy header is truncated")
    (length,) = struct.unpack(fmt, head[8:start])
    if length > _MAX_NPY_HEADER or len(head) < start + length:
        raise InputError(f"member {member!r}: the .npy header is truncated or over the cap")
    try:
        text = head[start : start + length].decode("utf-8" if head[6] == 3 else "latin-1")
        header = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as exc:
        raise InputError(f"member {member!r}: the .npy header is not a literal") from exc
    if not isinstance(header, dict) or set(header) != {"descr", "fortran_order", "shape"}:
        raise InputError(f"member {member!r}: the .npy header needs descr, fortran_order, shape")
    return header, start + length


def _npy_plan(name: str, header: dict[str, Any]) -> tuple[str, tuple[int, ...], bool, int]:
    """Check a .npy header against the caps: (dtype, shape, Fortran order, data bytes)."""
    descr, order = header["descr"], header["fortran_order"]
    dtype = _NPY_DESCR.get(descr) if isinstance(descr, str) else None
    if dtype is None:
        raise InputError(f"tensor {name!r}: unsupported dtype {str(descr)[:40]!r}")
    if not isinstance(order, bool):
        raise InputError(f"tensor {name!r}: fortran_order must be a boolean")
    shape, count = checked_shape(header["shape"], name)
    return dtype, shape, order, count * np.dtype(dtype).itemsize


def _read_npy(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, budget: int
) -> np.ndarray:
    """Read one member: the header first, the data only once its declared size is allowed."""
    with archive.open(info) as member:
        head = member.read(16 + _MAX_NPY_HEADER)
        header, offset = _npy_header(info.filename, head)
        dtype, shape, fortran, nbytes = _npy_plan(name, header)
        if nbytes > budget:
            raise InputError(f"tensor {name!r} declares {nbytes} bytes, over the archive's cap")
        rest = head[offset:]
        # One byte more than declared is asked for, so trailing data is noticed.
        raw = rest + member.read(max(nbytes + 1 - len(rest), 0))
    if len(raw) != nbytes:
        raise InputError(f"tensor {name!r}: {len(raw)} data bytes, the header declares {nbytes}")
    arr = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<"))
    # astype copies into a native-order, C-contiguous, writable array.
    return arr.reshape(shape, order="F" if fortran else "C").astype(dtype, order="C")


def _npz_members(archive: zipfile.ZipFile) -> list[tuple[zipfile.ZipInfo, str]]:
    """The archive's members as (entry, tensor name), refusing what np.savez never writes."""
    infos = archive.infolist()
    if len(infos) > MAX_TENSORS:
        raise InputError(f"input has {len(infos)} tensors, over the cap of {MAX_TENSORS}")
    out, seen = [], set()
    for info in infos:
        if not info.filename.endswith(".npy") or info.is_dir():
            raise InputError(f"member {info.filename!r:.80} of the .npz is not a .npy array")
        # np.savez stores members, np.savez_compressed deflates them; neither encrypts.
        if info.flag_bits & 0x1 or info.compress_type not in (
            zipfile.ZIP_STORED,
            zipfile.ZIP_DEFLATED,
        ):
            raise InputError(f"member {info.filename!r:.80} is encrypted or oddly compressed")
        name = info.filename[: -len(".npy")]
        if name in seen:
            raise InputError(f"tensor {name!r:.80} appears twice in the .npz")
        seen.add(name)
        out.append((info, name))
    return out


def parse_npz_tensors(data: bytes) -> NamedInputs:
    """Read a ``.npz`` archive of named arrays (no pickles).

    Each member's header is read and checked against the caps before its data is
    read, and all the data together may not expand past :data:`MAX_INPUT_FILE_BYTES`,
    so a small archive declaring 64 GiB (issue 11, low) or a deflate bomb is refused
    without allocating it. ``np.load`` is not used: it allocates what the header says.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            budget = MAX_INPUT_FILE_BYTES
            out: Tensors = {}
            for info, name in _npz_members(archive):
                out[name] = _read_npy(archive, info, name, budget)
                budget -= out[name].nbytes
            return NamedInputs(out)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise InputError(f"input is not a valid .npz archive: {str(exc)[:200]}") from exc
    except NotImplementedError as exc:
        # zipfile's answer to a "version needed to extract" it does not know (tests/fuzz).
        raise InputError(f"input is not a .npz archive numpy writes: {exc}") from exc


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
        _check_name(name)
        if not isinstance(value, dict):
            raise InputError(f"{what}: tensor {name!r} needs dtype, shape and data")
        out[name] = _decode_explicit(name, value)
    return out


def describe_tensors(obj: Any, shown: int = 16) -> list[tuple[str, str]]:
    """Named tensors in JSON form (:func:`encode_tensors`) as ``(name, text)`` lines for
    people, each ``dtype[shape] [first values…]`` with at most ``shown`` values; an
    unreadable block is one ``("", "unreadable: …")`` line.

    Example::

        describe_tensors({"y": {"dtype": "float32", "shape": [2], "data": [0.5, 1.0]}})
        # [("y", "float32[2] [0.5, 1]")]
    """
    try:
        tensors = decode_tensors(obj, "tensors")
    except Error as exc:
        return [("", f"unreadable: {exc}")]
    lines = []
    for name, arr in tensors.items():
        flat = arr.reshape(-1)
        values = ", ".join(
            f"{v:.6g}" if isinstance(v, float) else str(v) for v in flat[:shown].tolist()
        )
        more = f", … ({flat.size} values)" if flat.size > shown else ""
        lines.append((name, f"{arr.dtype.name}{list(arr.shape)} [{values}{more}]"))
    return lines
