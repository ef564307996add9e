"""The explorer's pages against a real node on loopback, with a real ONNX model, real
inferences and a real workflow run: what each page shows, its headers, its escaping,
and its refusals."""

from __future__ import annotations

import base64
import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from inferproof._canonical import canonical_json
from inferproof.errors import VerificationError
from inferproof.log import (
    Checkpoint,
    MemoryTree,
    Note,
    hash_children,
    hash_leaf,
    verify_consistency,
)
from inferproof.node import NodeConfig
from inferproof.node._explorer_log import _size_chart
from inferproof.testing import credit_risk_model
from tests.node.conftest import Running, pushed, start

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
HOSTILE = "<script>alert(1)</script>"
RISKY = {"income": 20, "debt": 0.9, "age": 22, "late": 6}
SAFE = {"income": 150, "debt": 0.05, "age": 50, "late": 0}
# A script element with a body, or one that is neither loaded from a file nor a JSON
# data block: the CSP would refuse it, and the pages must not need it.
_INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>")
_SCRIPT_BODY = re.compile(r"<script[^>]*\bsrc=[^>]*>\s*[^<\s]")


class World:
    def __init__(self, running: Running, digest: str, issued: list[dict[str, Any]]) -> None:
        self.running, self.digest, self.issued = running, digest, issued

    def get(self, path: str, **params: str) -> httpx.Response:
        with self.running.http(auth=False) as http:
            return http.get(path, params=params or None)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("explorer")
    feeds = root / "feeds"
    feeds.mkdir()
    (feeds / "rows.json").write_text(json.dumps([RISKY]))
    running = start(root / "node", NodeConfig(feeds_dir=feeds))
    try:
        model, _sample = credit_risk_model()
        digest = pushed(running, model, name="credit", version="1")
        rows = [[[r["income"], r["debt"], r["age"], r["late"]]] for r in (SAFE, RISKY) * 3]
        items = [{"inputs": {"X": row}, "nonce": f"n{i}"} for i, row in enumerate(rows)]
        items[2]["nonce"] = HOSTILE
        with running.http() as http:
            batch = http.post("/v1/infer/batch", json={"model": "credit:1", "items": items})
            assert batch.status_code == 200, batch.text
            issued = [r["result"] for r in batch.json()["results"]]
            body = {"name": "risk", "model": "credit:1",
                    "feed": {"kind": "file", "source": "rows.json"},
                    "query": {"input": "X", "columns": list(RISKY), "window": 1},
                    "schedule": {"every": 3600},
                    "alerts": [{"expr": "output.probabilities[0][1] > 0.5"}]}  # fmt: skip
            assert http.post("/v1/workflows", json=body).status_code == 201
            run = http.post("/v1/workflows/risk/run")
            assert run.status_code == 200, run.text
        yield World(running, digest, issued)
    finally:
        running.stop()


def _pages(world: World) -> list[str]:
    first = world.issued[0]
    return [
        "/explore",
        "/explore/models",
        "/explore/models?q=cred",
        "/explore/models/credit",
        "/explore/receipts",
        f"/explore/receipts?q={first['receipt_digest']}",
        f"/explore/receipts/{first['bundle_id']}",
        "/explore/log",
        f"/explore/log/entries/{first['log_index']}",
        "/explore/log/consistency?old=1",
        "/explore/workflows",
        "/explore/workflows/risk",
        "/explore/verify",
    ]


def test_every_page_is_served_under_the_strict_policy(world: World) -> None:
    for path in _pages(world):
        response = world.get(path)
        assert response.status_code == 200, (path, response.text)
        assert response.headers["content-type"].startswith("text/html")
        assert response.headers["content-security-policy"] == CSP
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
        html = response.text
        assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
        assert not _INLINE_SCRIPT.search(html), path
        assert not _SCRIPT_BODY.search(html), path
        assert " style=" not in html and not re.search(r"\son[a-z]+=", html), path
        assert world.running.token not in html, path


