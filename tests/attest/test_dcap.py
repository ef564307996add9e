"""Intel TDX and SGX DCAP quotes (dcap-qvl) on the real vectors: windows, tampering,
TCB statuses and advisories, and the measurement allow-list."""

from __future__ import annotations

import pytest

from inferproof._checks import CheckStatus
from inferproof.attest import AttestationError, AttestationPolicy, verify_dcap, verify_evidence
from inferproof.attest._policy import TCB_STATUSES
from inferproof.errors import InputError

from .conftest import ATTESTATION, failed_check, flip, needs_vectors, utc, vector

pytestmark = needs_vectors

TDX_AT = utc("2025-07-01T00:00:00")  # SOURCES.md window 2025-06-19T10:32:27Z .. 07-19T10:00:35Z
SGX_AT = utc("2025-07-01T00:00:00")  # SOURCES.md window 2025-06-19T10:56:11Z .. 07-19T10:01:18Z
# dcap-qvl sample/tdx_quote: the same values are pinned by other verifiers' test suites for
# this Phala sample quote (e.g. "Verify a V4 TDX quote from Phala" in a TypeScript TDX
# verifier: MRTD and report_data; Rust golden-value tests: RTMR0 and RTMR1).
TDX_MRTD = "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7"
TDX_RTMR0 = "44c0197b39157fdd7a4dcc44767f9d6b0bb3977c7a8e347b8492f827fe9d9e5c48aca29b220b80b6a540cf994b9bc9c0"
TDX_RTMR1 = "0084452c01668329d4bc06acdf58a7205c26743304509973949e5619bf81a6a7aea8c323c173019b3093d54e579e9378"
TDX_REPORT_DATA = (
    "9a9d48e7f6799642d3d1b34e1e5e1742d4bb02dd6ddd551862c1211d35c304f9"
    "eca3efdbb481601c163cf52493d6e44aed55d51ec39b7e518fadb92c2b523f20"
)
# dcap-qvl sample/sgx_quote: MRENCLAVE and MRSIGNER as pinned by Phala's zk-dcap-verifier
# and other DCAP test suites; report_data is "Hello, world!" zero-padded (same sources).
SGX_MRENCLAVE = "33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb"
SGX_MRSIGNER = "815f42f11cf64430c30bab7816ba596a1da0130c3b028b673133a66cf9a3e0e6"
SGX_STATUS = "ConfigurationAndSWHardeningNeeded"  # SOURCES.md
SGX_ADVISORIES = ("INTEL-SA-00289", "INTEL-SA-00615")  # SOURCES.md
# Offsets from the quote formats (Intel TDX DCAP Quote Library API A.3: 48-byte header,
# TD quote body MRTD at 136, RTMR0 at 328, REPORTDATA at 520 of the body; SGX ECDSA Quote
# Library API A.4: MRENCLAVE at 64, MRSIGNER at 128, REPORTDATA at 320 of the report body).
TDX_MRTD_AT, TDX_RTMR0_AT, TDX_REPORT_DATA_AT = 184, 376, 568
SGX_MRENCLAVE_AT, SGX_MRSIGNER_AT, SGX_REPORT_DATA_AT = 112, 176, 368


def tdx(
    quote: str = "tdx/tdx_quote", collateral: str = "tdx/tdx_quote_collateral.json"
) -> tuple[bytes, bytes]:
    return vector(quote), vector(collateral)


def test_tdx_quote_inside_window() -> None:
    quote, collateral = tdx()
    report = verify_dcap(quote, collateral, at=TDX_AT)
    assert report.platform == "tdx" and report.tcb_status == "UpToDate"
    assert report.advisories == () and not report.debug
    assert report.measurements["MRTD"] == TDX_MRTD
    assert report.measurements["RTMR0"] == TDX_RTMR0
    assert report.measurements["RTMR1"] == TDX_RTMR1
    assert report.report_data.hex() == TDX_REPORT_DATA
    # The same registers read straight from the quote bytes at the spec's offsets.
    assert quote[TDX_MRTD_AT : TDX_MRTD_AT + 48].hex() == TDX_MRTD
    assert quote[TDX_RTMR0_AT : TDX_RTMR0_AT + 48].hex() == TDX_RTMR0
    assert quote[TDX_REPORT_DATA_AT : TDX_REPORT_DATA_AT + 64].hex() == TDX_REPORT_DATA
    statuses = {c.name: c.status for c in report.checks}
    for name in ("attestation.signature", "attestation.chain", "attestation.collateral"):
        assert statuses[name] is CheckStatus.PASSED


