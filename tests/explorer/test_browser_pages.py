"""The explorer in a real browser (Debian's Chromium, driven by Playwright), and its
receipt search over the public log.

Screenshots of every page, at a desktop and a phone width, are written to
``artifacts/explorer/`` in the checkout (``INFERPROOF_ARTIFACTS`` moves the parent
folder): CI keeps that folder, and the README names it."""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from . import test_pages
from .test_pages import HOSTILE, World, _pages

# The node, its receipts and the browser are test_pages' module fixtures, made again here.
world = test_pages.world
browser = test_pages.browser

ROOT = Path(__file__).resolve().parents[2]
SHOTS = Path(os.environ.get("INFERPROOF_ARTIFACTS", ROOT / "artifacts")) / "explorer"
WIDTHS = {"desktop": (1280, 900), "phone": (360, 740)}


def _entries(html: str) -> set[int]:
    return {int(i) for i in re.findall(r'href="/explore/log/entries/(\d+)"', html)}


def _logged(world: World) -> dict[str, int]:
    """Each issued receipt's log index, by the nonce test_pages' world gave it: n0 to
    n5 in order, the third replaced by a hostile value."""
    nonces = [HOSTILE if i == 2 else f"n{i}" for i in range(len(world.issued))]
    return {n: item["log_index"] for n, item in zip(nonces, world.issued, strict=True)}


# -- search over the log -----------------------------------------------------------------
def test_a_nonce_finds_its_receipts_log_entry_only(world: World) -> None:
    by_nonce = _logged(world)
    html = world.get("/explore/receipts", q="nonce:n3").text
    assert _entries(html) == {by_nonce["n3"]}
    # A hostile nonce is found, and shown escaped.
    html = world.get("/explore/receipts", q="nonce:" + HOSTILE).text
    assert _entries(html) == {by_nonce[HOSTILE]}
    assert HOSTILE not in html and "&lt;script&gt;" in html
    assert "Nothing found" in world.get("/explore/receipts", q="nonce:nobody").text


def test_a_model_finds_its_page_and_its_logged_receipts(world: World) -> None:
    html = world.get("/explore/receipts", q="credit:1").text
    assert 'href="/explore/models/credit"' in html
    # Every inference of the batch, and the workflow's run, used that model.
    assert set(_logged(world).values()) <= _entries(html)
    by_digest = world.get("/explore/receipts", q=world.digest).text
    assert _entries(by_digest) == _entries(html)


def test_the_model_page_links_to_its_logged_receipts(world: World) -> None:
    html = world.get("/explore/models/credit").text
    link = f'href="/explore/receipts?q={world.digest.replace(":", "%3A")}"'
    assert link in html
    found = world.get("/explore/receipts", q=world.digest).text
    assert set(_logged(world).values()) <= _entries(found)


def test_a_time_prefix_finds_the_receipts_started_then(world: World) -> None:
    # The receipt's start time, from the statement the node signed (its bundle).
    bundle = world.get(f"/v1/bundles/{world.issued[0]['bundle_id']}").json()
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    started = statement["predicate"]["time"]["started"]
    day = started[:10]
    assert _entries(world.get("/explore/receipts", q=day).text) >= set(_logged(world).values())
    assert world.issued[0]["log_index"] in _entries(world.get("/explore/receipts", q=started).text)
    assert _entries(world.get("/explore/receipts", q="time:1999-01").text) == set()
    # Not a time: no receipt search at all (and no error).
    assert _entries(world.get("/explore/receipts", q="2026-1x").text) == set()


# -- in the browser ----------------------------------------------------------------------
@pytest.fixture()
def tab(browser: Any) -> Iterator[tuple[Any, list[str]]]:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    yield page, problems
    page.close()


