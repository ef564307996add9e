"""OpenAI's ``developer`` role: accepted, and normalised to ``system`` in the canonical
request (see runtime/_llm_request.py, CANONICAL_ROLES, for why)."""

from __future__ import annotations

import pytest

from inferproof.errors import InputError
from inferproof.runtime import ROLES, ChatRequest, parse_request

MODEL = "sha256:" + "ab" * 32


def _body(*roles: str) -> dict[str, object]:
    return {"model": "tiny", "messages": [{"role": r, "content": r.upper()} for r in roles]}


def test_developer_becomes_system_in_the_canonical_request() -> None:
    dev = parse_request(_body("developer", "user", "assistant", "user"), "chat").request
    assert dev.messages == (
        ("system", "DEVELOPER"), ("user", "USER"), ("assistant", "ASSISTANT"), ("user", "USER"),
    )  # fmt: skip
    body = _body("system", "user", "assistant", "user")
    body["messages"][0]["content"] = "DEVELOPER"  # type: ignore[index]
    system = parse_request(body, "chat").request
    # The same answer by construction, so the same canonical request and digest.
    assert dev.bind(MODEL, max_tokens=8).digest == system.bind(MODEL, max_tokens=8).digest
    assert "developer" in ROLES


def test_a_canonical_request_naming_developer_is_refused() -> None:
    """A canonical request is normalised: a bundle saying ``developer`` was not made here
    (and would render differently from what the node rendered)."""
    canonical = parse_request(_body("developer", "user"), "chat").request.bind(MODEL, max_tokens=8)
    obj = canonical.to_json()
    assert ChatRequest.from_json(obj) == canonical
    obj["messages"][0]["role"] = "developer"
    with pytest.raises(
        InputError, match=r"messages\[0\]\.role must be one of system, user, assistant"
    ):
        ChatRequest.from_json(obj)


def test_other_roles_are_still_refused_and_the_message_lists_developer() -> None:
    with pytest.raises(
        InputError, match=r"must be one of system, developer, user, assistant \(got 'tool'\)"
    ):
        parse_request(_body("tool"), "chat")