def test_the_node_page_names_its_keys(world: World) -> None:
    html = world.get("/explore").text
    node = world.running.node
    assert base64.b64encode(node.public_key).decode() in html
    assert node.node_id in html
    assert str(node.log.verifier_key) in html
    with world.running.http(auth=False) as http:
        assert http.get("/v1/identity").json()["webhook_key"] in html
        slash = http.get("/explore/")
    assert slash.status_code == 308 and slash.headers["location"] == "/explore"


def test_the_model_page_shows_versions_and_signature(world: World) -> None:
    html = world.get("/explore/models/credit").text
    assert world.digest in html and "credit:1" in html
    assert "unsigned" in html and "onnx" in html and " UTC" in html
    assert "X: float32" in html  # the input signature
    assert "credit" not in world.get("/explore/models", q="nothing-like-it").text.split("<main>")[1]


def test_receipt_search_by_digest_and_by_bundle_id(world: World) -> None:
    first = world.issued[0]
    by_digest = world.get("/explore/receipts", q=first["receipt_digest"]).text
    assert f'href="/explore/log/entries/{first["log_index"]}"' in by_digest
    bare = world.get("/explore/receipts", q=first["receipt_digest"].removeprefix("sha256:")).text
    assert f'href="/explore/log/entries/{first["log_index"]}"' in bare
    by_id = world.get("/explore/receipts", q=first["bundle_id"]).text
    assert f'href="/explore/receipts/{first["bundle_id"]}"' in by_id
    assert "Nothing found" in world.get("/explore/receipts", q="sha256:" + "0" * 64).text
    # The page says what it can search, and that digests never open bundles.
    assert "not the bundle" in by_digest and "nonce" in by_digest


def test_the_receipt_page_shows_the_receipt_and_its_checks(world: World) -> None:
    first = world.issued[0]
    html = world.get(f"/explore/receipts/{first['bundle_id']}").text
    assert world.digest in html and first["receipt_digest"] in html
    assert "checked by this node" in html
    assert (
        '<tr class="passed"><td class="mono">signature</td><td class="status">passed</td>' in html
    )
    assert '<td class="mono">output.reexecution</td><td class="status">passed</td>' in html
    assert '<td class="mono">log.inclusion</td><td class="status">passed</td>' in html
    assert "The default policy is satisfied." in html
    assert 'href="/explore/verify"' in html


def test_hostile_values_are_escaped(world: World) -> None:
    page = world.get(f"/explore/receipts/{world.issued[2]['bundle_id']}").text
    assert HOSTILE not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    echoed = world.get("/explore/receipts", q=HOSTILE).text
    assert HOSTILE not in echoed and "&lt;script&gt;" in echoed
    assert HOSTILE not in world.get("/explore/models", q=HOSTILE).text


def test_the_inclusion_path_recomputes_to_the_checkpoint_root(world: World) -> None:
    item = world.issued[2]
    html = world.get(f"/explore/log/entries/{item['log_index']}").text
    with world.running.http(auth=False) as http:
        bundle = http.get(f"/v1/bundles/{item['bundle_id']}").json()
        note = http.get("/v1/log/checkpoint").text
    checkpoint = Checkpoint.parse(Note.parse(note.encode()).text)
    assert checkpoint.size == len(world.issued) + 1  # and the workflow run
    leaf = hash_leaf(canonical_json(bundle["dsseEnvelope"]))
    shown = re.search(r'<td>leaf</td><td></td><td></td><td class="mono">([^<]+)</td>', html)
    assert shown and base64.b64decode(shown.group(1)) == leaf
    steps = re.findall(
        r'<tr><td>(\d+)</td><td class="mono">([^<]+)</td><td>(left|right)</td>'
        r'<td class="mono">([^<]+)</td></tr>', html)  # fmt: skip
    assert len(steps) == 3  # entry 2 of 7: three levels to the root
    node = leaf
    for _level, sibling, side, result in steps:
        other = base64.b64decode(sibling)
        node = hash_children(other, node) if side == "left" else hash_children(node, other)
        assert base64.b64decode(result) == node
    assert node == checkpoint.root_hash
    root = re.search(r'<td>root</td><td></td><td></td><td class="mono">([^<]+)</td>', html)
    assert root and base64.b64decode(root.group(1)) == checkpoint.root_hash
    assert "recomputes to the checkpoint" in html


