"""``output.fingerprint``: honest answers pass, dishonest ones fail with the right reason.

The dishonest node here is the strongest one: it signs with its real key and, where
it can, recomputes a fingerprint that matches the answer it claims (one prefill of
the claimed tokens), so only the verifier's own prefill and sampler replay stand
between it and a VERIFIED receipt. Real models throughout: the tiny random GGUF for
the format and the flow, SmolLM2-135M Q4_1 for the numerics.
"""

from __future__ import annotations

import base64
import copy
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from inferproof import LocalNode
from inferproof._checks import CheckStatus
from inferproof.engine._chatreceipt import ChatIssue, sign_chat
from inferproof.errors import InputError
from inferproof.proofs import chat_checks
from inferproof.proofs._llm_sampling import uniform_draws
from inferproof.proofs.llm_fingerprint import Tolerance, compare
from inferproof.receipts import Bundle
from inferproof.runtime import ChatOutput, Fingerprint, LlamaModel, LlamaSettings
from inferproof.runtime._llm_fingerprint import MAX_POSITIONS, Recorder
from inferproof.testing import SMOLLM2_SYSTEM, requantise_gguf, smollm2_gguf

from .conftest import ask

FP = "output.fingerprint"


def _checks(bundle: Bundle, model, **kw) -> dict[str, tuple[CheckStatus, str]]:
    return {c.name: (c.status, c.detail) for c in chat_checks(bundle, model=model, **kw)}


def _reload(bundle: Bundle) -> Bundle:
    return Bundle.from_json(copy.deepcopy(bundle.to_json()))


def _forge(llm: LlamaModel, request, tokens) -> Fingerprint:
    """What a dishonest node that prefills its claimed tokens would commit to."""
    _, prompt = llm.prepare(request, enforce_cap=False)
    rec = Recorder()
    llm.prefill(prompt.tokens, tokens, lambda i, row: rec.add(tokens[i], row))
    fp = rec.result()
    assert fp is not None
    return fp


def _sign(
    node, result, request, output: ChatOutput, fp: Fingerprint | None, runtime=None
) -> Bundle:
    """The node signs (and logs) ``output`` for ``request`` with fingerprint ``fp``."""
    r = result.bundle.receipt
    block = {k: v for k, v in r.model.items() if k not in ("signature", "publisher")}
    proofs = [p for p in r.proofs if p["type"] not in ("signature", "fingerprint")]
    issue = ChatIssue(None, block, runtime or r.runtime, proofs, "vanilla", r.started, r.finished)
    bundle, _ = sign_chat(
        node.issuer, node.hub, issue, request, output, private=False, nonce=None, fingerprint=fp
    )
    return bundle


def _output_of(llm: LlamaModel, request, tokens) -> ChatOutput:
    _, prompt = llm.prepare(request, enforce_cap=False)
    gen = llm.replay(request, prompt, tokens)
    return ChatOutput(gen.text, gen.finish_reason, len(prompt.tokens), gen.completion_tokens)


# -- the format ---------------------------------------------------------------------


def test_fingerprint_round_trips_and_costs_256_bytes_per_32_tokens(chat_node) -> None:
    result = chat_node.chat("tiny", ask(max_tokens=40))
    obj = result.bundle.proofs["fingerprint"]
    fp = Fingerprint.from_json(obj)
    assert fp.to_json() == obj and len(fp.tokens) == 40
    assert [len(base64.b64decode(c)) for c in obj["values"]] == [256, 64]
    entry = next(p for p in result.bundle.receipt.proofs if p["type"] == "fingerprint")
    assert entry == {
        "type": "fingerprint",
        "scheme": "inferproof.llm-fingerprint.v1",
        "digest": fp.digest,
        "positions": 40,
    }


def _edit(obj: dict, key: str, value) -> dict:
    out = copy.deepcopy(obj)
    out[key] = value
    return out


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda o: _edit(o, "scheme", "other"), "scheme must be"),
        (lambda o: _edit(o, "k", 8), "must have k=4"),
        (lambda o: _edit(o, "extra", 1), "must have exactly"),
        (lambda o: _edit(o, "tokens", o["tokens"].rstrip("=") + "A"), "base64"),
        (lambda o: _edit(o, "tokens", base64.b64encode(b"\0" * 6).decode()), "uint32"),
        (lambda o: _edit(o, "values", o["values"][:1]), "chunks of 32"),
        (lambda o: _edit(o, "values", [o["values"][0], o["values"][0]]), "chunk 1 must be"),
        (
            lambda o: _edit(
                o, "tokens", base64.b64encode(b"\0" * 4 * (MAX_POSITIONS + 1)).decode()
            ),
            "1 to 65536",
        ),
    ],
)
def test_malformed_fingerprints_are_refused(chat_node, edit, message: str) -> None:
    obj = chat_node.chat("tiny", ask(max_tokens=40)).bundle.proofs["fingerprint"]
    with pytest.raises(InputError, match=message):
        Fingerprint.from_json(edit(obj))


