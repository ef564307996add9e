"""The OpenAPI document matches what the running server does (schemathesis, bounded)."""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from .conftest import Running, pushed

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
# Examples per operation: enough to reach every error path of each, small enough
# that the whole run stays within a few seconds per operation.
EXAMPLES = 20


def test_every_operation_conforms(running: Running, small_model: bytes) -> None:
    pushed(running, small_model)
    with running.http() as http:  # something in the log, a bundle and a job to read
        http.post("/v1/infer", json={"model": "mlp:1", "inputs": {"x": [[0.0] * 8]}})
    schema = schemathesis.openapi.from_url(f"{running.url}/openapi.json")
    auth = {"Authorization": f"Bearer {running.token}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    paths = {op.path for op in operations}
    assert {
        "/v1/infer",
        "/v1/models",
        "/v1/log/checkpoint",
        "/v1/jobs/{job_id}",
        "/healthz",
    } <= paths

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def conforms(case: Any) -> None:
            case.call_and_validate(base_url=running.url, headers=auth, checks=CHECKS)

        conforms()
    with running.http() as http:
        assert http.get("/healthz").status_code == 200
