"""The MCP client configuration shown in docs/agents.md launches a working server: the
JSON block is read from the page and started as an MCP client would start it."""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

import anyio
from mcp import Client, StdioServerParameters

ROOT = Path(__file__).resolve().parents[2]


def _config() -> dict:  # type: ignore[type-arg]
    page = (ROOT / "docs" / "agents.md").read_text()
    block = re.search(r"```json\n(.*?)```", page, re.S)
    assert block is not None, "docs/agents.md shows no JSON configuration"
    return json.loads(block.group(1))["mcpServers"]["inferproof"]


def test_the_documented_configuration_starts_the_server(tmp_path: Path) -> None:
    server = _config()
    assert server["command"] == "inferproof" and server["args"][0] == "mcp"
    # The reader's paths, moved into this test's folder; the venv's own inferproof.
    text = json.dumps(server).replace("/home/me", str(tmp_path))
    server = json.loads(text)
    command = str(Path(sys.executable).parent / server["command"])
    env = {**os.environ, **server["env"]}
    (tmp_path / "agent-runs").mkdir()
    params = StdioServerParameters(command=command, args=server["args"], env=env)

    async def go() -> list[str]:
        async with Client(params) as c:
            return [t.name for t in (await c.list_tools()).tools]

    assert "infer" in anyio.run(go)
    record = tmp_path / "agent-runs" / "latest.json"
    deadline = time.monotonic() + 30
    while not record.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert json.loads(record.read_text())["calls"] == []
