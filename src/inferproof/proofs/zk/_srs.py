"""The structured reference string (KZG parameters) a circuit is set up against.

Whoever knows the secret behind an SRS can forge proofs. The public SRS comes from
a multi-party ceremony (the Perpetual Powers of Tau, as packaged by EZKL); a dev SRS
made here by ``ezkl.gen_srs`` has a secret this machine saw, so a proof under it
shows nothing to anyone but its maker. Setup records say which kind was used.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Literal

import ezkl

from ..._canonical import sha256_digest
from ...errors import InputError
from ...hub import BlobStore
from . import _ezkl
from ._index import SetupIndex

# SHA-256 of EZKL's public ceremony SRS file for each logrows k, as EZKL checks them
# itself after download (zkonduit/ezkl, src/srs_sha.rs, PUBLIC_SRS_SHA256_HASHES).
PUBLIC_SRS_SHA256: dict[int, str] = {
    1: "cafb2aa72c200ddc4e28aacabb8066e829207e2484b8d17059a566232f8a297b",
    2: "8194ec51da5d332d2e17283ade34920644774452c2fadf33742e8c739e275d8e",
    3: "0729e815bce2ac4dfad7819982c6479c3b22c32b71f64dca05e8fdd90e8535ef",
    4: "2c0785da20217fcafd3b12cc363a95eb2529037cc8a9bddf8fb15025cbc8cdc9",
    5: "5b950e3b76e7a9923d69f6d6585ce6b5f9458e5ec57a71c9de5005d32d544692",
    6: "85030b2924111fc60acaf4fb8a7bad89531fbe0271aeab0c21e545f71eee273d",
    7: "e65f95150519fe01c2bedf8f832f5249822ef84c9c017307419e10374ff9eeb1",
    8: "446092fd1d6030e5bb2f2a8368267d5ed0fbdb6a766f6c5e4a4841827ad3106f",
    9: "493d088951882ad81af11e08c791a38a37c0ffff14578cf2c7fb9b7bca654d8b",
    10: "9705d450e5dfd06adb673705f7bc34418ec86339203198beceb2ae7f1ffefedb",
    11: "257fa566ed9bc0767d3e63e92b5e966829fa3347d320a32055dc31ee7d33f8a4",
    12: "28b151069f41abc121baa6d2eaa8f9e4c4d8326ddbefee2bd9c0776b80ac6fad",
    13: "d5d94bb25bdc024f649213593027d861042ee807cafd94b49b54f1663f8f267d",
    14: "c09129f064c08ecb07ea3689a2247dcc177de6837e7d2f5f946e30453abbccef",
    15: "90807800a1c3b248a452e1732c45ee5099f38b737356f5542c0584ec9c3ebb45",
    16: "2a1a494630e71bc026dd5c0eab4c1b9a5dbc656228c1f0d48f5dbd3909b161d3",
    17: "41509f380362a8d14401c5ae92073154922fe23e45459ce6f696f58607655db7",
    18: "d0148475717a2ba269784a178cb0ab617bc77f16c58d4a3cbdfe785b591c7034",
    19: "d1a1655b4366a766d1578beb257849a92bf91cb1358c1a2c37ab180c5d3a204d",
    20: "54ef75911da76d7a6b7ea341998aaf66cb06c679c53e0a88a4fe070dd3add963",
    21: "486e044cf98704e07f41137d2b89698dc03d1fbf34d13b60902fea19a6013b4b",
    22: "1ee9b4396db3e4e2516ac5016626ab6ba967f091d5d23afbdb7df122a0bb9d0c",
    23: "748e48b9b6d06f9c82d26bf551d0af43ee2e801e4be56d7ccb20312e267fd1d6",
    24: "f94fa4afa2f5147680f907d4dd96a8826206c26bd3328cd379feaed614b234de",
    25: "dec49a69893fbcd66cd06296b2d936a6aceb431c130b2e52675fe4274b504f57",
    26: "b198a51d48b88181508d8e4ea9dea39db285e4585663b29b7e4ded0c22a94875",
}
_PUBLIC_BY_DIGEST = {"sha256:" + h: k for k, h in PUBLIC_SRS_SHA256.items()}

# Dev SRS files are cached in the index under this fixed pseudo model digest so one
# file per logrows serves every model set up with --dev-srs on this machine.
DEV_SRS_SLOT = sha256_digest(b"inferproof.zk.dev-srs")

SrsChoice = tuple[str, Literal["public", "dev"], int]


def public_srs_logrows(digest: str) -> int | None:
    """The logrows of the public ceremony SRS with this digest, or None if not public."""
    return _PUBLIC_BY_DIGEST.get(digest)


def from_file(path: Path, logrows: int, store: BlobStore) -> SrsChoice:
    """Take a user-supplied SRS file, accepted only if it is the public ceremony's."""
    if not path.is_file():
        raise InputError(
            f"SRS file {path} does not exist. The public ceremony SRS for this circuit is "
            f"kzg{logrows}.srs (Perpetual Powers of Tau, as EZKL packages it): fetch it once "
            f"with `ezkl get-srs --logrows {logrows}` on a machine with internet access, or "
            "let setup fetch it (--online-srs); --dev-srs makes a local one for development "
            "(whoever made it can forge proofs)"
        )
    data = path.read_bytes()
    digest = sha256_digest(data)
    k = public_srs_logrows(digest)
    if k is None:
        raise InputError(
            f"SRS file {path.name} ({digest}) is not one of EZKL's public ceremony SRS "
            "files; use the public SRS, or --dev-srs for development only"
        )
    if k < logrows:
        raise InputError(f"SRS file {path.name} is for logrows {k}; the circuit needs {logrows}")
    store.put(data)
    return digest, "public", k


def fetch_public(settings_path: Path, logrows: int, store: BlobStore) -> SrsChoice:
    """Download the public SRS with EZKL (network); EZKL and we check its hash."""
    with tempfile.TemporaryDirectory(prefix="inferproof-srs-") as tmp:
        target = Path(tmp) / f"kzg{logrows}.srs"
        _ezkl.call("get_srs", ezkl.get_srs, str(settings_path), logrows, str(target))
        return from_file(target, logrows, store)


def dev(logrows: int, store: BlobStore, index: SetupIndex) -> SrsChoice:
    """A locally generated SRS (cached per logrows): anyone holding it can forge proofs."""
    key = f"dev-srs/logrows={logrows}"
    known = index.get(DEV_SRS_SLOT, key)
    if known is not None and store.has(known):
        return known, "dev", logrows
    with tempfile.TemporaryDirectory(prefix="inferproof-srs-") as tmp:
        target = Path(tmp) / "dev.srs"
        _ezkl.call("gen_srs", ezkl.gen_srs, str(target), logrows, user_error=False)
        digest = _ezkl.put_file(store, target)
    index.put(DEV_SRS_SLOT, key, digest)
    return digest, "dev", logrows
