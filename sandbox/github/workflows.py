"""Workflow files (``.github/workflows/*.yml``): triggers, declared inputs and ``run-name``.

Only what the forge itself needs is read: ``name``, ``run-name``, ``on.workflow_dispatch.inputs``,
``on.repository_dispatch.types`` and whether ``on`` has ``deployment``. Jobs are not interpreted; a
run's outcome is scripted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

WORKFLOW_DIR = ".github/workflows/"
MAX_INPUTS = 25
_EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


@dataclass
class WorkflowFile:
    path: str
    name: str
    run_name: str | None = None
    triggers: dict[str, Any] = field(default_factory=dict)
    valid: bool = True

    @property
    def file_name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def dispatchable(self) -> bool:
        return "workflow_dispatch" in self.triggers

    @property
    def inputs(self) -> dict[str, dict[str, Any]]:
        spec = self.triggers.get("workflow_dispatch") or {}
        inputs = spec.get("inputs") if isinstance(spec, dict) else None
        return {str(k): (v if isinstance(v, dict) else {}) for k, v in (inputs or {}).items()}

    @property
    def on_deployment(self) -> bool:
        return "deployment" in self.triggers

    def accepts_repository_dispatch(self, event_type: str) -> bool:
        if "repository_dispatch" not in self.triggers:
            return False
        spec = self.triggers["repository_dispatch"]
        types = spec.get("types") if isinstance(spec, dict) else None
        if isinstance(types, str):
            types = [types]
        return not types or event_type in types


def is_workflow_path(path: str) -> bool:
    return (path.startswith(WORKFLOW_DIR) and "/" not in path[len(WORKFLOW_DIR):]
            and path.endswith((".yml", ".yaml")))


def parse(path: str, text: str) -> WorkflowFile:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        data = None
    if not isinstance(data, dict):
        return WorkflowFile(path, path, valid=False)
    on = data.get("on", data.get(True))  # YAML 1.1 reads a bare `on:` key as True
    triggers: dict[str, Any]
    if isinstance(on, str):
        triggers = {on: None}
    elif isinstance(on, list):
        triggers = {str(t): None for t in on}
    elif isinstance(on, dict):
        triggers = {str(k): v for k, v in on.items()}
    else:
        triggers = {}
    run_name = data.get("run-name")
    return WorkflowFile(path, str(data.get("name") or path), None if run_name is None
                        else str(run_name), triggers)


def check_inputs(workflow: WorkflowFile, given: dict[str, Any]) -> dict[str, Any]:
    """The run's inputs (given values over declared defaults); ``ValueError`` with GitHub's 422
    message when they do not fit the workflow."""
    if len(given) > MAX_INPUTS:
        raise ValueError(f"Invalid request.\n\nNo more than {MAX_INPUTS} properties are allowed; "
                         f"{len(given)} were supplied.")
    declared = workflow.inputs
    unexpected = [k for k in given if k not in declared]
    if unexpected:
        raise ValueError("Unexpected inputs provided: " + "[" + ", ".join(
            f'"{k}"' for k in unexpected) + "]")
    values: dict[str, Any] = {}
    for name, spec in declared.items():
        if name in given:
            values[name] = given[name]
        elif spec.get("default") is not None:
            values[name] = spec["default"]
        elif spec.get("required"):
            raise ValueError(f"Required input '{name}' not provided")
        options = spec.get("options")
        if name in values and spec.get("type") == "choice" and options and \
                str(values[name]) not in [str(o) for o in options]:
            raise ValueError(f"Provided value '{values[name]}' for input '{name}' not in the list "
                             "of allowed values")
    return values


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def render(template: str, context: dict[str, Any]) -> str:
    """Substitute ``${{ inputs.X }}``, ``${{ github.event.inputs.X }}``,
    ``${{ github.event.client_payload.X }}``, ``${{ github.event.deployment.payload.X }}``,
    ``${{ github.event.deployment.environment }}``, ``${{ github.ref_name }}`` … — any dotted
    path into the context (unknown → empty)."""

    def lookup(m: re.Match[str]) -> str:
        node: Any = context
        for part in m.group(1).split("."):
            if not isinstance(node, dict) or part not in node:
                return ""
            node = node[part]
        return _text(node)

    return _EXPR.sub(lookup, template)
