"""`inferproof chat MODEL "prompt"`: a verifiable answer from a local GGUF model."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ..engine import LocalNode, receipt_digest
from ._common import err_console, handle_errors, is_tty, model_ref


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
) -> None:
    """Ask a GGUF model, print the answer as it is generated, write a receipt bundle.

    Verify it with `inferproof verify BUNDLE --model FILE`: the request is re-run
    and must give the identical answer.
    """
    messages = [{"role": "system", "content": system}] if system is not None else []
    messages.append({"role": "user", "content": prompt})
    body: dict[str, Any] = {"messages": messages}
    for key, value in (("max_tokens", max_tokens), ("seed", seed), ("temperature", temperature)):
        if value is not None:
            body[key] = value
    ref = model_ref(model, ".gguf")
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
