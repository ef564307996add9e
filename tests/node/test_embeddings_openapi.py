"""``POST /v1/embeddings`` in the OpenAPI document matches what the server does, with an
embedding model to answer (schemathesis, bounded)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode

from ._chat import serving, tiny_gguf
from .conftest import Running
from .test_openapi import CHECKS

# Valid and invalid bodies: they reach the parser's refusals, the model lookup and,
# with the model name set to the served one, real answers (checked against the
# documented shape).
EXAMPLES = 40


def test_the_embeddings_operation_conforms(make_node: Callable[..., Running]) -> None:
    running = serving(make_node, tiny_gguf())
    schema = schemathesis.openapi.from_url(f"{running.url}/openapi.json")
    operations = [r.ok() for r in schema.get_all_operations()]
    (operation,) = [op for op in operations if op.path == "/v1/embeddings"]
    assert operation.method.upper() == "POST"
    auth = {"Authorization": f"Bearer {running.token}"}
    answered: list[int] = []

    cases = operation.as_strategy() | operation.as_strategy(GenerationMode.NEGATIVE)

    @given(case=cases)
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
            body["model"] = "tiny"  # half the bodies name the served model
        response = case.call_and_validate(base_url=running.url, headers=auth, checks=CHECKS)
        answered.append(response.status_code)

    conforms()
    assert 200 in answered and 400 in answered and 404 in answered
