"""Verification time per hardware attestation document, printed as a markdown table.

Each row is the median of N runs of the full verifier (parsing, signatures, chain,
policy) on a real vector from ../shared/vectors/attestation, next to the bare
cryptographic core it wraps as the reference: ``dcap_qvl.verify`` alone for TDX
and SGX, one ECDSA P-384 verification of the signed bytes for Nitro and SEV-SNP.

    .venv/bin/python bench/bench_attest.py [--runs 50] [--out FILE]
"""

from __future__ import annotations

import argparse
import base64
import platform
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import cbor2
import dcap_qvl
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from inferproof.attest import AttestationPolicy, verify_evidence
from inferproof.attest._snp import load_certificates

VECTORS = Path(__file__).resolve().parents[1] / ".." / "shared" / "vectors" / "attestation"


def _read(name: str) -> bytes:
    data = (VECTORS / name).read_bytes()
    return base64.b64decode(data) if name.endswith(".b64") else data


def _median_ms(fn: Callable[[], object], runs: int) -> float:
    fn()  # warm caches (imports, lazily built tables)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def _nitro_core(doc: bytes) -> Callable[[], None]:
    protected, _unprotected, payload, sig = cbor2.loads(doc)
    leaf = x509.load_der_x509_certificate(cbor2.loads(payload)["certificate"])
    key = leaf.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    signed = cbor2.dumps(["Signature1", protected, b"", payload])
    der = encode_dss_signature(int.from_bytes(sig[:48], "big"), int.from_bytes(sig[48:], "big"))
    return lambda: key.verify(der, signed, ec.ECDSA(hashes.SHA384()))


def _snp_core(report: bytes, vcek_der: bytes) -> Callable[[], None]:
    key = load_certificates([vcek_der])[0].public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    r = int.from_bytes(report[0x2A0 : 0x2A0 + 72], "little")
    s = int.from_bytes(report[0x2E8 : 0x2E8 + 72], "little")
    der = encode_dss_signature(r, s)
    return lambda: key.verify(der, report[:0x2A0], ec.ECDSA(hashes.SHA384()))


def _dcap_core(quote: bytes, collateral: bytes, at: datetime) -> Callable[[], object]:
    parsed = dcap_qvl.QuoteCollateralV3.from_json(collateral.decode())
    return lambda: dcap_qvl.verify(quote, parsed, int(at.timestamp()))


def _cases() -> list[tuple[str, str, Callable[[], object], Callable[[], object]]]:
    lenient = AttestationPolicy(
        allow_debug=True,
        tcb_statuses=("UpToDate", "ConfigurationAndSWHardeningNeeded"),
        advisories=("INTEL-SA-00289", "INTEL-SA-00615"),
    )
    cases = []
    for name, at in (
        ("nitro/nitrite_valid.b64", datetime(2024, 9, 7, 14, 37, 40, tzinfo=UTC)),
        ("nitro/evervault_beta_valid.cbor", datetime(2022, 10, 13, 8, 58, 3, tzinfo=UTC)),
    ):
        doc = _read(name)
        cases.append(
            (
                "nitro",
                name,
                lambda doc=doc, at=at: verify_evidence(doc, "nitro", at=at, policy=lenient),
                _nitro_core(doc),
            )
        )
    for kind, quote_name, col_name, at in (
        ("tdx", "tdx/tdx_quote", "tdx/tdx_quote_collateral.json", datetime(2025, 7, 1, tzinfo=UTC)),
        ("sgx", "sgx/sgx_quote", "sgx/sgx_quote_collateral.json", datetime(2025, 7, 1, tzinfo=UTC)),
    ):
        quote, col = _read(quote_name), _read(col_name)
        cases.append(
            (
                kind,
                quote_name,
                lambda q=quote, c=col, k=kind, at=at: verify_evidence(
                    q, k, [c], at=at, policy=lenient
                ),
                _dcap_core(quote, col, at),
            )
        )
    report, vcek, askark = (
        _read("snp/attestation.bin"),
        _read("snp/vcek.der"),
        _read("snp/ask_ark_milan.pem"),
    )
    at = datetime(2022, 9, 24, 1, tzinfo=UTC)
    cases.append(
        (
            "snp",
            "snp/attestation.bin",
            lambda: verify_evidence(report, "snp", [vcek, askark], at=at, policy=lenient),
            _snp_core(report, vcek),
        )
    )
    return cases


def run(runs: int) -> str:
    rows = [
        "| platform | vector | inferproof verify (ms, median) | reference core (ms) | ratio |",
        "|---|---|---:|---:|---:|",
    ]
    for kind, name, full, core in _cases():
        ours, ref = _median_ms(full, runs), _median_ms(core, runs)
        rows.append(f"| {kind} | {name} | {ours:.2f} | {ref:.2f} | {ours / ref:.1f}x |")
    machine = (
        f"{platform.machine()}, {platform.python_implementation()} {platform.python_version()}"
    )
    return (
        f"Attestation verification, median of {runs} runs ({machine}, dcap-qvl "
        f"{dcap_qvl.__version__}). Reference: dcap_qvl.verify alone (TDX, SGX); one ECDSA "
        "P-384 verify of the signed bytes (Nitro, SEV-SNP).\n\n" + "\n".join(rows) + "\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if not VECTORS.is_dir():
        sys.exit(f"attestation vectors not found at {VECTORS}")
    text = run(args.runs)
    print(text)
    if args.out:
        args.out.write_text(
            "# Benchmark: attestation verification\n\n"
            "`.venv/bin/python bench/bench_attest.py --out FILE`\n\n" + text
        )


if __name__ == "__main__":
    main()
