"""The chat operations of the OpenAPI document match what the server does, with a
chat model to answer (schemathesis, bounded)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings

from ._chat import serving, tiny_gguf
from .conftest import Running
from .test_openapi import CHECKS

# Examples per operation: the generated bodies reach the parser's refusals, the
# model lookup and, with the model name set to the served one, real answers.
EXAMPLES = 40
CHAT_OPS = {("POST", "/v1/chat/completions"), ("POST", "/v1/completions"), ("GET", "/v1/models")}


def test_chat_operations_conform(make_node: Callable[..., Running]) -> None:
    running = serving(make_node, tiny_gguf())
    schema = schemathesis.openapi.from_url(f"{running.url}/openapi.json")
    operations = [r.ok() for r in schema.get_all_operations()]
    chat_ops = [op for op in operations if (op.method.upper(), op.path) in CHAT_OPS]
    assert {(op.method.upper(), op.path) for op in chat_ops} == CHAT_OPS
    # One GET /v1/models: the chat router's replaced the hub-only listing.
    assert sum(op.path == "/v1/models" and op.method.upper() == "GET" for op in operations) == 1
    auth = {"Authorization": f"Bearer {running.token}"}
    answered: list[int] = []

    for operation in chat_ops:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def conforms(case: Any) -> None:
            body = case.body
            if isinstance(body, dict) and len(answered) % 2 == 0:
                # Half the bodies name the served model, so answers are checked too.
                body["model"] = "tiny"
            response = case.call_and_validate(base_url=running.url, headers=auth, checks=CHECKS)
            answered.append(response.status_code)

        conforms()
    assert 200 in answered and 400 in answered and 404 in answered
    with running.http() as http:
        assert http.get("/healthz").status_code == 200
