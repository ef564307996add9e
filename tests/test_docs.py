"""Every snippet in the README and docs/ runs as written, on the embedded default.

A document's ``sh`` and ``python`` blocks run in order as one shell script, in a
fresh folder with a fresh ``INFERPROOF_HOME`` (so a later block sees the files and
variables an earlier one made, as a reader following the page would). Untagged
blocks are synopses and diagrams, never run. Three conventions keep the pages
natural to read:

- ``<!-- doctest: skip REASON -->`` right before a block skips it (the install
  commands, which CI itself runs);
- a line starting ``inferproof serve`` or ``inferproof witness serve`` runs in the
  background, and the script waits until it answers (a reader would use another
  terminal); servers are stopped when the page ends;
- port 8080 (7380 for a witness) is replaced by a free port.

What a page needs from before it (the demo's files for the README tour, a node for
the node page) is set up by its prologue below, in plain shell.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VECTORS = ROOT.parent / "shared" / "vectors"
PAGES = ["README.md", *sorted(f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md"))]
_BLOCK = re.compile(
    r"(<!--\s*doctest:\s*(?P<directive>[^>]*?)\s*-->\s*\n)?^```(?P<lang>\w*)\n(?P<body>.*?)^```",
    re.S | re.M,
)
_SERVE = re.compile(r"^\s*(inferproof (?:witness )?serve\b.*)$", re.M)

# What each page builds on, in shell. The README tour follows the main job (the end
# of its first command), which wrote the model and its input to inferproof-demo/.
# The attestation page reads real evidence and collateral as a verifier gets them.
PROLOGUE = {
    "README.md": "inferproof demo --node > /dev/null\n",
    "docs/attestation.md": "cp vectors/attestation/tdx/tdx_quote vectors/attestation/tdx/"
    "tdx_quote_collateral.json .\n",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# Wait (60 s at most) until a URL answers at all: a server started in the background.
_WAIT = (
    "import sys, time, urllib.request, urllib.error\n"
    "for _ in range(600):\n"
    "    try:\n"
    "        urllib.request.urlopen(sys.argv[1], timeout=1); break\n"
    "    except urllib.error.HTTPError: break\n"
    "    except OSError: time.sleep(0.1)\n"
)


def _background(match: re.Match[str]) -> str:
    command = match.group(1).split("#", 1)[0].strip()
    port = re.search(r"--port (\d+)", command)
    url = f"http://127.0.0.1:{port.group(1) if port else 8080}"
    probe = "/healthz" if "witness" not in command else "/"
    return (
        f'{command} > /dev/null 2>&1 &\nSERVERS="$SERVERS $!"\n'
        f"python -c {shlex.quote(_WAIT)} {url}{probe}\n"
    )


def _script(page: str) -> tuple[str, int]:
    """The page as one shell script, and how many blocks it runs."""
    text = (ROOT / page).read_text()
    parts, count = (
        ["set -euo pipefail\nSERVERS=''\ntrap 'kill $SERVERS 2>/dev/null || true' EXIT\n"],
        0,
    )
    parts.append(PROLOGUE.get(page, ""))
    for block in _BLOCK.finditer(text):
        directive, lang, body = (
            block.group("directive") or "",
            block.group("lang"),
            block.group("body"),
        )
        if lang not in ("sh", "python") or directive.startswith("skip"):
            continue
        count += 1
        if lang == "python":
            parts.append(f"python - <<'INFERPROOF_DOCTEST_PY'\n{body}INFERPROOF_DOCTEST_PY\n")
        else:
            parts.append(_SERVE.sub(_background, body))
    return "".join(parts), count


def _ports(script: str) -> str:
    """Give 8080 and 7380 one free port each, everywhere in the script."""
    for port in ("8080", "7380"):
        free = str(_free_port())
        script = re.sub(rf"(?<=[:\s]){port}\b", free, script)
    return script


RUNNABLE = [page for page in PAGES if _script(page)[1]]


def test_the_pages_with_snippets_are_found() -> None:
    assert {"README.md", "docs/node.md", "docs/llm.md", "docs/zk.md"} <= set(RUNNABLE)


# The README runs every walkthrough (proving included): 5 to 11 minutes on the CI
# machines seen, over pytest's default of 600 s; the subprocess's own 1200 s still bounds it.
@pytest.mark.timeout(1500)
@pytest.mark.parametrize("page", RUNNABLE)
def test_the_page_runs_as_written(page: str, tmp_path: Path) -> None:
    script, _ = _script(page)
    work = tmp_path / "work"
    work.mkdir()
    if VECTORS.is_dir():
        shutil.copytree(VECTORS, work / "vectors")
    (work / ".venv").symlink_to(Path(sys.prefix))  # `source .venv/bin/activate` works
    bin_dir = Path(sys.executable).parent
    env = {
        **os.environ,
        "INFERPROOF_HOME": str(tmp_path / "home"),
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    env.pop("INFERPROOF_NODE", None)
    env.pop("INFERPROOF_TOKEN", None)
    done = subprocess.run(
        ["bash", "-c", _ports(script)], cwd=work, env=env, capture_output=True, text=True,
        timeout=1200,
    )  # fmt: skip
    assert done.returncode == 0, (
        f"{page}: exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
