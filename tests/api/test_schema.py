"""The OpenAPI schema at /api/schema/, the docs page at /api/docs/, and a schemathesis run
against the schema through the WSGI app (as an admin, so every operation is reachable) that must
find no server error and no answer outside the schema."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from chains.models import Chain, Repository, Run
from config.wsgi import application
from tests import factories as f
from tests.api.conftest import People, World

EXAMPLES = 25  # per operation; the whole run stays well under a minute

ROWS: dict[str, type[Chain | Run | Repository]] = {
    "/api/v1/chains/": Chain,
    "/api/v1/runs/": Run,
    "/api/v1/repositories/": Repository,
}

OPERATIONS = {
    ("get", "/api/v1/chains/"),
    ("get", "/api/v1/chains/{id}/"),
    ("post", "/api/v1/chains/{id}/cancel/"),
    ("post", "/api/v1/chains/{id}/retry-failed/"),
    ("post", "/api/v1/chains/{id}/rerun/"),
    ("get", "/api/v1/runs/"),
    ("get", "/api/v1/runs/{id}/"),
    ("post", "/api/v1/runs/{id}/retry/"),
    ("post", "/api/v1/runs/{id}/retry-subtree/"),
    ("post", "/api/v1/runs/{id}/cancel/"),
    ("get", "/api/v1/repositories/"),
    ("get", "/api/v1/repositories/{id}/"),
    ("get", "/api/v1/repositories/{id}/health/"),
    ("get", "/api/v1/health/"),
}


def test_the_schema_lists_every_operation(db: None) -> None:
    schema = APIClient().get("/api/schema/", {"format": "json"}).json()
    assert schema["openapi"].startswith("3.")
    found = {(method, path) for path, item in schema["paths"].items() for method in item}
    assert found == OPERATIONS
    chains = schema["paths"]["/api/v1/chains/"]["get"]
    names = {p["name"] for p in chains["parameters"]}
    assert names >= {"project", "forge", "change", "status", "target_branch", "search"}
    assert names >= {"created_after", "created_before", "page", "page_size"}
    retry = schema["paths"]["/api/v1/runs/{id}/retry/"]["post"]
    assert set(retry["responses"]) == {"202", "401", "403", "404", "409"}
    assert set(schema["components"]["securitySchemes"]) == {"tokenAuth", "cookieAuth"}


def test_the_docs_page_lists_the_operations_without_anything_from_outside(db: None) -> None:
    page = APIClient().get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    for _, path in OPERATIONS:
        assert path in html
    assert "create_api_token" in html
    assert "<script" not in html and "cdn" not in html.lower()
    assert '<a href="/">Back to the dashboard</a>' in html  # a way back to the app


@pytest.fixture
def admin_token(world: World, people: People) -> str:
    # More to find: a chain with a runs tree, a failed and a canceled run, a push chain.
    chain = f.chain("acme/app", status="failed")
    root = f.run(chain, "root", status="failed")
    f.run(chain, "leaf", parent=root, status="canceled")
    f.chain("acme/app", number=None)
    admin = people.users["admin"]
    assert admin is not None
    return f.token(admin)


def _strategy(operation: Any, mode: GenerationMode) -> Any:
    """Cases for ``operation``; where its path has an id, half of them name an existing row
    (random ids alone would nearly always be 404)."""
    generated = operation.as_strategy(generation_mode=mode)
    model = next((m for prefix, m in ROWS.items() if operation.path.startswith(prefix)), None)
    if model is None or "{id}" not in operation.path:
        return generated
    ids = sorted(model.objects.values_list("pk", flat=True))
    existing = [operation.as_strategy(generation_mode=mode, path_parameters={"id": i}) for i in ids]
    return st.one_of(generated, *existing)


@pytest.fixture
def keep_connections() -> Any:
    """Requests go through the real WSGI handler, whose request signals close a connection that
    is inside a transaction - the test's. Keep it open, as Django's test client does."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def test_the_api_keeps_to_its_schema(
    admin_token: str, django_capture_on_commit_callbacks: Any, keep_connections: None
) -> None:
    """Every operation, with examples generated from the schema (bounded, derandomized).

    Valid requests pass all of schemathesis's checks: no 5xx, documented status codes and
    content types, bodies matching the schema, valid data not rejected. Invalid requests
    (negative mode: wrong types, values out of range, malformed parameters) must never cause a
    server error. Actions run for real (as the admin), with their after-commit work captured.

    (Schemathesis's pytest loader, ``from_fixture``, breaks on pytest 9's nodes, so the
    operations are driven with its Python API and Hypothesis directly.)"""
    api = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)
    # NUL characters are refused with a 400 in words on purpose (docs/security.md, "Bounded
    # input"): PostgreSQL cannot store them; valid data here is data without them.
    api.config.generation.update(allow_x00=False)
    headers = {"Authorization": f"Token {admin_token}"}
    checked = []
    answers: Counter[int] = Counter()
    for result in api.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]
        for mode, examples, checks in (
            (GenerationMode.POSITIVE, EXAMPLES, None),
            (GenerationMode.NEGATIVE, EXAMPLES // 2, [not_a_server_error]),
        ):

            @given(case=_strategy(operation, mode))
            @settings(
                max_examples=examples,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def check(case: Any) -> None:
                with django_capture_on_commit_callbacks(execute=False):  # actions send nothing
                    response = case.call_and_validate(headers=headers, checks=checks)  # noqa: B023
                answers[response.status_code] += 1

            check()
        checked.append((operation.method.lower(), operation.path))
    assert set(checked) == OPERATIONS
    # It reached rows, lists, accepted and refused actions, and bad parameters.
    assert {200, 202, 400, 404, 409} <= set(answers), answers