def test_the_log_page_shows_the_checkpoint(world: World) -> None:
    html = world.get("/explore/log").text
    node = world.running.node
    assert node.log.origin in html
    assert node.log.checkpoint().root_hash.hex() in html
    assert f'href="/explore/log/entries/{len(world.issued)}"' in html  # the newest entry


def _checkpoint(world: World) -> Checkpoint:
    """The current checkpoint as the node's API serves it (not the explorer)."""
    with world.running.http(auth=False) as http:
        note = http.get("/v1/log/checkpoint").text
    return Checkpoint.parse(Note.parse(note.encode()).text)


def test_the_log_page_charts_every_checkpoint_size(world: World) -> None:
    html = world.get("/explore/log").text
    data = re.search(r'<script type="application/json" id="sizes">([^<]+)</script>', html)
    assert data and '<figure class="chart" data-chart="sizes"></figure>' in html
    chart = json.loads(data.group(1))
    sizes = world.running.node.log.store.checkpoint_sizes()
    assert len(sizes) >= 3  # the empty tree, the batch, the workflow run at least
    assert chart["time"] is False and chart["xlabel"] == "checkpoint number"
    assert chart["x"] == list(range(len(sizes)))
    assert chart["series"][0]["values"] == sizes
    assert sizes[0] == 0 and sizes[-1] == _checkpoint(world).size
    assert '<script type="module" src="/explore/static/charts.js"></script>' in html
    # The form that picks two sizes is a plain GET form (no script needed).
    assert '<form method="get" action="/explore/log/consistency" class="search">' in html
    assert 'name="old"' in html and f'name="new" type="number" min="1" max="{sizes[-1]}"' in html


def test_the_size_chart_sends_only_the_newest_checkpoints() -> None:
    chart = _size_chart(list(range(0, 5000, 2)))
    assert len(chart["x"]) == len(chart["series"][0]["values"]) == 2000
    assert chart["x"][0] == 500 and chart["x"][-1] == 2499
    assert chart["series"][0]["values"][0] == 1000 and chart["series"][0]["values"][-1] == 4998


def _shown_proof(html: str) -> tuple[list[bytes], bytes, bytes]:
    """The proof hashes, old root and new root as the consistency page shows them."""
    listed = re.search(r'<ol class="proof">(.*?)</ol>', html)
    hashes = re.findall(r'<li class="mono">([^<]+)</li>', listed.group(1)) if listed else []
    old = re.search(r'<td class="mono" id="old-root">([^<]+)</td>', html)
    new = re.search(r'<td class="mono" id="new-root">([^<]+)</td>', html)
    assert old and new, html
    return ([base64.b64decode(h) for h in hashes], base64.b64decode(old.group(1)),
            base64.b64decode(new.group(1)))  # fmt: skip


