"""``Client(images=...)``: a node on loopback running from a logged image passes the
client's ``require_logged_image`` policy; the same answer without that image entry is
refused. The entries are given as verified ``LoggedImage`` values: loading them from a
signed, logged entry is tested in test_logged.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import inferproof.attest._software as software
from inferproof import Client
from inferproof.errors import VerificationError
from inferproof.image import ImageEntry
from inferproof.testing import mlp_model
from inferproof.verify import LoggedImage, LoggedImages, Policy
from tests.node.conftest import pushed, start

IMAGE = "sha256:" + "3c" * 32


@pytest.fixture()
def node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    monkeypatch.setenv("INFERPROOF_IMAGE", IMAGE)
    software.software_measurement.cache_clear()  # read once per process
    running = start(tmp_path / "node")
    pushed(running, mlp_model((8, 16, 2)))
    yield running
    running.stop()
    monkeypatch.undo()
    software.software_measurement.cache_clear()


def _images(digest: str) -> LoggedImages:
    entry = ImageEntry(digest, "publisher-1", "abc", "full", "sha256:00", 190, {})
    return LoggedImages([LoggedImage(entry, 3, "log.example/test")])


def test_the_client_accepts_a_logged_image_and_refuses_another(node: object,
                                                               tmp_path: Path) -> None:  # fmt: skip
    x = {"x": np.full((1, 8), 0.5, np.float32).tolist()}
    policy = Policy(require_logged_image=True)
    trust = node.node.trust_root()  # type: ignore[attr-defined]
    url, token = node.url, node.token  # type: ignore[attr-defined]
    with Client(url, token, policy, trust, home=tmp_path / "c1", images=_images(IMAGE)) as c:
        answer = c.infer("mlp:1", x)
    env = next(ch for ch in answer.report.checks if ch.name == "environment")
    assert env.passed and f"image {IMAGE} (logged at index 3 of log.example/test" in env.detail
    other = _images("sha256:" + "4d" * 32)
    with Client(url, token, policy, trust, home=tmp_path / "c2", images=other) as c, \
            pytest.raises(VerificationError, match="in no image entry this verifier trusts"):  # fmt: skip
        c.infer("mlp:1", x)
