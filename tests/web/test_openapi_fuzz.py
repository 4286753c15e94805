"""The hub's OpenAPI document is valid and served; fuzzing every operation never gets a 5xx.

Schemathesis generates requests from ``schemas/v1/hub.openapi.yaml``, valid ones and invalid
ones, calls the Flask app in-process, and checks that no answer is a server error and that
every answer has a status and a body the document describes. The example count is bounded so
that the suite stays fast. (Operations are driven through Hypothesis directly: schemathesis'
pytest fixture loader does not work with this pytest version.)
"""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import (content_type_conformance, not_a_server_error,
                                 response_schema_conformance, status_code_conformance)
from schemathesis.generation.modes import GenerationMode

from hub.web.app import create_app
from webkit import authenticator, bearer, staff_tokens

EXAMPLES = 12


@schemathesis.serializer("application/pdf", "image/jpeg", "image/png")
def _document_bytes(ctx, value):
    # Documents go as raw bytes; generated values may be text or bytes.
    return value if isinstance(value, bytes) else str(value).encode("utf-8")

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_operation_answers_with_a_server_error(hub, mode):
    app = create_app(hub, authenticate=authenticator(staff_tokens()))
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 13
    for operation in operations:
        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def exercise(case):
            case.call_and_validate(checks=CHECKS, headers=bearer("central"))

        try:
            exercise()
        except Unsatisfiable:
            # Nothing in this operation can be made invalid (e.g. no parameter, no body).
            assert mode is GenerationMode.NEGATIVE


def test_the_document_is_served_and_describes_every_intake_route(client):
    document = client.get("/api/v1/openapi.json").get_json()
    assert document["openapi"].startswith("3.1")
    paths = set(document["paths"])
    assert {"/api/v1/services/{service}/requests", "/api/v1/attachments",
            "/api/v1/cases/{reference}", "/api/v1/cases/{reference}/answers",
            "/api/v1/cases/{reference}/withdrawal"} <= paths