def test_the_consistency_page_proves_the_log_only_appended(world: World) -> None:
    log = world.running.node.log
    current = _checkpoint(world)
    signed = set(log.store.checkpoint_sizes())
    unsigned = [n for n in range(1, current.size) if n not in signed]
    olds = [min(signed - {0}), *unsigned[:1]]  # a size the log signed, and one it did not
    assert unsigned, f"every size was a checkpoint: {sorted(signed)}"
    for old in olds:
        response = world.get("/explore/log/consistency", old=str(old))  # new: the current
        assert response.status_code == 200, response.text
        assert response.headers["content-security-policy"] == CSP
        html = response.text
        assert "The proof verifies" in html and "(checked by this node)" in html
        hashes, old_root, new_root = _shown_proof(html)
        assert hashes, html
        # Checked here again, from what the page shows: the old root recomputed from the
        # entries themselves, the new one from the checkpoint the API serves.
        assert old_root == MemoryTree(log.store.read_entries(0, old)).root()
        assert new_root == current.root_hash
        verify_consistency(old, current.size, old_root, new_root, hashes)
        with pytest.raises(VerificationError):
            verify_consistency(old, current.size, new_root, new_root, hashes)
        api = world.get("/v1/log/consistency", old=str(old)).json()
        assert [base64.b64decode(h) for h in api["hashes"]] == hashes
        source = "the checkpoint the log signed" if old in signed else "the log&#39;s tiles"
        assert source in html.split('id="old-root"')[1].split("</tr>")[1]
    same = world.get("/explore/log/consistency", old="3", new="3").text
    assert "The proof verifies" in same and "None: a tree is consistent with itself" in same
    assert not _INLINE_SCRIPT.search(same) and not _SCRIPT_BODY.search(same)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"old": "abc"}, "the old size must be a decimal number, not &#39;abc&#39;"),
        ({"old": "1.5"}, "the old size must be a decimal number"),
        ({"old": "-1"}, "the old size must be a decimal number"),
        ({"old": "2", "new": "x2"}, "the new size must be a decimal number"),
        ({"old": "5", "new": "3"}, "the old size 5 is larger than the new size 3"),
        ({"old": "1", "new": "999999"}, "the new size 999999 is past the log&#39;s current size"),
        ({"old": "0"}, "the old size must be at least 1"),
        ({"old": "9" * 19}, "the old size is 19 characters, over the cap of 18 digits"),
        ({"old": "1", "new": "1" * 5000}, "the new size is 5000 characters, over the cap"),
        ({"new": "3"}, "choose the old size"),
    ],
)
def test_a_bad_consistency_request_gets_a_400_page(
    world: World, params: dict[str, str], message: str
) -> None:
    response = world.get("/explore/log/consistency", **params)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-security-policy"] == CSP
    assert message in response.text and "Traceback" not in response.text


def test_the_workflow_page_marks_alerts_and_checks_the_chain(world: World) -> None:
    assert 'href="/explore/workflows/risk"' in world.get("/explore/workflows").text
    html = world.get("/explore/workflows/risk").text
    assert '<span class="tag alert">ALERT</span>' in html
    assert '<tr class="passed"><th>chain</th>' in html
    data = re.search(r'<script type="application/json" id="outputs">([^<]+)</script>', html)
    assert data and json.loads(data.group(1))["marks"] == [0]


def test_the_verify_page_loads_its_script_and_says_what_it_cannot_check(world: World) -> None:
    html = world.get("/explore/verify").text
    assert '<script type="module" src="/explore/static/explore.js"></script>' in html
    for limit in ("Re-execution", "Zero-knowledge proofs", "Attestation chains"):
        assert limit in html
    script = world.get("/explore/static/explore.js")
    assert script.status_code == 200 and "./verify.js" in script.text
    assert script.headers["content-type"].startswith("text/javascript")
    assert world.get("/explore/static/explore.css").headers["content-type"].startswith("text/css")


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/explore/receipts/" + "0" * 24, "no bundle"),
        ("/explore/receipts/not-a-bundle", "24 lowercase hex"),
        ("/explore/models/missing", "no model named"),
        ("/explore/log/entries/999999", "no entry 999999"),
        ("/explore/log/entries/-1", "decimal"),
        ("/explore/workflows/missing", "no workflow"),
        ("/explore/no-such-page", "no such page"),
    ],
)
def test_unknown_or_malformed_ids_get_an_html_error_page(
    world: World, path: str, message: str
) -> None:
    response = world.get(path)
    assert response.status_code in (400, 404), response.text
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-security-policy"] == CSP
    assert message in response.text and "Traceback" not in response.text


def test_an_over_long_query_is_refused(world: World) -> None:
    for path in ("/explore/receipts", "/explore/models"):
        response = world.get(path, q="a" * 5000)
        assert response.status_code == 400
        assert "over the cap" in response.text


