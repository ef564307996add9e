"""The package layout DESIGN.md orders, checked from the source with ``ast``.

Every ``import`` counts, at module level, inside functions and under
``TYPE_CHECKING`` alike: an import hidden in a function to dodge a cycle is still
a cycle. The tests fail on a circle, on an import that points up the layer table,
and on an import of another package's private module.
"""

from __future__ import annotations

import ast
import importlib
from collections import defaultdict
from pathlib import Path

import pytest

import inferproof

SRC = Path(inferproof.__file__).parent
# DESIGN.md "Packages", top to bottom: a package may import those below it, never
# those above. "testing" (fixture models, importing only the ground) sits just
# below the CLI, the one library user of it (the demo). The ground is the
# top-level private modules and errors.
LAYERS = [
    "cli",
    "testing",
    "node",
    "integrations",
    "client",
    "workflows",
    "chain",
    "confidential",
    "engine",
    "stores",
    "verify",
    "proofs",
    "attest",
    "image",
    "receipts",
    "log",
    "hub",
    "runtime",
    "<ground>",
]
GROUND = {"_canonical", "_checks", "_files", "_keys", "_version", "errors"}
# The package's front door and the deprecated aliases of 0.1 import from anywhere
# (nothing in the library imports them).
DOOR = {"inferproof", "inferproof.__main__", "inferproof._chat"}
# Deprecated re-exports kept for one release because the 0.1 README named them;
# they point up the table on purpose, lazily, and go in 0.3.
DEPRECATED_ALIASES = {"inferproof.runtime._llm_fixture"}


def _modules() -> dict[str, tuple[Path, bool]]:
    mods = {}
    for path in SRC.rglob("*.py"):
        parts = ["inferproof", *path.relative_to(SRC).with_suffix("").parts]
        is_pkg = parts[-1] == "__init__"
        if is_pkg:
            parts = parts[:-1]
        mods[".".join(parts)] = (path, is_pkg)
    return mods


MODULES = _modules()


def _targets(name: str, path: Path, is_pkg: bool) -> list[tuple[str, str]]:
    """(imported module, how it was written) for every import in the module."""
    package = name.split(".") if is_pkg else name.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("inferproof"):
                continue
            written = "." * node.level + (node.module or "")
            subs = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in MODULES]
            found.extend((t, written) for t in (subs or [target]) if t in MODULES)
        elif isinstance(node, ast.Import):
            found.extend((a.name, a.name) for a in node.names if a.name in MODULES)
    return found


EDGES: dict[str, set[str]] = defaultdict(set)
for _name, (_path, _is_pkg) in MODULES.items():
    for _target, _ in _targets(_name, _path, _is_pkg):
        if _target != _name:
            EDGES[_name].add(_target)


def _layer(module: str) -> int | None:
    if module in DOOR:
        return None
    top = module.split(".")[1]
    if top in GROUND:
        return LAYERS.index("<ground>")
    assert top in LAYERS, f"{module}: package {top!r} is not in DESIGN.md's table"
    return LAYERS.index(top)


def _cycles() -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(EDGES.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for module in sorted(MODULES):
        if module not in index:
            visit(module)
    return out


def test_the_graph_sees_the_imports() -> None:
    # A broken parser would find no edges and pass everything below.
    assert "inferproof.engine._issue" in EDGES["inferproof.engine._onnx"]
    assert "inferproof.receipts" in EDGES["inferproof.engine._issue"]
    assert "inferproof.proofs.zk" in EDGES["inferproof.engine._zk"]  # a function-level import
    assert len(MODULES) > 100


def test_no_import_cycles() -> None:
    assert _cycles() == []


def test_cycle_finder_finds_a_cycle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(EDGES, "inferproof.runtime._onnx", {"inferproof.engine._local"})
    monkeypatch.setitem(EDGES, "inferproof.engine._local", {"inferproof.runtime._onnx"})
    assert ["inferproof.engine._local", "inferproof.runtime._onnx"] in _cycles()


def _upward() -> list[str]:
    upward = []
    for module, targets in EDGES.items():
        here = _layer(module)
        if here is None or module in DEPRECATED_ALIASES:
            continue
        for target in targets:
            there = _layer(target)
            if target in DOOR:
                upward.append(f"{module} -> {target} (the front door)")
            elif there is not None and there < here:
                upward.append(f"{module} -> {target}")
    return upward


def test_imports_point_down_the_table() -> None:
    assert _upward() == []


def test_an_upward_import_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(EDGES, "inferproof.verify._verifier", {"inferproof.engine._local"})
    assert "inferproof.verify._verifier -> inferproof.engine._local" in _upward()


def test_no_import_of_another_packages_private_module() -> None:
    bad = []
    for name, (path, is_pkg) in MODULES.items():
        if name in DOOR:
            continue
        own = name.split(".")[1]
        for target, written in _targets(name, path, is_pkg):
            parts = target.split(".")
            if len(parts) > 2 and parts[1] != own and any(p.startswith("_") for p in parts[2:]):
                bad.append(f"{name}: from {written} (reaches into {target})")
    assert bad == []


@pytest.mark.parametrize(
    "package",
    sorted(n for n, (_, is_pkg) in MODULES.items() if is_pkg and n != "inferproof"),
)
def test_every_package_door_lists_its_names(package: str) -> None:
    module = importlib.import_module(package)
    names = getattr(module, "__all__", None)
    assert names, f"{package}/__init__.py declares no __all__"
    assert names == sorted(set(names), key=names.index), "duplicate names"
    missing = [n for n in names if not hasattr(module, n)]
    assert missing == []


PUBLIC = [
    "AsyncClient",
    "Bundle",
    "Client",
    "Error",
    "InputError",
    "LocalNode",
    "Policy",
    "TrustRoot",
    "VerificationError",
    "Verifier",
    "__version__",
    "verify_openai",
]


def test_top_level_surface_is_pinned() -> None:
    """As httpx does: nothing public by accident, nothing forgotten."""
    assert sorted(inferproof.__all__) == PUBLIC
    for name in PUBLIC:
        assert getattr(inferproof, name) is not None
    with pytest.raises(AttributeError):
        inferproof.NotAThing  # noqa: B018


def test_top_level_names_are_the_packages_own() -> None:
    from inferproof.client import AsyncClient, Client
    from inferproof.engine import LocalNode
    from inferproof.receipts import Bundle
    from inferproof.verify import Policy, TrustRoot, Verifier

    assert inferproof.Client is Client and inferproof.AsyncClient is AsyncClient
    assert inferproof.LocalNode is LocalNode and inferproof.Bundle is Bundle
    assert (inferproof.Policy, inferproof.TrustRoot, inferproof.Verifier) == (
        Policy,
        TrustRoot,
        Verifier,
    )


def test_importing_inferproof_loads_no_runtime() -> None:
    import subprocess
    import sys

    code = (
        "import sys, inferproof, inferproof.errors; "
        "print(sorted(m for m in ('onnxruntime', 'llama_cpp', 'httpx', 'ezkl') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_docs_name_only_public_modules() -> None:
    import re

    root = SRC.parent.parent
    private = re.compile(r"\binferproof(?:\.[a-z]\w*)*\._\w+")
    found = [
        f"{doc.relative_to(root)}: {m.group(0)}"
        for doc in [root / "README.md", *sorted((root / "docs").glob("*.md"))]
        for m in private.finditer(doc.read_text())
    ]
    assert found == []
