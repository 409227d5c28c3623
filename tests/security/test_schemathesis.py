"""API fuzzing (issue 6, item 5): schemathesis against the OpenAPI schema, in process.

Every operation of /api/v1/schema/ gets ``FUZZ_EXAMPLES`` generated requests (valid and invalid
data), sent to the real WSGI application with the credentials of the actor the operation is for
(health worker by default; pharmacist, hospital staff or kiosk for their actions), against a world
of two organisations (tests/security/matrix.py). Checks: no 5xx, the status code and content type
are documented, the body matches the documented schema, and auth is not ignored (schemathesis
resends each request without credentials and with invalid ones: it must be refused). Then a stateful
run chains operations through links inferred from the schema.

``FUZZ_EXAMPLES`` (default 100) sets the examples per operation: the larger documented run is
``pytest tests/security/test_schemathesis.py -m slow --run-slow`` (FUZZ_EXAMPLES_LARGE, default 1000); see
docs/reliability.md, "API fuzzing".
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from django.test import override_settings
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.security import matrix

pytestmark = pytest.mark.django_db

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "100"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    ignored_auth,
]
HYPOTHESIS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=True,  # the same cases on every run: a CI failure can be replayed
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.generate],
)

# Operations whose actor is not the health worker (matched on the path).
PHARMACIST_PATHS = ("/approve/", "/reject/")
STAFF_PATHS = ("/accept/", "/decline/", "/attended/", "/no-show/", "/complete/")


@pytest.fixture(autouse=True)
def _media_in_tmp() -> None:
    """The module's world keeps its media folder (see fuzz_world)."""


@pytest.fixture(scope="module")
def fuzz_world(django_db_setup, django_db_blocker, tmp_path_factory):
    media = tmp_path_factory.mktemp("fuzz-media")
    # The WSGI handler closes the connection at the end of each request when it is inside a
    # transaction (close_old_connections); Django's test client unhooks it the same way.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    with override_settings(MEDIA_ROOT=media), django_db_blocker.unblock():
        atomic = transaction.atomic()
        atomic.__enter__()
        try:
            yield matrix.build_world()
        finally:
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)
            request_started.connect(close_old_connections)
            request_finished.connect(close_old_connections)


def _load_schema() -> schemathesis.BaseSchema:
    """The schema drf-spectacular serves at /api/v1/schema/, generated in process (no request, so
    no database access at collection time), bound to the WSGI application."""
    import json

    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.renderers import OpenApiJsonRenderer

    from config.wsgi import application

    raw = SchemaGenerator().get_schema(request=None, public=True)
    loaded = schemathesis.openapi.from_dict(json.loads(OpenApiJsonRenderer().render(raw)))
    loaded.app = application
    loaded.location = "/api/v1/schema/"
    return loaded


schema = _load_schema()


def auth_headers(world: dict, path: str) -> dict[str, str]:
    if path.startswith("/api/v1/kiosk/"):
        return {"Authorization": world["kiosk_auth"]}
    if path == "/api/v1/auth/token/":
        return {}
    if path.startswith("/api/v1/prescriptions/") and path.endswith(PHARMACIST_PATHS):
        actor = "pharmacist"
    elif path.startswith("/api/v1/referrals/") and path.endswith(STAFF_PATHS):
        actor = "staff_a"
    else:
        actor = "hw_a"
    return {"Authorization": f"Token {world['tokens'][actor]}"}


@schema.parametrize()
@HYPOTHESIS
def test_api_conforms_and_never_fails(case, fuzz_world) -> None:
    headers = auth_headers(fuzz_world, case.operation.path)
    response = case.call(headers=headers)
    case.validate_response(response, checks=CHECKS, headers=headers)


@pytest.mark.slow
@schema.parametrize()
@settings(HYPOTHESIS, max_examples=int(os.environ.get("FUZZ_EXAMPLES_LARGE", "1000")))
def test_api_large_run(case, fuzz_world) -> None:
    """The documented larger run (make test-long): 1,000 examples per operation."""
    headers = auth_headers(fuzz_world, case.operation.path)
    response = case.call(headers=headers)
    case.validate_response(response, checks=CHECKS, headers=headers)


def test_stateful_workflows(fuzz_world) -> None:
    """Stateful phase: sequences of calls chained by the links schemathesis infers from the schema
    (an id returned by one operation fed to the next: create a patient, then read it; list
    referrals, then act on one ...), each response checked as above."""
    base = schema.as_state_machine()

    class Workflow(base):
        def get_call_kwargs(self, case):
            return {"headers": auth_headers(fuzz_world, case.operation.path)}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            case.validate_response(
                response, checks=CHECKS, headers=auth_headers(fuzz_world, case.operation.path)
            )

    Workflow.run(
        settings=settings(
            max_examples=int(os.environ.get("FUZZ_STATEFUL_EXAMPLES", "30")),
            stateful_step_count=6,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
    )


@pytest.mark.parametrize(
    "path,status",
    [
        ("/api/v1/screenings/?status=%00", 400),  # NUL reached PostgreSQL: was a 500
        ("/api/v1/screenings/?status=nonsense", 400),
        ("/api/v1/patients/?q=a%00b", 400),  # same
        ("/api/v1/prescriptions/-1/", 404),  # no URL pattern: was Django's HTML 404 page
        ("/api/v1/prescriptions/?offset=9223372036854775808", 400),  # past bigint: was a 500
        # 1,000-example run (session 2): a limit past bigint reached PostgreSQL, a 500
        ("/api/v1/screenings/?limit=1550444755736997268553728", 200),
        ("/api/v1/patients/?limit=1550444755736997268553728", 200),
        ("/api/v1/referrals/?limit=1550444755736997268553728", 200),
        ("/api/v1/no-such-endpoint/", 404),
    ],
)
def test_fuzzing_findings_stay_fixed(fuzz_world, path, status) -> None:
    from django.test import Client

    response = Client().get(path, HTTP_AUTHORIZATION=f"Token {fuzz_world['tokens']['hw_a']}")
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")


def test_an_unreadable_body_is_a_documented_415(fuzz_world) -> None:
    """1,000-example run (session 2): a multipart body whose boundary does not parse gets DRF's
    415, which no operation documented. Every operation with a body now documents 415."""
    from django.test import Client

    # The fuzzer's request reached DRF with an empty media type; any type no parser reads does.
    response = Client().post("/api/v1/auth/token/", data=b"x", content_type="text/plain")
    assert response.status_code == 415
    operations = schema.raw_schema["paths"]
    with_body = [
        (path, method)
        for path, item in operations.items()
        for method, operation in item.items()
        if isinstance(operation, dict) and "requestBody" in operation
    ]
    assert with_body and all(
        "415" in operations[path][method]["responses"] for path, method in with_body
    )
