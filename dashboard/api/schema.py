"""Touches to the generated OpenAPI schema (``SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]``)."""

from __future__ import annotations

from typing import Any


def path_ids_are_whole_numbers(result: dict[str, Any], **_: Any) -> dict[str, Any]:
    """Ids in paths are routed by Django's ``int`` converter, which takes digits only: say so,
    so that clients (and schemathesis) do not send ids that no route matches."""
    for item in result.get("paths", {}).values():
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                schema = parameter.get("schema", {})
                if parameter.get("in") == "path" and schema.get("type") == "integer":
                    schema["minimum"] = 0
    return result
