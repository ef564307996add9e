"""verify.js, the in-browser verifier, against the committed vectors and the Python verifier.

The vectors (tests/explorer/vectors, made by ``python -m tests.explorer._make_vectors``)
carry the statuses each check must have, set from how each vector was made. Node runs
verify.js over all of them once; each case is then checked against those statuses and
against what inferproof.verify.Verifier reports for the same bundle and pins.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from inferproof.errors import InputError
from inferproof.log import VerifierKey
from inferproof.receipts import Bundle
from inferproof.verify import Material, Policy, TrustRoot, Verifier

HERE = Path(__file__).parent
VECTORS = HERE / "vectors"
MANIFEST = json.loads((VECTORS / "manifest.json").read_text())
CASES = {c["name"]: c for c in MANIFEST["cases"]}
# What the browser cannot do, and says so: no model to re-run, no checkpoint memory.
# What Python checks and the browser leaves not_checked: re-running the model, the
# checkpoint memory, and the chat request (Python parses it strictly; docs/explorer.md).
BROWSER_ONLY_NOT_CHECKED = {"output.reexecution", "log.consistency", "input"}


@cache
def node_results() -> dict[str, Any]:
    node = Path(sys.executable).parent / "node"
    done = subprocess.run(
        [
            str(node),
            "--disable-warning=MODULE_TYPELESS_PACKAGE_JSON",
            str(HERE / "run_vectors.mjs"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout)


def js_statuses(name: str) -> dict[str, str]:
    report = node_results()["cases"][name]
    return {c["name"]: c["status"] for c in report["checks"]}


def python_report(case: dict[str, Any]) -> dict[str, str] | None:
    """The Python verifier's statuses with the case's pins and options; None if it refuses."""
    pins = MANIFEST["pins"][case["pins"]]
    trust = TrustRoot.from_keys([base64.b64decode(k) for k in pins["nodeKeys"]])
    logs = [VerifierKey.parse(k) for k in pins["logKeys"]]
    trust = TrustRoot(trust.node_keys, log_keys={k.name: k for k in logs})
    options = case["options"]
    policy = Policy(max_age_seconds=options.get("maxAgeSeconds"))
    now = options.get("now")
    material = Material(
        nonce=options.get("nonce"),
        now=datetime.fromisoformat(now.replace("Z", "+00:00")) if now else None,
    )
    try:
        bundle = Bundle.from_json(json.loads((VECTORS / case["file"]).read_text()))
    except InputError:
        return None
    report = Verifier(trust, policy).check(bundle, material)
    return {c.name: c.status.value for c in report.checks}


@pytest.mark.parametrize("name", sorted(CASES))
def test_verify_js_gives_the_expected_statuses(name: str) -> None:
    case = CASES[name]
    got = js_statuses(name)
    wrong = {k: (want, got.get(k)) for k, want in case["expect"].items() if got.get(k) != want}
    assert not wrong, f"{name}: (expected, verify.js) {wrong}"
    assert node_results()["cases"][name]["verified"] is case["verified"]


@pytest.mark.parametrize("name", sorted(CASES))
def test_python_and_verify_js_agree(name: str) -> None:
    case = CASES[name]
    python = python_report(case)
    js = js_statuses(name)
    if python is None:
        # The library refuses to read it at all: the browser must fail it, by the check named.
        assert case["python"] == "refuses"
        failing = [k for k, v in case["expect"].items() if v == "failed"]
        assert failing and all(js[k] == "failed" for k in failing)
        assert node_results()["cases"][name]["verified"] is False
        return
    assert case["python"] == "checks"
    # The manifest's expectations hold for Python too, for every check Python makes.
    wrong = {k: (v, python[k]) for k, v in case["expect"].items() if k in python and python[k] != v}
    assert not wrong, f"{name}: (expected, python) {wrong}"
    for check, status in python.items():
        if check not in js:
            continue
        if check in BROWSER_ONLY_NOT_CHECKED and js[check] == "not_checked":
            continue
        assert js[check] == status, f"{name}: {check} is {status} in Python, {js[check]} in JS"
    # A failure either verifier finds, the other finds too.
    assert ("failed" in python.values()) == ("failed" in js.values())


def test_every_rejection_is_covered() -> None:
    """Each tampered field is in the corpus, and fails the check that covers it."""
    failing = {
        name: sorted(k for k, v in c["expect"].items() if v == "failed")
        for name, c in CASES.items()
    }
    assert failing["tamper_signature"] == ["log.inclusion", "signature"]
    assert failing["tamper_output_value"] == ["output.digest"]
    assert failing["tamper_input_value"] == ["input"]
    assert failing["tamper_leaf_index"] == ["log.inclusion"]
    assert failing["tamper_checkpoint_root"] == ["log.checkpoint_signature"]
    assert failing["noncanonical_payload"] == ["log.inclusion", "statement"]
    assert failing["unpinned_node_key"] == ["signature"]
    assert failing["unpinned_log_key"] == ["log.inclusion"]
    for chat in ("tamper_chat_text", "tamper_chat_usage", "tamper_chat_finish_reason"):
        assert failing[chat] == ["output.digest"], chat
    assert sum(n.startswith("tamper_proof_hash_") for n in CASES) >= 2
    assert CASES["good_onnx"]["verified"] and not CASES["private_receipt"]["verified"]
    assert CASES["good_chat"]["verified"]


def test_pinned_key_fingerprints() -> None:
    shown = node_results()["fingerprints"]["default"]
    pins = MANIFEST["pins"]["default"]
    from inferproof._keys import key_id

    assert shown["nodeKeys"] == [key_id(base64.b64decode(pins["nodeKeys"][0]))]
    key = VerifierKey.parse(pins["logKeys"][0])
    assert shown["logKeys"] == [f"{key.name}+{key.key_id:08x}"]


def test_hostile_input_fails_and_never_throws() -> None:
    hostile = node_results()["hostile"]
    for name, check in [
        ("notJson", "bundle"),
        ("tooLarge", "bundle"),
        ("notObject", "bundle"),
        ("badPins", "pins"),
    ]:
        report = hostile[name]
        assert report["verified"] is False
        assert [(c["name"], c["status"]) for c in report["checks"]] == [(check, "failed")]