@pytest.mark.parametrize("part", ["tokens", "values"])
def test_every_bit_flip_of_the_carried_fingerprint_fails(chat_node, gguf_path, part) -> None:
    result = chat_node.chat("tiny", ask(max_tokens=6))
    obj = result.bundle.to_json()
    field = obj["proofs"]["fingerprint"]
    raw = bytearray(base64.b64decode(field[part] if part == "tokens" else field[part][0]))
    for bit in range(0, len(raw) * 8, 7):
        flipped = bytearray(raw)
        flipped[bit // 8] ^= 1 << (bit % 8)
        bad = copy.deepcopy(obj)
        text = base64.b64encode(bytes(flipped)).decode()
        if part == "tokens":
            bad["proofs"]["fingerprint"]["tokens"] = text
        else:
            bad["proofs"]["fingerprint"]["values"][0] = text
        status, detail = _checks(Bundle.from_json(bad), gguf_path)[FP]
        assert status is CheckStatus.FAILED and "the signed receipt says" in detail, bit


def test_a_receipt_without_a_fingerprint(chat_node, gguf_path) -> None:
    result = chat_node.chat("tiny", ask(max_tokens=6))
    obj = result.bundle.to_json()
    # Drop the proof entry from the receipt: a bundle without a committed fingerprint.
    bundle = _sign(chat_node, result, result.request, result.output, None)
    obj2 = bundle.to_json()
    obj2["proofs"] = obj["proofs"]
    either = _checks(Bundle.from_json(obj2), gguf_path)
    assert either[FP] == (CheckStatus.NOT_CHECKED, "the receipt has no fingerprint")
    assert either["output.reexecution"][0] is CheckStatus.PASSED
    status, detail = _checks(Bundle.from_json(obj2), gguf_path, mode="fingerprint")[FP]
    assert status is CheckStatus.NOT_CHECKED and "commits to no fingerprint" in detail
    status, detail = _checks(
        Bundle.from_json(obj2), gguf_path, mode="fingerprint", require_reexecution=True
    )[FP]
    assert status is CheckStatus.FAILED and detail.startswith("required by the policy")


# -- honest answers on the tiny model -----------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {"temperature": 0},
        {"temperature": 0.9, "seed": 11},
        {"temperature": 0.8, "seed": 3, "top_k": 5, "top_p": 0.9, "min_p": 0.05},
        {"temperature": 0.7, "seed": 4, "frequency_penalty": 0.5, "presence_penalty": 0.3},
    ],
)
def test_honest_answers_verify_bit_identically(chat_node, gguf_path, params) -> None:
    result = chat_node.chat("tiny", ask(max_tokens=24, **params))
    checks = _checks(_reload(result.bundle), gguf_path)
    status, detail = checks[FP]
    assert status is CheckStatus.PASSED, detail
    out = result.output
    n = out.completion_tokens + (out.finish_reason == "stop")  # the stop token too
    # The tiny model's F32 kernels sum one row as a batch would: bit-identical even
    # with one-row decoding (SmolLM2's quantised ones do not, see below).
    assert detail.startswith(f"bit-identical: prefill of {n} positions")
    assert f"{n} of {n} exact" in detail and "same build as the node" not in detail
    assert checks["output.reexecution"][0] is CheckStatus.NOT_CHECKED
    exact = _checks(result.bundle, gguf_path, mode="exact")
    assert exact["output.reexecution"][0] is CheckStatus.PASSED
    assert exact[FP] == (CheckStatus.NOT_CHECKED, "not run: exact regeneration asked for")


def test_a_paired_node_on_this_build_gets_the_same_build_bounds(home, gguf_path) -> None:
    from inferproof.engine import ChatConfig

    with LocalNode(home, chat=ChatConfig(settings=LlamaSettings(decode="paired"))) as node:
        node.push(gguf_path, name="tiny")
        result = node.chat("tiny", ask(max_tokens=16, temperature=0.7, seed=2))
    assert result.bundle.receipt.runtime["settings"]["decode"] == "paired"
    status, detail = _checks(result.bundle, gguf_path)[FP]
    assert status is CheckStatus.PASSED and "(tolerance 0.05 / 0.02, same build" in detail
    # Exact regeneration decodes in pairs too, as recorded.
    assert _checks(result.bundle, gguf_path, mode="exact")["output.reexecution"][0] is (
        CheckStatus.PASSED
    )


