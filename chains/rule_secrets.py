"""Masked variables of admin rules: their values are kept apart from the rule's text, encrypted
(``Rule.secrets``), and the text shows MASK in their place; planning puts them back.

A value is found by where it is: ``variables.NAME`` for a rule's own variables,
``downstream.KEY.variables.NAME`` for a target's.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from chains import limits
from chains.config import BatonConfig, ConfigError, Variable, _default_key, parse_config
from chains.masking import MASK


@dataclass(frozen=True)
class _Found:
    where: str  # the locator
    field: str  # for error messages
    node: Node
    masked: bool


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def _pairs(node: Node) -> dict[str, tuple[Node, Node]]:
    if not isinstance(node, MappingNode):
        return {}
    return {str(k.value): (k, v) for k, v in node.value if isinstance(k, ScalarNode)}


def _variables(node: Node, where: str, field: str) -> list[_Found]:
    found = []
    for name, (_, value) in _pairs(node).items():
        spec = _pairs(value)
        if "value" not in spec:
            continue
        masked = "masked" in spec and str(spec["masked"][1].value).lower() in {"true", "yes", "on"}
        found.append(_Found(f"{where}.{name}", f"{field}.{name}.value", spec["value"][1], masked))
    return found


def _all_variables(root: Node) -> list[_Found]:
    top = _pairs(root)
    found = _variables(top["variables"][1], "variables", "variables") if "variables" in top else []
    downstream = top.get("downstream", (None, None))[1]
    if isinstance(downstream, SequenceNode):
        for i, item in enumerate(downstream.value):
            fields = _pairs(item)
            if "variables" not in fields:
                continue
            key_node = fields.get("key", (None, None))[1]
            project_node = fields.get("project", (None, None))[1]
            key = (
                str(key_node.value)
                if isinstance(key_node, ScalarNode) and key_node.value
                else _default_key(str(getattr(project_node, "value", "")).strip())
            )
            found += _variables(
                fields["variables"][1], f"downstream.{key}.variables", f"downstream[{i}].variables"
            )
    return found


def _destinations(text: str) -> dict[str, tuple[object, ...]]:
    """Where each target of a rule sends its variables: project, ref, workflow, environment."""
    try:
        config = parse_config(text, standalone=False)
    except ConfigError:
        return {}
    return {t.key: (t.project, t.ref, t.workflow, t.deploy, t.mode) for t in config.downstream}


def _moved(
    where: str, before: dict[str, tuple[object, ...]], now: dict[str, tuple[object, ...]]
) -> bool:
    """Whether the targets a value at ``where`` reaches are not those it reached before."""
    if where.startswith("variables."):
        return before != now  # a rule's own variables reach every target it names
    key = where[len("downstream.") :].rsplit(".variables.", 1)[0]
    return key not in before or before.get(key) != now.get(key)


def seal(
    text: str,
    stored: dict[str, str],
    *,
    before: str | None = None,
    moved: bool = False,
) -> tuple[str, dict[str, str]]:
    """(the text with MASK for every masked value, the values by locator). A masked value
    typed as MASK keeps the value ``stored`` has for that place, but only while it goes where it
    went: given the rule's text ``before`` this edit, a kept value whose targets changed (their
    project, ref, workflow or environment; every target when ``moved``, the rule's projects
    pattern changed) must be typed again, so whoever may edit a rule cannot send its secrets to
    a project of their own. Raises ConfigError, naming the line and the field, when a hidden
    value has nothing stored for it or must be typed again, or when a masked value is written
    as a YAML alias."""
    parse_config(text, standalone=False)  # the caller's errors first, in their own words
    then = _destinations(before) if before is not None else None
    now = _destinations(text) if before is not None else None
    root = limits.compose(text)  # the nodes parse_config read, by the same parser
    if root is None:
        return text, {}
    secrets: dict[str, str] = {}
    edits: list[tuple[int, int, str]] = []
    for found in _all_variables(root):
        node = found.node
        value = str(getattr(node, "value", ""))
        if not found.masked:
            if value == MASK and found.where in stored:
                raise ConfigError(
                    "the value is hidden; type it again to unmask it (or keep masked: true)",
                    line=_line(node),
                    field=found.field,
                )
            continue
        if value == MASK:
            if found.where not in stored:
                raise ConfigError(
                    "the value is hidden and none is kept for this variable here; type it again",
                    line=_line(node),
                    field=found.field,
                )
            if then is not None and now is not None and (moved or _moved(found.where, then, now)):
                raise ConfigError(
                    "the value is hidden and the targets it goes to changed; type it again "
                    "(a kept secret only goes where it went before)",
                    line=_line(node),
                    field=found.field,
                )
            secrets[found.where] = stored[found.where]
        else:
            secrets[found.where] = value
        start, end = node.start_mark.index, node.end_mark.index
        span = text[start:end]
        if span[:1] in ("&", "*") or not isinstance(node, ScalarNode):
            raise ConfigError(
                "a masked value must be written out, not as a YAML anchor or alias",
                line=_line(node),
                field=found.field,
            )
        edits.append((start, end, f'"{MASK}"' + ("\n" if span.endswith("\n") else "")))
    sealed = text
    for start, end, replacement in sorted(edits, reverse=True):
        sealed = sealed[:start] + replacement + sealed[end:]
    try:
        parse_config(sealed, standalone=False)
    except ConfigError:
        raise ConfigError(
            "masked values must be written out plainly (no YAML anchors or aliases)"
        ) from None
    return sealed, secrets


def _restored(variables: tuple[Variable, ...], where: str, secrets: dict[str, str]) -> tuple:
    return tuple(
        replace(v, value=secrets.get(f"{where}.{v.name}", v.value))
        if v.masked and v.value == MASK
        else v
        for v in variables
    )


def unseal(config: BatonConfig, secrets: dict[str, str]) -> BatonConfig:
    """The parsed rule with its masked values back in place."""
    if not secrets:
        return config
    return BatonConfig(
        variables=_restored(config.variables, "variables", secrets),
        downstream=tuple(
            replace(t, variables=_restored(t.variables, f"downstream.{t.key}.variables", secrets))
            for t in config.downstream
        ),
    )
