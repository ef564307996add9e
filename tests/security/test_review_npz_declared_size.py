"""Issue 11, low: an ``.npz`` declaring 64 GiB gave a ``MemoryError`` traceback.

``np.load`` allocates the array an ``.npy`` header declares before it reads the
data, so a 236-byte archive whose member declares 2**33 float64 values asked
for 64 GiB. The archive reader now reads each member's header first, refuses a
declared size over the caps (and an archive expanding past the input-file cap)
before allocating, and reads the data only once it is allowed. The node takes
JSON tensors only, so the HTTP surface has no ``.npz`` path; the CLI's
``--input`` is where an ``.npz`` comes in. Built by ``assets/make_parser_assets.py``.
"""

from __future__ import annotations

import io
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest

from inferproof.errors import InputError
from inferproof.runtime import _tensors, parse_npz_tensors
from inferproof.testing import mlp_model

from ._parsers import ASSETS, assert_one_line_error, asset, cli

NPZ = "review-npz-declared-size.npz"


def _npz(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def test_the_asset_declares_64_gib() -> None:
    with zipfile.ZipFile(ASSETS / NPZ) as archive:
        member = archive.read("x.npy")
    assert b"'shape': (8589934592,)" in member and b"'<f8'" in member
    assert len(asset(NPZ)) < 300


def test_refused_without_allocating_it() -> None:
    tracing = tracemalloc.is_tracing()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        with pytest.raises(InputError, match="over the cap"):
            parse_npz_tensors(asset(NPZ))
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        if not tracing:
            tracemalloc.stop()
    assert peak < 1024 * 1024


def test_an_archive_may_not_expand_past_the_input_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    data = _npz(a=np.zeros(64, np.float64), b=np.zeros(64, np.float64))
    monkeypatch.setattr(_tensors, "MAX_INPUT_FILE_BYTES", 600)
    with pytest.raises(InputError, match="over the archive's cap"):
        parse_npz_tensors(data)
    monkeypatch.setattr(_tensors, "MAX_INPUT_FILE_BYTES", 1024)
    assert set(parse_npz_tensors(data).tensors) == {"a", "b"}


@pytest.mark.parametrize(
    ("member", "why"),
    [
        ("x.txt", "is not a .npy array"),
        ("x.npy/", "is not a .npy array"),
    ],
)
def test_members_np_savez_never_writes_are_refused(member: str, why: str) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr(member, b"")
    with pytest.raises(InputError, match=why):
        parse_npz_tensors(buf.getvalue())


def test_a_short_member_is_refused() -> None:
    whole = _npz(x=np.arange(8, dtype=np.int64))
    with zipfile.ZipFile(io.BytesIO(whole)) as archive:
        member = archive.read("x.npy")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("x.npy", member[:-8])
    with pytest.raises(InputError, match="56 data bytes, the header declares 64"):
        parse_npz_tensors(buf.getvalue())


def test_real_archives_still_load() -> None:
    fortran = np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3))
    got = parse_npz_tensors(_npz(f=fortran, b=np.array([True, False]), s=np.array(3))).tensors
    assert np.array_equal(got["f"], fortran) and got["f"].flags["C_CONTIGUOUS"]
    assert got["b"].dtype == np.bool_ and got["s"].shape == ()
    with pytest.raises(InputError, match="unsupported dtype"):
        parse_npz_tensors(_npz(u=np.array(["text"])))


def test_cli_infer_is_a_one_line_error(home: Path, tmp_path: Path) -> None:
    model = tmp_path / "mlp.onnx"
    model.write_bytes(mlp_model((8, 16, 2)))
    code, out, err = cli(
        "infer", str(model), "--input", str(ASSETS / NPZ), "-o", str(tmp_path / "b")
    )
    assert_one_line_error(code, out, err, "over the cap")