@pytest.mark.parametrize(
    "at",
    ["2025-06-19T10:32:26", "2025-07-19T10:00:35", "2026-01-01T00:00:00"],
    ids=["before", "at-end", "long-after"],
)
def test_tdx_quote_outside_window_fails_collateral(at: str) -> None:
    quote, collateral = tdx()
    with pytest.raises(AttestationError) as exc:
        verify_dcap(quote, collateral, at=utc(at))
    assert failed_check(exc.value) == "attestation.collateral"


@pytest.mark.parametrize("offset", [TDX_REPORT_DATA_AT, TDX_MRTD_AT + 3, 10])
def test_tdx_flipped_byte_fails_signature(offset: int) -> None:
    quote, collateral = tdx()
    with pytest.raises(AttestationError) as exc:
        verify_dcap(flip(quote, offset), collateral, at=TDX_AT)
    assert failed_check(exc.value) == "attestation.signature"
    assert "signature is invalid" in exc.value.detail


def test_tdx_allow_list_without_the_measurement_fails() -> None:
    quote, collateral = tdx()
    good = AttestationPolicy.from_dict({"measurements": {"tdx": {"MRTD": [TDX_MRTD]}}})
    assert verify_dcap(quote, collateral, at=TDX_AT, policy=good).ok
    bad = AttestationPolicy.from_dict({"measurements": {"tdx": {"MRTD": [TDX_RTMR0]}}})
    with pytest.raises(AttestationError) as exc:
        verify_dcap(quote, collateral, at=TDX_AT, policy=bad)
    assert failed_check(exc.value) == "attestation.measurements" and "MRTD" in exc.value.detail


def test_near_quote_hex_text_via_dispatch() -> None:
    hex_text = (ATTESTATION / "tdx/near_quote.hex").read_bytes()
    collateral = [vector("tdx/near_quote_collateral.json")]
    report = verify_evidence(hex_text, None, collateral, at=utc("2025-09-15T00:00:00"))
    quote = bytes.fromhex(hex_text.decode().strip())
    assert report.platform == "tdx" and report.tcb_status == "UpToDate"  # SOURCES.md
    assert report.measurements["MRTD"] == quote[TDX_MRTD_AT : TDX_MRTD_AT + 48].hex()
    assert report.report_data == quote[TDX_REPORT_DATA_AT : TDX_REPORT_DATA_AT + 64]
    with pytest.raises(AttestationError) as exc:
        verify_evidence(hex_text, None, collateral, at=utc("2025-10-03T00:00:00"))
    assert failed_check(exc.value) == "attestation.collateral"


def test_outdated_tdx_quote_is_rejected() -> None:
    quote, collateral = tdx("tdx/tdx_quote_outdated", "tdx/tdx_quote_outdated_collateral.json")
    everything = AttestationPolicy(tcb_statuses=TCB_STATUSES)  # every status but Revoked
    for policy in (None, everything):
        with pytest.raises(AttestationError) as exc:
            verify_dcap(quote, collateral, at=utc("2026-03-01T00:00:00"), policy=policy)
        assert failed_check(exc.value) == "attestation.tcb_status"
        assert "No matching TCB level found" in exc.value.detail  # SOURCES.md


def sgx() -> tuple[bytes, bytes]:
    return vector("sgx/sgx_quote"), vector("sgx/sgx_quote_collateral.json")


def test_sgx_status_rejected_by_default_policy() -> None:
    quote, collateral = sgx()
    with pytest.raises(AttestationError) as exc:
        verify_dcap(quote, collateral, at=SGX_AT)
    assert failed_check(exc.value) == "attestation.tcb_status"
    assert SGX_STATUS in exc.value.detail