def test_an_unknown_decode_mode_is_refused() -> None:
    with pytest.raises(InputError, match="decode must be one of"):
        LlamaSettings(decode="triple")
    good = LlamaSettings(n_ctx=512, n_threads=1, n_threads_batch=1).to_json()
    with pytest.raises(InputError, match="decode must be one of"):
        LlamaSettings.from_json({**good, "decode": "triple"})
    old = {k: v for k, v in good.items() if k != "decode"}
    assert LlamaSettings.from_json(old).decode == "single"  # receipts before fingerprints


def test_the_draws_are_those_of_std_mt19937() -> None:
    # std::mt19937 with the default seed 5489: its 10000th output is 4123659995 (C++
    # [rand.predef]); generate_canonical takes two outputs per double.
    u = uniform_draws(5489, 5000)
    raw = np.random.RandomState(5489)._bit_generator.random_raw(10000)
    assert int(raw[-1]) == 4123659995
    assert u[-1] == (float(raw[-2]) + float(raw[-1]) * 2.0**32) / 2.0**64
    assert ((u >= 0) & (u < 1)).all()


def test_a_wrong_seed_claimed_fails(chat_node, gguf_path, llm) -> None:
    result = chat_node.chat("tiny", ask(max_tokens=24, temperature=1.0, seed=7))
    fp = Fingerprint.from_json(result.bundle.proofs["fingerprint"])
    claimed = replace(result.request, sampling=replace(result.request.sampling, seed=8))
    bundle = _sign(chat_node, result, claimed, result.output, fp)
    status, detail = _checks(bundle, gguf_path)[FP]
    assert status is CheckStatus.FAILED and "not the token the seeded draw picks" in detail


def test_tokens_must_spell_the_signed_answer(chat_node, gguf_path, llm) -> None:
    result = chat_node.chat("tiny", ask(max_tokens=12))
    fp = Fingerprint.from_json(result.bundle.proofs["fingerprint"])
    other = replace(result.output, text=result.output.text + "!")
    status, detail = _checks(_sign(chat_node, result, result.request, other, fp), gguf_path)[FP]
    assert status is CheckStatus.FAILED
    assert detail.startswith("the fingerprint's tokens spell a different answer")


def test_tokens_after_the_end_of_the_answer_fail(chat_node, gguf_path, llm) -> None:
    result = chat_node.chat("tiny", ask(max_tokens=12))
    tokens = list(Fingerprint.from_json(result.bundle.proofs["fingerprint"]).tokens)
    forged = _forge(llm, result.request, [*tokens, tokens[0]])
    bundle = _sign(chat_node, result, result.request, result.output, forged)
    status, detail = _checks(bundle, gguf_path)[FP]
    assert status is CheckStatus.FAILED and "1 more token(s) follow" in detail


def test_private_fingerprint_is_in_the_opening_and_committed(chat_node, gguf_path) -> None:
    result = chat_node.chat("tiny", ask(max_tokens=10), private=True)
    assert result.opening is not None and "fingerprint" not in result.bundle.proofs
    entry = next(p for p in result.bundle.receipt.proofs if p["type"] == "fingerprint")
    assert set(entry) == {"type", "scheme", "commitment", "positions"}
    ok = _checks(result.bundle, gguf_path, opening=result.opening)
    assert ok[FP][0] is CheckStatus.PASSED
    assert _checks(result.bundle, gguf_path)[FP][0] is CheckStatus.NOT_CHECKED
    fp = dict(result.opening.fingerprint or {})
    raw = bytearray(base64.b64decode(fp["values"][0]))
    raw[0] ^= 1
    fp["values"] = [base64.b64encode(bytes(raw)).decode()]
    bad = replace(result.opening, fingerprint=fp)
    status, detail = _checks(result.bundle, gguf_path, opening=bad)[FP]
    assert status is CheckStatus.FAILED and "does not open the receipt's commitment" in detail


# -- SmolLM2-135M Q4_1: the numerics --------------------------------------------------

QUESTIONS = ["Write a short story about a robot who learns to paint.", "Why is the sky blue?"]


@pytest.fixture(scope="module")
def smol(tmp_path_factory: pytest.TempPathFactory):
    node = LocalNode(tmp_path_factory.mktemp("fp-home"))
    node.push(smollm2_gguf(), name="smollm2")
    yield node
    node.close()


