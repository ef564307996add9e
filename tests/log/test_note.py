"""C2SP signed notes against the golang.org/x/mod/sumdb/note test vectors."""

from __future__ import annotations

import pytest

from inferproof.errors import InputError, VerificationError
from inferproof.log import ALG_COSIGNATURE_V1, Note, SignerKey, VerifierKey, open_note, sign_note

from .conftest import VECTORS

SKEY = (VECTORS / "peter.skey").read_text().strip()
VKEY = (VECTORS / "peter.vkey").read_text().strip()
ENOCH = (VECTORS / "enoch.vkey").read_text().strip()
SIGNED = (VECTORS / "peter.note").read_bytes()
TWO_SIGS = (VECTORS / "peter_enoch.note").read_bytes()
TEXT = SIGNED.decode().split("\n\n")[0] + "\n"


def test_keys_parse_and_round_trip() -> None:
    signer, verifier = SignerKey.parse(SKEY), VerifierKey.parse(VKEY)
    assert signer.verifier() == verifier
    assert verifier.encode() == VKEY and signer.encode() == SKEY
    assert f"{verifier.key_id:08x}" == "c74f20a3"


def test_signing_reproduces_the_go_vector_byte_for_byte() -> None:
    assert sign_note(TEXT, [SignerKey.parse(SKEY)]).encode() == SIGNED


def test_open_with_one_two_or_no_known_keys() -> None:
    peter, enoch = VerifierKey.parse(VKEY), VerifierKey.parse(ENOCH)
    one = open_note(TWO_SIGS, [peter])
    assert one.text == TEXT and [k for k, _ in one.verified] == [peter]
    both = open_note(TWO_SIGS, [peter, enoch])
    assert [k.name for k, _ in both.verified] == ["PeterNeumann", "EnochRoot"]
    with pytest.raises(VerificationError, match="no verifiable signatures"):
        open_note(TWO_SIGS, [])


def test_every_substring_and_byte_change_of_the_verifier_key_is_rejected() -> None:
    for i in range(len(VKEY) + 1):
        for j in range(i + 1, len(VKEY) + 1):
            if (i, j) != (0, len(VKEY)):
                with pytest.raises(InputError):
                    VerifierKey.parse(VKEY[i:j])
    for i in range(len(VKEY)):
        with pytest.raises(InputError):
            VerifierKey.parse(VKEY[:i] + chr(ord(VKEY[i]) + 1) + VKEY[i + 1 :])


def test_byte_changes_of_the_signer_key_are_rejected() -> None:
    for i in range(len(SKEY)):
        with pytest.raises(InputError):
            SignerKey.parse(SKEY[:i] + chr(ord(SKEY[i]) + 1) + SKEY[i + 1 :])


def test_go_malformed_notes_are_rejected() -> None:
    sig = SIGNED.decode().split("\n\n")[1]
    bad = [
        TEXT,
        TEXT + "\n",
        TEXT + "\n" + sig[:-1],
        "\x01" + TEXT + "\n" + sig,
        TEXT + "\n" + "— Bad Name " + sig.split(" ")[2],
        TEXT + "\n" + sig + "Unexpected line.\n",
        TEXT + "\n" + sig * 101,
    ]
    for msg in bad:
        with pytest.raises(InputError):
            Note.parse(msg.encode())
    with pytest.raises(InputError):
        Note.parse(b"\xff" + SIGNED)


def test_known_key_with_a_bad_signature_rejects_the_note() -> None:
    text, sig = SIGNED.decode().split("\n\n")
    tampered = (text + "\n\n" + sig[:60] + "ABCD" + sig[60:]).encode()
    with pytest.raises(VerificationError, match="invalid signature for key PeterNeumann"):
        open_note(tampered, [VerifierKey.parse(VKEY)])


def test_every_bit_flip_of_the_signed_note_is_rejected() -> None:
    key = VerifierKey.parse(VKEY)
    for bit in range(len(SIGNED) * 8):
        data = bytearray(SIGNED)
        data[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises((InputError, VerificationError)):
            open_note(bytes(data), [key])


def test_unknown_keys_are_ignored_even_with_a_colliding_name_or_id() -> None:
    peter = VerifierKey.parse(VKEY)
    other = SignerKey.generate("PeterNeumann")  # same name, different key ID
    note = Note.parse(SIGNED).with_signatures([other.sign(TEXT)])
    verified = open_note(note.encode(), [peter])
    assert len(note.signatures) == 2 and [k for k, _ in verified.verified] == [peter]


def test_blank_lines_in_the_text_and_several_signatures() -> None:
    a, b = SignerKey.generate("a.example/k"), SignerKey.generate("b.example/k")
    text = "first paragraph\n\nsecond\n\n\nthird\n"
    data = sign_note(text, [a, b]).encode()
    opened = open_note(data, [b.verifier()])
    assert opened.text == text and opened.signed_by(b.verifier())


def test_cosignature_keys_sign_the_timestamped_message() -> None:
    w = SignerKey.generate("w.example/1", ALG_COSIGNATURE_V1)
    text = "example.com/log\n5\n" + "A" * 43 + "=\n"
    sig = w.sign(text, 1679315147)
    assert sig.timestamp == 1679315147 and len(sig.signature) == 72
    assert w.verifier().verify(text, sig)
    # The type byte is part of the key ID, so the same key as plain Ed25519 is another key.
    plain = VerifierKey(w.name, 0x01, w.verifier().public_key)
    assert plain.key_id != w.verifier().key_id
    moved = type(sig)(sig.name, sig.key_id, (1679315148).to_bytes(8, "big") + sig.signature[8:])
    assert not w.verifier().verify(text, moved)
    assert not w.verifier().verify(text.replace("5", "6"), sig)


def test_key_names_and_text_rules() -> None:
    for name in ["", "a b", "a+b", "tab\there"]:
        with pytest.raises(InputError):
            SignerKey.generate(name)
    signer = SignerKey.generate("ok.example/k")
    with pytest.raises(InputError):
        sign_note("no final newline", [signer])
    with pytest.raises(InputError):
        sign_note("bell \x07\n", [signer])
