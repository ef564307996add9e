"""`inferproof chat MODEL "prompt"`: a verifiable answer from a local GGUF model, or with
``--node URL`` from a node through the verifying client (the answer streams as it comes;
the receipt, which comes last, is verified before the command succeeds)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ..client import ChatAnswer
from ..engine import LocalNode, receipt_digest
from ..errors import Error, InputError
from ..verify import CheckStatus
from ._common import err_console, handle_errors, is_tty, model_ref
from ._node import (
    ConfidentialOpt,
    NodeOpt,
    RelayOpt,
    TokenOpt,
    confidential_relay,
    node_client,
    print_confidential,
)


@handle_errors
def chat(
    model: Annotated[str, typer.Argument(help="sha256:DIGEST, NAME[:VERSION] or a .gguf file.")],
    prompt: Annotated[str, typer.Argument(help="The user message.")],
    system: Annotated[str | None, typer.Option("--system", help="A system message.")] = None,
    max_tokens: Annotated[
        int | None, typer.Option("--max-tokens", help="Cap on new tokens.", min=1)
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Sampling seed.", min=0)] = None,
    temperature: Annotated[
        float | None,
        typer.Option("--temperature", help="0 is greedy; default 1 (OpenAI's).", min=0.0),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Where to write the bundle.")
    ] = None,
    nonce: Annotated[str | None, typer.Option("--nonce", help="A verifier's nonce.")] = None,
    private: Annotated[
        bool, typer.Option("--private", help="Commit to salted digests of prompt and answer.")
    ] = False,
    node_url: NodeOpt = None,
    token: TokenOpt = None,
    policy: Annotated[
        Path | None, typer.Option("--policy", help="With --node: verify with this policy file.")
    ] = None,
    verified_stream: Annotated[
        bool,
        typer.Option(
            "--verified-stream",
            help="With --node: print the answer only once its receipt verified.",
        ),
    ] = False,
    confidential: ConfidentialOpt = False,
    relay: RelayOpt = None,
) -> None:
    """Ask a GGUF model, print the answer as it is generated, write a receipt bundle.

    Verify it with `inferproof verify BUNDLE --model FILE`: the request is re-run
    and must give the identical answer. With --node the node answers, and the
    client verifies the receipt (signature, nonce, request, log) before it exits 0:
    text printed before a failed check is not verified, and the command says so.
    With --confidential --relay URL the prompt and the streamed answer travel sealed
    to the node's attested key through the relay (docs/confidential.md).
    """
    relay = confidential_relay(node_url, confidential, relay)
    messages = [{"role": "system", "content": system}] if system is not None else []
    messages.append({"role": "user", "content": prompt})
    body: dict[str, Any] = {"messages": messages}
    for key, value in (("max_tokens", max_tokens), ("seed", seed), ("temperature", temperature)):
        if value is not None:
            body[key] = value
    ref = model_ref(model, ".gguf")
    if node_url is not None:
        answer = _ask_node(node_url, token, policy, ref, body, nonce, private, verified_stream,
                           relay)  # fmt: skip
        _save(answer, output)
        return
    if policy is not None or verified_stream:
        raise InputError("--policy and --verified-stream apply with --node URL only")
    with LocalNode() as node:
        if is_tty():
            with err_console.status("loading the model"):
                node.chat_model(ref)
        stream = node.chat_stream(ref, body, private=private, nonce=nonce)
        for event in stream:
            for choice in event.get("choices", []):
                sys.stdout.write(choice.get("delta", {}).get("content") or "")
            sys.stdout.flush()
        sys.stdout.write("\n")
        result = stream.result
        assert result is not None  # set once the stream is exhausted
        path = output or Path(f"chat-{receipt_digest(result.bundle)[7:19]}.bundle.json")
        result.bundle.write(path)
        if result.opening is not None:
            opening = path.with_name(path.name + ".opening")
            result.opening.save(opening)
            err_console.print(
                f"opening (keep it private) written to {opening}", style="dim", soft_wrap=True
            )
    usage = result.output
    err_console.print(
        f"{usage.completion_tokens} tokens, finish reason {usage.finish_reason}; "
        f"bundle written to {path}",
        style="dim",
        markup=False,
        soft_wrap=True,
    )


def _ask_node(
    url: str,
    token: str | None,
    policy: Path | None,
    ref: str | Path,
    body: dict[str, Any],
    nonce: str | None,
    private: bool,
    hold: bool,
    relay: str | None = None,
) -> ChatAnswer:
    """Stream the node's answer to stdout; return it once its receipt verified."""
    if not isinstance(ref, str):
        raise InputError(
            f"with --node, MODEL names a model on the node (NAME[:VERSION] or sha256:DIGEST), "
            f"not a file: push {ref} first (inferproof model push FILE --node URL)"
        )
    printed = False
    with node_client(url, token, policy, relay=relay) as client:
        stream = client.chat_stream(ref, body, nonce=nonce, private=private, verified_stream=hold)
        try:
            for delta in stream:
                sys.stdout.write(delta)
                sys.stdout.flush()
                printed = True
        except Error:
            if printed:
                sys.stdout.write("\n")
                sys.stdout.flush()
                err_console.print("warning: the answer above is NOT verified", markup=False)
            raise
        sys.stdout.write("\n")
        return stream.answer


def _save(answer: ChatAnswer, output: Path | None) -> None:
    """Write the bundle (and a private answer's opening); say what was verified."""
    path = output or Path(f"chat-{answer.receipt_digest[7:19]}.bundle.json")
    answer.bundle.write(path)
    if answer.opening is not None:
        opening = path.with_name(path.name + ".opening")
        answer.opening.save(opening)
        err_console.print(
            f"opening (keep it private) written to {opening}", style="dim", soft_wrap=True
        )
    where = f", log index {answer.log_index}" if answer.log_index is not None else ""
    err_console.print(
        f"receipt {answer.receipt_digest}{where}, nonce {answer.nonce}; bundle written to {path}",
        markup=False,
        soft_wrap=True,
    )
    print_confidential(answer.report)
    checks = answer.report.checks if answer.report is not None else ()
    done = [c.name for c in checks if c.status is CheckStatus.PASSED]
    skipped = [c.name for c in checks if c.status is CheckStatus.NOT_CHECKED]
    err_console.print(
        f"verified: {len(done)} checks passed ({', '.join(done)}); "
        f"{len(skipped)} not checked ({', '.join(skipped) or 'none'})",
        markup=False,
        soft_wrap=True,
    )