@pytest.fixture(scope="module")
def smol_llm():
    model = LlamaModel(smollm2_gguf(), LlamaSettings(n_batch=7, n_ubatch=7, n_threads=1))
    yield model
    model.close()


@pytest.fixture(scope="module")
def paired_llm():
    """A node's model decoding in pairs (runtime/_llm_decode.py)."""
    model = LlamaModel(smollm2_gguf(), LlamaSettings(decode="paired"))
    yield model
    model.close()


def _smol_body(question: str, **params) -> dict:
    body = {
        "messages": [
            {"role": "system", "content": SMOLLM2_SYSTEM},
            {"role": "user", "content": question},
        ],
        "temperature": 0,
        "max_tokens": 64,
    }
    body.update(params)
    return body


@pytest.fixture(scope="module")
def greedy(smol):
    return smol.chat("smollm2", _smol_body(QUESTIONS[0]))


def _compare(verifier: LlamaModel, request, fp: Fingerprint):
    _, prompt = verifier.prepare(request, enforce_cap=False)
    return compare(verifier, request, prompt.tokens, fp, Tolerance().tie)


def test_smollm2_paired_decoding_matches_any_batch_and_threads(
    greedy, smol_llm, paired_llm
) -> None:
    # The node decodes in pairs; the verifier prefills in chunks of 7 on one thread.
    # Same build: the logits agree to the fixed point's rounding.
    gen = paired_llm.generate(*paired_llm.prepare(greedy.request, enforce_cap=False))
    assert gen.fingerprint is not None
    found = _compare(smol_llm, greedy.request, gen.fingerprint)
    assert found.identical and found.picks_ok == found.positions == len(gen.fingerprint.tokens)
    assert found.verdict(Tolerance(), same_build=True) is None


def test_smollm2_single_row_decoding_differs_within_tolerance(greedy, smol_llm) -> None:
    # One-row decoding (the default) uses other kernels than the prefill: measurably
    # different logits, inside the general bounds, outside the same-build ones.
    found = _compare(
        smol_llm, greedy.request, Fingerprint.from_json(greedy.bundle.proofs["fingerprint"])
    )
    assert not found.identical and 0.05 < found.max_abs.max() < Tolerance().max_abs
    assert found.verdict(Tolerance()) is None
    assert found.verdict(Tolerance(), same_build=True) is not None


def test_smollm2_greedy_and_sampled_answers_verify(smol, greedy) -> None:
    sampled = smol.chat("smollm2", _smol_body(QUESTIONS[1], temperature=1.0, seed=21))
    for result in (greedy, sampled):
        status, detail = _checks(result.bundle, smollm2_gguf())[FP]
        assert status is CheckStatus.PASSED and detail.startswith("within tolerance"), detail


def test_smollm2_one_changed_token_fails_at_its_position(smol, greedy, smol_llm) -> None:
    tokens = list(Fingerprint.from_json(greedy.bundle.proofs["fingerprint"]).tokens)
    k = 20
    tokens[k] = smol_llm.tokenize(" banana")[0]
    forged = _forge(smol_llm, greedy.request, tokens)
    output = _output_of(smol_llm, greedy.request, tokens)
    status, detail = _checks(_sign(smol, greedy, greedy.request, output, forged), smollm2_gguf())[
        FP
    ]
    assert status is CheckStatus.FAILED
    assert detail.startswith(f"position {k}: token {tokens[k]} is not the argmax")
    # The same edit keeping the node's honest fingerprint fails on the logits after it.
    honest = Fingerprint.from_json(greedy.bundle.proofs["fingerprint"])
    kept = Fingerprint(tuple(tokens), honest.raw)
    status, detail = _checks(_sign(smol, greedy, greedy.request, output, kept), smollm2_gguf())[FP]
    assert status is CheckStatus.FAILED, detail
    # The logits after the edit moved: the first position over the bound, or the
    # answer's mean, gives it away (the edited token itself was predicted before it).
    if detail.startswith("first disagreeing position"):
        assert int(detail.split()[3].rstrip(":")) > k, detail
    else:
        assert "on average" in detail, detail


def test_smollm2_truncated_answer_fails(smol, greedy, smol_llm) -> None:
    tokens = list(Fingerprint.from_json(greedy.bundle.proofs["fingerprint"]).tokens)
    eos = smol_llm._llm.token_eos()
    cut = [*tokens[:30], eos]
    forged = _forge(smol_llm, greedy.request, cut)
    output = _output_of(smol_llm, greedy.request, cut)
    assert output.finish_reason == "stop" and output.completion_tokens == 30
    status, detail = _checks(_sign(smol, greedy, greedy.request, output, forged), smollm2_gguf())[
        FP
    ]
    assert status is CheckStatus.FAILED and detail.startswith(f"position 30: token {eos}")


