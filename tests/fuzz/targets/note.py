"""C2SP signed notes, checkpoints and note keys (c2sp.org/signed-note, tlog-checkpoint,
tlog-cosignature): parse, open against the real log key and witness, parse keys.

Seeds: the checkpoints of the real log proofs, one of them cosigned by the
material's witness, and the log's and the witness's key strings.
"""

from __future__ import annotations

from inferproof.log import (
    Checkpoint,
    Note,
    SignerKey,
    TlogProof,
    VerifierKey,
    open_checkpoint,
    open_note,
)

from .._harness import Target, parse
from .._material import WITNESS, WITNESS_TIME, Material
from .tlog_proof import text_of

TOKENS = (b"\n\n", b"\xe2\x80\x94 ", b"+", b"PRIVATE+KEY+", b"\x01", b"\x04", b"\n")


def _checkpoints(m: Material) -> list[bytes]:
    notes = [TlogProof.parse(entry).checkpoint for entry in m.tlog_entries()]
    first = Note.parse(notes[0])
    cosigned = first.with_signatures([WITNESS.sign(first.text, WITNESS_TIME)])
    return [*notes, cosigned.encode()]


def target(m: Material) -> Target:
    log_key, witness = m.log_key, WITNESS.verifier()

    def run(data: bytes) -> None:
        note = parse(Note.parse, data)
        if note is not None:
            parse(Checkpoint.parse, note.text)
            parse(open_note, data, [log_key, witness])
            parse(open_checkpoint, data, log_key, [witness])
        text = text_of(data)
        parse(VerifierKey.parse, text)
        parse(SignerKey.parse, text)

    def accepts(data: bytes) -> bool:
        text = data.decode()
        return any(
            parse(*call) is not None
            for call in (
                (open_checkpoint, data, log_key, [witness]),
                (VerifierKey.parse, text),
                (SignerKey.parse, text),
            )
        )

    keys = [str(log_key).encode(), str(witness).encode(), WITNESS.encode().encode()]
    return Target("note", run, (*_checkpoints(m), *keys), TOKENS, accepts)
