"""One ``.npy`` member of an ``.npz``: the fuzz input is the member, zipped with a
correct CRC, so mutations reach the array header (magic, version, header length,
the dict literal with descr, fortran_order and shape) instead of failing the zip.
"""

from __future__ import annotations

import io
import zipfile

import numpy as np
from numpy.lib import format as npy_format

from inferproof.runtime import parse_npz_tensors

from .._harness import Target, parse
from .._material import Material

TOKENS = (
    b"\x93NUMPY",
    b"'descr': ",
    b"'<f4'",
    b"'>f4'",
    b"'|b1'",
    b"'<u8'",
    b"'|O'",
    b"'fortran_order': True",
    b"'shape': (",
    b"4294967296, 4294967296",
    b"68719476736",
    b"-1",
)


def _save(arr: np.ndarray, version: tuple[int, int] | None = None) -> bytes:
    buf = io.BytesIO()
    npy_format.write_array(buf, arr, version=version, allow_pickle=False)
    return buf.getvalue()


def seeds() -> list[bytes]:
    arrays = [np.array([[0.5, -1.0]], dtype) for dtype in ("float16", "float32", "float64")]
    arrays += [np.arange(6, dtype=d).reshape(2, 3) for d in ("int8", "uint16", "int64")]
    arrays += [np.array([True, False]), np.array(3, np.int32), np.zeros((0, 4), np.float32)]
    out = [_save(a) for a in arrays]
    out.append(_save(np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3))))
    out += [_save(np.ones(3, np.float32), (2, 0)), _save(np.ones(3, np.float32), (3, 0))]
    return out


def zipped(member: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("x.npy", member)
    return buf.getvalue()


def target(m: Material) -> Target:
    def run(data: bytes) -> None:
        parse(parse_npz_tensors, zipped(data))

    def accepts(data: bytes) -> bool:
        return parse(parse_npz_tensors, zipped(data)) is not None

    return Target("npy", run, tuple(seeds()), TOKENS, accepts)
