"""Checks of chat receipts: output and request digests, re-execution, relay.

A chat receipt (``parameters.task`` is ``chat`` or ``completion``) commits to a
canonical request and an output object instead of tensors, so three of the
verifier's checks take a chat form here:

- ``output.digest``: the bundle's output (or the opening's, for a private
  request) hashes to the signed subject, and agrees with the signed usage;
- ``input``: the canonical request hashes to (or opens) the receipt's input and
  names the receipt's model;
- ``output.reexecution``: the GGUF model, loaded with the receipt's recorded
  llama.cpp settings, re-run on the request gives the identical text. On a
  mismatch the first differing token is named. For a relayed receipt this is
  ``output.relay`` instead: the node says it did not compute the output, and the
  policy decides whether that is acceptable.
- ``output.fingerprint``: one batched prefill of prompt + answer on the
  verifier's own machine and settings, compared with the logits the node
  committed to (``llm_fingerprint.py``). The policy picks which of the two runs.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._checks import Check, CheckStatus, failed, not_checked, passed
from ..errors import InputError
from ..receipts import Bundle, Receipt
from ..runtime import (
    TASKS,
    ChatOpening,
    ChatOutput,
    ChatRequest,
    LlamaModel,
    LlamaSettings,
    output_opens,
)
from ._request import canonical_request, model_mismatch, render_prompt
from .llm_fingerprint import CHECK as FP_CHECK
from .llm_fingerprint import Tolerance, fingerprint_check

CHECK = "output.reexecution"
RELAY_CHECK = "output.relay"


def is_chat_receipt(receipt: Receipt) -> bool:
    """True for receipts made by the chat flow (they need :func:`chat_checks`)."""
    return receipt.parameters.get("task") in TASKS


def is_relayed(receipt: Receipt) -> bool:
    return any(p.get("type") == "relay" for p in receipt.proofs)


@dataclass(frozen=True)
class ChatMaterial:
    """The request and output a verifier can use, once checked against the receipt."""

    request: ChatRequest | None
    output: ChatOutput | None


def output_check(bundle: Bundle, opening: ChatOpening | None) -> tuple[ChatOutput | None, Check]:
    """``output.digest`` for a chat receipt."""
    name, r = "output.digest", bundle.receipt
    try:
        if r.input_commitment is None:
            output = ChatOutput.from_json(bundle.outputs)
            if output.digest != r.output_digest:
                return None, failed(
                    name,
                    f"the answer hashes to {output.digest}, the signed receipt says "
                    f"{r.output_digest}",
                )
            source = "the answer (text, finish reason, token counts) matches the signed subject"
        else:
            if opening is None:
                why = "private request: the answer is a salted commitment; give the opening"
                return None, not_checked(name, why)
            output = opening.output
            if not output_opens(r.output_digest, output.digest, opening.salt):
                return None, failed(name, "the opening's answer does not open the signed subject")
            source = "the opening's answer opens the signed subject's salted commitment"
    except InputError as exc:
        return None, failed(name, str(exc))
    signed = r.parameters
    usage = output.to_json()["usage"]
    if signed.get("usage") != usage or signed.get("finish_reason") != output.finish_reason:
        return None, failed(
            name, "the answer's token counts or finish reason differ from the signed"
        )
    return output, passed(name, f"{source} ({output.completion_tokens} tokens)")


def input_check(
    bundle: Bundle, opening: ChatOpening | None, required: bool
) -> tuple[ChatRequest | None, Check]:
    """``input`` for a chat receipt: the canonical request against the receipt."""
    name, r = "input", bundle.receipt
    found = canonical_request(bundle, opening, required, ChatRequest.from_json)
    if isinstance(found, Check):
        return None, found
    request, source = found
    if request.task != r.parameters.get("task"):
        return None, failed(name, "the request's task is not the one the receipt states")
    return request, passed(name, source)


def relay_check(receipt: Receipt, accept: bool, hardware_attested: bool = False) -> Check:
    """``output.relay``: what a relayed receipt claims, and whether the policy accepts it.

    ``hardware_attested`` is the verifier's own finding (its environment check
    passed on hardware evidence), never the receipt's ``hardware_backed`` flag, which
    the node writes about itself (review finding 11.8)."""
    proof = next((p for p in receipt.proofs if p.get("type") == "relay"), {})
    claim = str(proof.get("claim") or f"relayed from {proof.get('upstream')}")
    if not accept:
        return failed(RELAY_CHECK, f"{claim}; the policy does not accept relayed receipts")
    if hardware_attested:
        return passed(
            RELAY_CHECK,
            f"{claim}; accepted by the policy, on a hardware-attested node (see environment)",
        )
    return not_checked(
        RELAY_CHECK,
        f"{claim}; accepted by the policy, but the node is not hardware-attested, so the "
        "relay rests on the node's word alone",
    )


def reexecution_check(
    receipt: Receipt,
    request: ChatRequest | None,
    output: ChatOutput | None,
    model: bytes | Path | None,
    required: bool,
) -> Check:
    """Re-run the request on the model with the recorded settings; require the same answer."""
    if model is None:
        return _absent(required, "model file not available (give --model or push it to the hub)")
    if request is None or output is None:
        return _absent(required, "request or answer not available (private: give the opening)")
    if (wrong := model_mismatch(receipt, model)) is not None:
        return failed(CHECK, wrong)
    try:
        settings = LlamaSettings.from_json(receipt.runtime.get("settings"))
        llm = LlamaModel(model, settings, max_ctx=settings.n_ctx)
    except InputError as exc:
        return failed(CHECK, f"cannot load the model with the recorded settings: {exc}")
    try:
        return _compare(llm, receipt, request, output)
    except InputError as exc:
        return failed(CHECK, f"cannot re-execute the request: {exc}")
    finally:
        llm.close()


def _compare(llm: LlamaModel, receipt: Receipt, request: ChatRequest, output: ChatOutput) -> Check:
    prompt = render_prompt(llm, request, output.prompt_tokens)
    if isinstance(prompt, str):
        return failed(CHECK, prompt)
    gen = llm.generate(request, prompt)
    if gen.text == output.text:
        if gen.completion_tokens != output.completion_tokens:
            return failed(
                CHECK,
                f"re-executed: identical text but {gen.completion_tokens} tokens, the "
                f"receipt says {output.completion_tokens}",
            )
        if gen.finish_reason != output.finish_reason:
            return failed(
                CHECK,
                f"re-executed: identical text but finish reason {gen.finish_reason!r}, the "
                f"receipt says {output.finish_reason!r}",
            )
        return passed(CHECK, f"re-executed: identical ({gen.completion_tokens} tokens)")
    return failed(
        CHECK,
        _first_difference(llm, gen.token_ids, output.text)
        + where_it_ran(receipt, llm.runtime_info()),
    )


def _first_difference(llm: LlamaModel, tokens: tuple[int, ...], claimed: str) -> str:
    """Name the first re-executed token whose text leaves the claimed answer."""
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    text = ""
    for pos, token in enumerate(tokens):
        before = len(text)
        text += decoder.decode(llm.token_bytes(token))
        if not claimed.startswith(text):
            expected = _expected_token(llm, claimed[before:])
            return (
                f"re-executed: first differing token at position {pos} "
                f"(expected {expected}, got {llm.token_text(token)!r})"
            )
    text += decoder.decode(b"", final=True)
    if claimed.startswith(text) and len(claimed) > len(text):
        return (
            f"re-executed: first differing token at position {len(tokens)} "
            f"(expected {_expected_token(llm, claimed[len(text) :])}, got the end of the answer)"
        )
    return "re-executed: the answer differs from the receipt's in its last characters"


def _expected_token(llm: LlamaModel, rest: str) -> str:
    if not rest:
        return "the end of the answer"
    tokens = llm.tokenize(rest)
    return repr(llm.token_text(tokens[0])) if tokens else repr(rest[:16])


def where_it_ran(receipt: Receipt, here: dict[str, Any]) -> str:
    """Both sides' llama.cpp build and CPU, for a re-execution that differs (``here`` is
    the verifier's runtime block)."""
    node = receipt.runtime
    if all(node.get(k) == here.get(k) for k in ("version", "llama_cpp", "cpu_features", "machine")):
        return " (same llama.cpp build and CPU features as the node)"
    return (
        f" (node ran llama-cpp-python {node.get('version')} / llama.cpp {node.get('llama_cpp')} "
        f"on {node.get('machine')} [{node.get('cpu_features')}]; here "
        f"{here['version']} / {here['llama_cpp']} on {here['machine']} [{here['cpu_features']}])"
    )


