"""Schemathesis over the API's own OpenAPI schema, against the real server with an admin
token: no 500, and no answer that breaks the schema (status, content type, body).

Each operation gets a few examples (``EXAMPLES``) so that the suite stays fast. Long polls
are asked not to wait (``wait=0``). (Schemathesis's pytest plugin does not load under this
pytest, so each operation's strategy is driven by hypothesis here.)
"""

from __future__ import annotations

import os
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.server.conftest import Served

EXAMPLES = int(os.environ.get("PARDAG_FUZZ_EXAMPLES", "12"))
"""Examples per operation and backend (``PARDAG_FUZZ_EXAMPLES=500`` for a long hunt)."""
EXCLUDED = [positive_data_acceptance]
"""A request the schema admits may still be refused for what it means (a definition that is
no workflow, a cursor this API never gave: a 422 or a 400 saying so); every other check runs."""


def _check(operation: Any, token: str) -> None:
    @given(case=operation.as_strategy())
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
    def check(case: Any) -> None:
        if case.query and "wait" in case.query:
            case.query["wait"] = 0
        headers = {"Authorization": f"Bearer {token}"}
        case.call_and_validate(headers=headers, excluded_checks=EXCLUDED)

    check()


def test_the_api_keeps_to_its_schema(served: Served) -> None:
    schema = schemathesis.openapi.from_url(f"{served.url}/api/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 14  # the schema lists every route
    failed = {}
    for operation in operations:
        try:
            _check(operation, served.tokens["admin"])
        except (Exception, BaseExceptionGroup) as exc:  # try all; report every failure
            failed[operation.label] = str(exc)[:1500]
    assert failed == {}, "\n\n".join(f"{k}: {v}" for k, v in failed.items())