def test_smollm2_greedy_claimed_but_sampled_fails(smol, smol_llm) -> None:
    sampled = smol.chat("smollm2", _smol_body(QUESTIONS[0], temperature=1.0, seed=5))
    fp = Fingerprint.from_json(sampled.bundle.proofs["fingerprint"])
    claimed = replace(sampled.request, sampling=replace(sampled.request.sampling, temperature=0.0))
    bundle = _sign(smol, sampled, claimed, sampled.output, fp)
    status, detail = _checks(bundle, smollm2_gguf())[FP]
    assert status is CheckStatus.FAILED and "is not the argmax" in detail


def test_smollm2_changed_system_prompt_fails(smol, greedy) -> None:
    other = smol.chat(
        "smollm2",
        _smol_body(QUESTIONS[0])
        | {
            "messages": [
                {"role": "system", "content": "You are a pirate. Answer like a pirate."},
                {"role": "user", "content": QUESTIONS[0]},
            ]
        },
    )
    fp = Fingerprint.from_json(other.bundle.proofs["fingerprint"])
    output = replace(other.output, prompt_tokens=greedy.output.prompt_tokens)
    bundle = _sign(smol, greedy, greedy.request, output, fp)
    status, detail = _checks(bundle, smollm2_gguf())[FP]
    assert status is CheckStatus.FAILED, detail
    assert detail.startswith("first disagreeing position") or "on average" in detail, detail


def test_smollm2_q8_0_is_caught_on_the_same_build_when_paired(
    smol, greedy, paired_llm, tmp_path: Path
) -> None:
    # Q4_1 -> Q8_0 keeps every weight within 1/254 of its block's range: numerically
    # the same model, as close as another CPU's kernels (docs/llm.md). Only a paired
    # node on the verifier's build, whose logits must match exactly, gives it away.
    q8 = LlamaModel(_requantise(tmp_path, "Q8_0"), LlamaSettings(decode="paired"))
    try:
        gen = q8.generate(*q8.prepare(greedy.request, enforce_cap=False))
        runtime = q8.runtime_info()
    finally:
        q8.close()
    assert gen.fingerprint is not None
    output = ChatOutput(gen.text, gen.finish_reason, gen.prompt_tokens, gen.completion_tokens)
    bundle = _sign(smol, greedy, greedy.request, output, gen.fingerprint, runtime=runtime)
    status, detail = _checks(bundle, smollm2_gguf())[FP]
    assert status is CheckStatus.FAILED and "same build as the node" in detail, detail


def _requantise(tmp_path: Path, ftype: str) -> Path:
    return requantise_gguf(smollm2_gguf(), tmp_path / f"{ftype}.gguf", ftype)


def test_smollm2_requantised_model_fails(smol, greedy, tmp_path: Path) -> None:
    # The node runs a Q4_0 re-quantisation of the Q4_1 file (llama.cpp's own quantize)
    # and signs its answer under the Q4_1 digest.
    q4_0 = _requantise(tmp_path, "Q4_0")
    cheap = LlamaModel(q4_0)
    try:
        request = greedy.request
        _, prompt = cheap.prepare(request, enforce_cap=False)
        gen = cheap.generate(request, prompt)
    finally:
        cheap.close()
    assert gen.fingerprint is not None
    output = ChatOutput(gen.text, gen.finish_reason, gen.prompt_tokens, gen.completion_tokens)
    bundle = _sign(smol, greedy, request, output, gen.fingerprint)
    status, detail = _checks(bundle, smollm2_gguf())[FP]
    assert status is CheckStatus.FAILED and "differ" in detail, detail


def test_an_answer_without_max_tokens_prefills_in_a_small_context(chat_node, gguf_path) -> None:
    # max_tokens defaults to the rest of the node's context; the verifier's prefill
    # needs room for prompt + answer only (the README's chat walk-through).
    body = ask(max_tokens=8)
    del body["max_tokens"]
    result = chat_node.chat("tiny", body)
    assert result.request.max_tokens is not None and result.request.max_tokens > 256
    status, detail = _checks(result.bundle, gguf_path)[FP]
    assert status is CheckStatus.PASSED, detail


def test_requantise_refuses_an_unknown_file_type(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no file type 'Q9_9'"):
        requantise_gguf(smollm2_gguf(), tmp_path / "x.gguf", "Q9_9")