def _absent(required: bool, why: str, name: str = CHECK) -> Check:
    if required:
        return failed(name, f"required by the policy, but {why}")
    return not_checked(name, why)


MODES = ("exact", "fingerprint", "either")


def chat_checks(
    bundle: Bundle,
    *,
    model: bytes | Path | None = None,
    opening: ChatOpening | None = None,
    require_input: bool = False,
    require_reexecution: bool = False,
    accept_relayed: bool = False,
    hardware_attested: bool = False,
    mode: str = "either",
    tolerance: Tolerance | None = None,
) -> list[Check]:
    """The chat forms of ``output.digest``, ``input``, ``output.reexecution`` (exact
    regeneration; ``output.relay`` for a relayed receipt) and ``output.fingerprint``
    (one prefill, tolerant of other hardware), in that order.

    ``mode`` picks the answer check: ``"exact"`` regenerates, ``"fingerprint"``
    prefills, ``"either"`` prefills when the receipt commits to a fingerprint and
    regenerates otherwise; the check not run is listed as not checked, with why.
    ``hardware_attested`` says whether the caller's environment check passed on
    hardware evidence.

    Example::

        checks = chat_checks(bundle, model=Path("model.gguf"))
        assert checks[-1].detail.startswith("prefill of")
    """
    if mode not in MODES:
        raise InputError(f"re-execution mode must be one of {MODES}")
    r = bundle.receipt
    output, out_check = output_check(bundle, opening)
    request, in_check = input_check(bundle, opening, require_input)
    if is_relayed(r):
        relay = relay_check(r, accept_relayed, hardware_attested)
        return [out_check, in_check, relay, not_checked(FP_CHECK, "relayed: not computed here")]
    has_fp = any(p.get("type") == "fingerprint" for p in r.proofs)
    use_fp = mode == "fingerprint" or (mode == "either" and has_fp)
    if (broken := failed_material(out_check, in_check)) is not None:
        absent = _absent(require_reexecution, broken, FP_CHECK if use_fp else CHECK)
        skipped = not_checked(CHECK if use_fp else FP_CHECK, broken)
        pair = [skipped, absent] if use_fp else [absent, skipped]
        return [out_check, in_check, *pair]
    if use_fp:
        why = "not run: the fingerprint check covers this receipt (--exact regenerates)"
        exact = not_checked(
            CHECK, why if has_fp else "not run: the policy asks for the fingerprint"
        )
        fp = _fingerprint(bundle, request, output, model, opening, require_reexecution, tolerance)
        return [out_check, in_check, exact, fp]
    why = "not run: exact regeneration asked for" if has_fp else "the receipt has no fingerprint"
    exact = reexecution_check(r, request, output, model, require_reexecution)
    return [out_check, in_check, exact, not_checked(FP_CHECK, why)]


def _fingerprint(
    bundle: Bundle,
    request: ChatRequest | None,
    output: ChatOutput | None,
    model: bytes | Path | None,
    opening: ChatOpening | None,
    required: bool,
    tolerance: Tolerance | None,
) -> Check:
    if model is None:
        why = "model file not available (give --model or push it to the hub)"
        return _absent(required, why, FP_CHECK)
    if request is None or output is None:
        why = "request or answer not available (private: give the opening)"
        return _absent(required, why, FP_CHECK)
    return fingerprint_check(
        bundle.receipt,
        bundle.proofs.get("fingerprint"),
        request,
        output,
        model,
        opening=opening,
        tolerance=tolerance,
        required=required,
    )


def failed_material(out_check: Check, in_check: Check) -> str | None:
    """Why there is nothing to re-run when the answer or the request failed its own
    check (rather than "not available", which would send a verifier looking for an
    opening the receipt does not need)."""
    bad = [c.name for c in (out_check, in_check) if c.status is CheckStatus.FAILED]
    return f"not re-executed: {' and '.join(bad)} failed" if bad else None