def test_search_in_the_browser_finds_a_receipt(world: World, tab: tuple[Any, list[str]]) -> None:
    page, problems = tab
    first = world.issued[0]
    page.goto(world.running.url + "/explore/receipts")
    page.fill("#q", first["receipt_digest"])
    page.press("#q", "Enter")
    page.wait_for_url(re.compile(r"/explore/receipts\?q="))
    page.click(f"a[href='/explore/log/entries/{first['log_index']}']")
    page.wait_for_url(re.compile(rf"/explore/log/entries/{first['log_index']}$"))
    assert "sha256:" in page.inner_text("main")
    # And by bundle id, to the receipt with the node's check table.
    page.goto(world.running.url + "/explore/receipts")
    page.fill("#q", first["bundle_id"])
    page.press("#q", "Enter")
    page.click(f"a[href='/explore/receipts/{first['bundle_id']}']")
    assert "passed" in page.inner_text("main")
    assert problems == []


@pytest.mark.parametrize("width", sorted(WIDTHS))
def test_every_page_loads_clean_and_is_photographed(
    world: World,
    browser: Any,
    width: str,
) -> None:
    w, h = WIDTHS[width]
    page = browser.new_page(viewport={"width": w, "height": h})
    problems: list[str] = []
    page.on(
        "console", lambda m: problems.append(f"{m.type}: {m.text}") if m.type == "error" else None
    )
    page.on("pageerror", lambda e: problems.append(str(e)))
    failed: list[str] = []
    page.on("requestfailed", lambda r: failed.append(r.url))
    SHOTS.mkdir(parents=True, exist_ok=True)
    for i, path in enumerate(_pages(world)):
        response = page.goto(world.running.url + path)
        assert response is not None and response.status == 200, path
        page.wait_for_load_state("networkidle")
        # Stable names (ids and digests vary from run to run): each run replaces the last.
        stable = re.sub(r"(sha256:)?[0-9a-f]{16,}", "id", path.lower())
        shot = SHOTS / f"{width}-{i:02d}-{re.sub(r'[^a-z0-9]+', '-', stable).strip('-')}.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 2000, shot  # a rendered page, not an empty image
        assert page.evaluate("document.documentElement.scrollWidth") <= w, (path, width)
    assert problems == [] and failed == [], (problems, failed)
    page.close()
    assert len(list(SHOTS.glob(f"{width}-[0-9][0-9]-*.png"))) >= len(_pages(world))


def test_a_receipt_link_is_fetched_and_verified_in_the_browser(
    world: World, tab: tuple[Any, list[str]]
) -> None:
    page, problems = tab
    first = world.issued[0]
    page.goto(world.running.url + f"/explore/receipts/{quote(first['bundle_id'])}")
    page.click(f"a[href='/explore/verify?bundle={first['bundle_id']}']")
    page.wait_for_url(re.compile(r"/explore/verify\?bundle="))
    # Nothing pinned in this new browser context: the node's own signature is not trusted.
    verdict = page.locator("#verdict", has_text="in this browser")
    verdict.wait_for()
    assert page.inner_text("#verdict") == "NOT verified in this browser: signature failed."
    page.click("#pin-node")
    page.locator("#pinned td", has_text="sha256:").wait_for()
    page.reload()
    page.locator("#verdict", has_text="Verified in this browser").wait_for()
    # A pasted link (the receipt page's address) is fetched from this node and checked.
    page.fill("#link", world.running.url + f"/explore/receipts/{first['bundle_id']}")
    page.click("#by-link button")
    page.locator("#verdict", has_text="Verified in this browser").wait_for()
    # Another origin, or no bundle id, is refused before anything is fetched.
    for bad in ("https://example.com/v1/bundles/" + "a" * 24, "/explore/log", "::"):
        page.fill("#link", bad)
        page.click("#by-link button")
        page.locator("#verdict", has_text="not a").wait_for()
    page.fill("#link", "/v1/bundles/" + "0" * 24)
    page.click("#by-link button")
    page.locator("#verdict", has_text="answered 404").wait_for()
    assert all("404" in p for p in problems), problems  # only the refused fetch's own log


def test_the_chart_bundle_and_its_licence_are_served(world: World) -> None:
    for name, kind in (("charts.js", "text/javascript"), ("uplot-LICENSE.txt", "text/plain")):
        response = world.get(f"/explore/static/{name}")
        assert response.status_code == 200 and response.headers["content-type"].startswith(kind)
    assert "MIT License" in world.get("/explore/static/uplot-LICENSE.txt").text