def test_sgx_status_without_advisories_still_rejected() -> None:
    quote, collateral = sgx()
    policy = AttestationPolicy.from_dict({"tcb_statuses": ["UpToDate", SGX_STATUS]})
    with pytest.raises(AttestationError) as exc:
        verify_dcap(quote, collateral, at=SGX_AT, policy=policy)
    assert failed_check(exc.value) == "attestation.advisories"
    assert all(a in exc.value.detail for a in SGX_ADVISORIES)


def test_sgx_accepted_when_policy_lists_status_and_advisories() -> None:
    quote, collateral = sgx()
    policy = AttestationPolicy.from_dict(
        {
            "tcb_statuses": [SGX_STATUS],
            "advisories": list(SGX_ADVISORIES),
            "measurements": {"sgx": {"MRENCLAVE": [SGX_MRENCLAVE], "MRSIGNER": [SGX_MRSIGNER]}},
            "report_data": b"Hello, world!".ljust(64, b"\0").hex(),
        }
    )
    report = verify_dcap(quote, collateral, at=SGX_AT, policy=policy)
    assert report.platform == "sgx" and not report.debug
    assert report.tcb_status == SGX_STATUS and report.advisories == SGX_ADVISORIES
    assert report.measurements == {"MRENCLAVE": SGX_MRENCLAVE, "MRSIGNER": SGX_MRSIGNER}
    assert quote[SGX_MRENCLAVE_AT : SGX_MRENCLAVE_AT + 32].hex() == SGX_MRENCLAVE
    assert quote[SGX_MRSIGNER_AT : SGX_MRSIGNER_AT + 32].hex() == SGX_MRSIGNER
    assert report.report_data == quote[SGX_REPORT_DATA_AT : SGX_REPORT_DATA_AT + 64]


def test_sgx_tamper_window_and_allow_list() -> None:
    quote, collateral = sgx()
    lenient = AttestationPolicy(tcb_statuses=(SGX_STATUS,), advisories=SGX_ADVISORIES)
    with pytest.raises(AttestationError) as exc:
        verify_dcap(flip(quote, SGX_REPORT_DATA_AT), collateral, at=SGX_AT, policy=lenient)
    assert failed_check(exc.value) == "attestation.signature"
    for outside in ("2025-06-19T10:56:10", "2025-07-19T10:01:19"):
        with pytest.raises(AttestationError) as exc:
            verify_dcap(quote, collateral, at=utc(outside), policy=lenient)
        assert failed_check(exc.value) == "attestation.collateral"
    pinned = AttestationPolicy(
        tcb_statuses=(SGX_STATUS,),
        advisories=SGX_ADVISORIES,
        measurements={"sgx": {"MRENCLAVE": (SGX_MRSIGNER,)}},
    )
    with pytest.raises(AttestationError) as exc:
        verify_dcap(quote, collateral, at=SGX_AT, policy=pinned)
    assert failed_check(exc.value) == "attestation.measurements"
    with pytest.raises(AttestationError) as exc:
        other_data = AttestationPolicy(
            tcb_statuses=(SGX_STATUS,), advisories=SGX_ADVISORIES, report_data=bytes(64)
        )
        verify_dcap(quote, collateral, at=SGX_AT, policy=other_data)
    assert failed_check(exc.value) == "attestation.report_data"


def test_platform_mismatch_and_bad_inputs() -> None:
    quote, collateral = sgx()
    with pytest.raises(AttestationError) as exc:
        verify_dcap(quote, collateral, at=SGX_AT, platform="tdx")
    assert failed_check(exc.value) == "attestation.platform"
    with pytest.raises(AttestationError) as exc:
        verify_dcap(b"\x00" * 100, collateral, at=SGX_AT)
    assert failed_check(exc.value) == "attestation.format"
    for bad in (b"{}", b"not json", b"\xff\xfe", b'{"a": 1, "a": 2}'):
        with pytest.raises(InputError):
            verify_dcap(quote, bad, at=SGX_AT)
    # Collateral of another platform (the TDX sample's) does not verify the SGX quote.
    with pytest.raises(AttestationError) as exc:
        verify_dcap(quote, vector("tdx/tdx_quote_collateral.json"), at=SGX_AT)
    assert failed_check(exc.value) == "attestation.collateral"
