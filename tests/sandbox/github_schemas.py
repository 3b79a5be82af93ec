"""GitHub's official OpenAPI description (``@octokit/openapi``) and webhook schemas
(``@octokit/openapi-webhooks``), from ``node_modules/`` at the repo root (``npm ci``), as
``jsonschema`` validators.

The REST description is OpenAPI 3.0 (``nullable: true``), so it is rewritten once into JSON Schema
2020-12 (``type: [T, "null"]``); the webhook description is OpenAPI 3.1 and used as it is.
Without the packages, tests skip with the install command — except under ``CI=true``, where they
fail, so CI never silently skips them.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest

OCTOKIT = Path(__file__).resolve().parents[2] / "node_modules" / "@octokit"
REST_SPEC = OCTOKIT / "openapi" / "generated" / "api.github.com.json"
WEBHOOK_SPEC = OCTOKIT / "openapi-webhooks" / "generated" / "api.github.com.json"
REST_URI, WEBHOOK_URI = "urn:github:rest", "urn:github:webhooks"


def require_specs() -> None:
    """Skip (fail under ``CI=true``) unless the npm schemas and ``jsonschema`` are installed."""
    missing = [str(p) for p in (REST_SPEC, WEBHOOK_SPEC) if not p.is_file()]
    reason = (
        f"GitHub's OpenAPI/webhook schemas are not installed ({', '.join(missing)}); "
        "run `npm ci` at the repo root"
    )
    if not missing:
        try:
            import jsonschema  # noqa: F401
        except ImportError:
            reason = "jsonschema is not installed (pip install jsonschema)"
        else:
            return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def _nullable_to_type(node: Any) -> Any:
    """OpenAPI 3.0 ``nullable: true`` → JSON Schema ``null`` alternatives, recursively."""
    if isinstance(node, list):
        return [_nullable_to_type(n) for n in node]
    if not isinstance(node, dict):
        return node
    node = {k: _nullable_to_type(v) for k, v in node.items()}
    if node.pop("nullable", False) is True:
        if isinstance(node.get("type"), str):
            node["type"] = [node["type"], "null"]
            if "enum" in node:
                node["enum"] = [*node["enum"], None]
        else:
            return {"anyOf": [node, {"type": "null"}]}
    return node


@lru_cache(maxsize=1)
def _registry() -> tuple[Any, dict[str, Any], dict[str, Any]]:
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    rest = _nullable_to_type(json.loads(REST_SPEC.read_text()))
    hooks = json.loads(WEBHOOK_SPEC.read_text())
    registry = Registry().with_resources(
        [
            (REST_URI, Resource.from_contents(rest, default_specification=DRAFT202012)),
            (WEBHOOK_URI, Resource.from_contents(hooks, default_specification=DRAFT202012)),
        ]
    )
    return registry, rest, hooks


def _pointer(*parts: str) -> str:
    return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in parts)


def _errors(uri: str, pointer: str, instance: Any) -> list[str]:
    from jsonschema import Draft202012Validator

    registry = _registry()[0]
    validator = Draft202012Validator({"$ref": f"{uri}#{pointer}"}, registry=registry)
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message[:300]}"
        for e in sorted(validator.iter_errors(instance), key=lambda e: list(e.path))
    ][:10]


def response_errors(template: str, method: str, status: int, body: Any) -> list[str]:
    """Problems of ``body`` against the documented ``status`` answer of ``method template``."""
    _, rest, _ = _registry()
    response = rest["paths"][template][method.lower()]["responses"][str(status)]
    pointer = _pointer("paths", template, method.lower(), "responses", str(status))
    if "$ref" in response:
        pointer = response["$ref"].removeprefix("#")
        response = rest["components"]["responses"][pointer.rsplit("/", 1)[-1]]
    assert "application/json" in response.get("content", {}), f"{template}: no JSON answer"
    return _errors(REST_URI, pointer + _pointer("content", "application/json", "schema"), body)


def webhook_errors(name: str, payload: Any) -> list[str]:
    """Problems of ``payload`` against webhook ``name`` (e.g. ``pull-request-opened``)."""
    _, _, hooks = _registry()
    schema = hooks["webhooks"][name]["post"]["requestBody"]["content"]["application/json"]["schema"]
    return _errors(WEBHOOK_URI, schema["$ref"].removeprefix("#"), payload)
