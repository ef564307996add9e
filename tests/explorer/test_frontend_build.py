"""The explorer's committed chart bundle is what the pinned npm packages build.

The bundle is committed (a node serves it without Node.js); these tests rebuild it with
the esbuild and uPlot that package-lock.json pins, as `npm ci` installed them, and fail
when the committed copy differs or could not run under the explorer's CSP."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "build_frontend", ROOT / "tools/build_frontend.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_bundle_is_what_the_lock_builds(tmp_path: Path) -> None:
    tool = _tool()
    built = tool.build(tmp_path)
    assert set(built) == {"charts.js", "uplot.css", "uplot-LICENSE.txt"}
    for name, data in built.items():
        committed = (tool.STATIC / name).read_bytes()
        assert committed == data, f"{name}: rebuild with .venv/bin/python tools/build_frontend.py"


def test_a_second_build_is_byte_identical(tmp_path: Path) -> None:
    tool = _tool()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert tool.build(tmp_path / "a") == tool.build(tmp_path / "b")


def test_the_bundle_pins_the_versions_the_lock_names() -> None:
    lock = json.loads((ROOT / "package-lock.json").read_text())
    packages = lock["packages"]
    assert packages["node_modules/uplot"]["version"] == "1.6.32"
    assert packages["node_modules/esbuild"]["version"] == "0.28.2"
    # Every package the lock installs is pinned by an integrity hash (npm ci checks it).
    assert all("integrity" in p for k, p in packages.items() if k), "a package without a hash"


def test_the_bundle_runs_under_the_explorers_csp() -> None:
    """script-src 'self' without 'unsafe-eval': no eval or Function constructor, and no
    address outside the node (no CDN, no fonts, no telemetry)."""
    text = (_tool().STATIC / "charts.js").read_text()
    assert "eval(" not in text and "new Function" not in text
    assert "http://" not in text and "https://" not in text
    assert text.startswith("/*! uPlot (MIT)"), "the licence notice is kept"
    assert "drawCharts" in text  # the module's export survived minification
