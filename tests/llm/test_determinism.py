"""The same request gives a byte-identical answer in two separate processes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from .conftest import ask

_SCRIPT = """
import json, sys
from pathlib import Path
from inferproof import LocalNode
home, model, bodies = Path(sys.argv[1]), Path(sys.argv[2]), json.loads(sys.argv[3])
with LocalNode(home) as node:
    out = []
    for body in bodies:
        r = node.chat(model, body)
        out.append({"text": r.text.encode("utf-8").hex(), "output": r.bundle.receipt.output_digest,
                    "input": r.bundle.receipt.input_digest, "runtime": r.bundle.receipt.runtime})
print(json.dumps(out))
"""

BODIES = [ask(max_tokens=64), ask("Tell me a story", temperature=0.9, seed=1234, max_tokens=64)]


def _run(home: Path, model: Path) -> list[dict[str, object]]:
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(home), str(model), json.dumps(BODIES)],
        capture_output=True,
        check=True,
        timeout=120,
    )
    return json.loads(done.stdout)


def test_two_processes_give_byte_identical_answers(
    tmp_path: Path, gguf_path: Path, chat_node
) -> None:
    first = _run(tmp_path / "a", gguf_path)
    second = _run(tmp_path / "b", gguf_path)
    assert first == second
    # And this process agrees too (another node, another home).
    here = [chat_node.chat(gguf_path, body) for body in BODIES]
    assert [r.text.encode("utf-8").hex() for r in here] == [o["text"] for o in first]
    assert [r.bundle.receipt.output_digest for r in here] == [o["output"] for o in first]
    assert len({o["text"] for o in first}) == 2