def _raw_get(url: str, path: str) -> tuple[int, bytes]:
    """GET ``path`` exactly as written (an HTTP client would normalise the dots)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    return int(data.split(b" ", 2)[1]), data


@pytest.mark.parametrize(
    "path",
    [
        "/explore/static/../_app.py",
        "/explore/static/..%2F_app.py",
        "/explore/static/%2e%2e/_app.py",
        "/explore/static/%2e%2e%2f_app.py",
        "/explore/static/_app.py",
        "/explore/static/templates%2Fbase.html",
        "/explore/static/..%2Ftemplates%2Fbase.html",
    ],
)
def test_the_static_route_serves_only_its_allow_list(world: World, path: str) -> None:
    status, data = _raw_get(world.running.url, path)
    assert status == 404, data[:300]
    assert b"create_app" not in data and b"{% block" not in data


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    from tests._chromium import CHROMIUM_ARGS, chromium_path

    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def test_the_verify_page_checks_a_bundle_in_the_browser(
    world: World, browser: Any, tmp_path: Path
) -> None:
    item = world.issued[0]
    bundle = tmp_path / "bundle.json"
    bundle.write_text(world.get(f"/v1/bundles/{item['bundle_id']}").text)
    page = browser.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(world.running.url + "/explore/verify")
    page.click("#pin-node")
    # Locators, not wait_for_function: the page's CSP refuses the eval that one needs.
    fingerprinted = page.locator("#pinned td", has_text="sha256:")
    fingerprinted.wait_for()
    node = world.running.node
    assert node.node_id in page.inner_text("#pinned")
    assert node.log.origin in page.inner_text("#pinned")
    page.set_input_files("#file", str(bundle))
    page.locator("#results tr").first.wait_for()
    assert page.inner_text("#verdict").startswith("Verified in this browser")
    statuses = dict(
        zip(page.locator("#results td.mono").all_inner_texts(),
            page.locator("#results td.status").all_inner_texts(), strict=True)
    )  # fmt: skip
    assert statuses["signature"] == "passed" and statuses["log.inclusion"] == "passed"
    assert statuses["output.reexecution"] == "not_checked"
    # Pinned keys outlive the page (localStorage); a tampered bundle then fails.
    page.reload()
    fingerprinted.wait_for()
    tampered = json.loads(bundle.read_text())
    tampered["outputs"]["label"]["data"] = [1 - tampered["outputs"]["label"]["data"][0]]
    bundle.write_text(json.dumps(tampered))
    page.set_input_files("#file", str(bundle))
    page.locator("#verdict", has_text="NOT verified in this browser").wait_for()
    assert page.inner_text("#verdict") == ("NOT verified in this browser: output.digest failed.")
    assert page.locator("#results td.status", has_text="failed").count() >= 1
    assert problems == []
    page.close()


def test_the_pages_fit_a_phone_screen(world: World, browser: Any) -> None:
    page = browser.new_page(viewport={"width": 360, "height": 740})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    for path in _pages(world):
        page.goto(world.running.url + path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 360, (path, width)
        # The stylesheet applied (a page without it would still fit, unstyled).
        assert (
            page.evaluate("getComputedStyle(document.querySelector('header')).display") == "block"
        )
        color = page.evaluate("getComputedStyle(document.querySelector('header')).backgroundColor")
        assert color == "rgb(29, 42, 58)", path
    # The workflow's chart drew under the CSP (charts.js and its data block).
    page.goto(world.running.url + "/explore/workflows/risk")
    page.locator("figure.chart.drawn").wait_for()
    # So did the log's, on a number axis: uPlot names the x series "Time" on a time axis.
    page.goto(world.running.url + "/explore/log")
    page.locator('figure.chart.drawn[data-chart="sizes"]').wait_for()
    assert page.locator('figure[data-chart="sizes"] canvas').count() == 1
    legend = page.locator('figure[data-chart="sizes"] .u-legend th').all_inner_texts()
    assert legend[:2] == ["Value", "tree size"], legend
    page.goto(world.running.url + "/explore/log/consistency?old=1")
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    assert problems == []
    page.close()
