"""``inferproof demo --agent``: a scripted agent scores a loan application with the
credit-risk model and explains it with SmolLM2, all through the MCP tools of a real
``inferproof mcp`` server (stdio, driven by the MCP SDK's client), then verifies the
run record and shows a tampered one failing. No external LLM is needed: the "agent"
is a fixed script, as an LLM agent would call the same tools."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import typer

from ..engine import LocalNode
from ..errors import Error, InputError
from ..receipts import RunRecord
from ..testing import credit_risk_model, smollm2_gguf
from ..verify import RunVerifier
from ._agents import show_run
from ._common import EXIT_VERIFY_FAILED, console
from ._demokit import step as _step

__all__ = ["agent_demo"]

APPLICANT = [[52.0, 0.41, 34.0, 2.0]]  # income (k), debt ratio, age, late payments


def _result(result: Any) -> dict[str, Any]:
    if result.is_error:
        raise Error(f"tool error: {result.content[0].text}")
    out: dict[str, Any] = result.structured_content
    return out


async def _agent(record: Path) -> list[dict[str, Any]]:
    """The scripted agent: what an LLM agent would do with these tools."""
    from mcp import Client, StdioServerParameters

    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "inferproof", "mcp", "--record", str(record)],
        env=dict(os.environ),
    )
    async with Client(params) as mcp:
        tools = [t.name for t in (await mcp.list_tools()).tools]
        console.print(f"MCP tools: {', '.join(tools)}", markup=False)
        models = _result(await mcp.call_tool("list_models", {}))
        for m in models["tensor_models"]:
            console.print(f"  {m['model']}: {m['signature']}", markup=False)
        _step(f"The agent scores the applicant {APPLICANT[0]} with infer(credit-risk:1)")
        score = _result(await mcp.call_tool(
            "infer", {"model": "credit-risk:1", "inputs": {"X": APPLICANT}}))  # fmt: skip
        p = score["outputs"]["probabilities"][0][1]
        _said(score, f"default probability {p:.3f}")
        _step("The agent asks SmolLM2 to explain the score, with chat(smollm2)")
        question = (
            f"A loan applicant's estimated probability of default is {p:.0%}. In one "
            "sentence, is that a high or a low risk?"
        )
        said = _result(await mcp.call_tool(
            "chat", {"model": "smollm2", "prompt": question, "max_tokens": 48,
                     "temperature": 0}))  # fmt: skip
        _said(said, f"SmolLM2: {said['text']}")
        return [score, said]


def _said(answer: dict[str, Any], what: str) -> None:
    console.print(what, markup=False)
    checks = answer["verification"]["checks"]
    passed = sum(c["status"] == "passed" for c in checks)
    console.print(
        f"  receipt {answer['receipt_digest'][:23]}… log index {answer['log_index']}, "
        f"verified ({passed} checks passed)",
        markup=False,
    )


def agent_demo(workdir: Path) -> None:
    try:
        import anyio
        import mcp  # noqa: F401  (the agents extra)
    except ImportError:
        raise InputError("demo --agent needs the agents extra: pip install "
                         "'inferproof[agents]'") from None  # fmt: skip
    workdir.mkdir(parents=True, exist_ok=True)
    _step("Pushing the credit-risk model and SmolLM2-135M-Instruct to the hub")
    with LocalNode() as node:
        model_bytes, _ = credit_risk_model()
        node.push(model_bytes, name="credit-risk", version="1")
        node.push(smollm2_gguf(), name="smollm2")
    _step("Starting `inferproof mcp` (stdio) and connecting the scripted agent to it")
    record_path = workdir / "run.json"
    record_path.unlink(missing_ok=True)
    anyio.run(_agent, record_path)
    if not record_path.is_file():
        raise Error("the MCP server wrote no run record")
    _step(f"Verifying the run record {record_path} (inferproof run verify)")
    with LocalNode() as node:
        runs = RunVerifier.for_audit(node.verifier())
        report = runs.check(RunRecord.read(record_path))
        show_run(report)
        if not report.verified:
            raise typer.Exit(EXIT_VERIFY_FAILED)
        _step("Tampering with a copy: the credit-risk call is dropped from the record")
        obj = json.loads(record_path.read_text())
        obj["calls"] = obj["calls"][1:]
        tampered = workdir / "run-tampered.json"
        tampered.write_text(json.dumps(obj, indent=2))
        bad = runs.check(RunRecord.read(tampered))
        show_run(bad)
        if bad.verified:
            raise typer.Exit(EXIT_VERIFY_FAILED)
    console.print(
        f"\n[bold]Done.[/bold] Try: inferproof run verify {record_path}  and  "
        f"inferproof run verify {tampered}"
    )
