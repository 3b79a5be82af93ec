"""`.baton.yml` (schema version 1): parse and validate into frozen dataclasses.

Errors name the line and the field (``line 7: downstream[1].strategy: must be one of …``) and are
raised as :class:`ConfigError`; nothing here ever raises anything else on bad input.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass

import yaml
from django.conf import settings
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from chains import limits
from chains.conditions import Condition, ConditionError, parse_condition
from chains.globs import PatternError, check_patterns
from chains.paths import PathError, check_file_path, check_ref, check_target_project
from chains.retrying import MAX_RETRIES, NO_RETRY, REASONS, RetryPolicy

VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
KEY_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
STRATEGIES = ("depend", "mirror", "async")
EVENTS = ("merge_request", "push", "tag", "upstream")
CANCEL_POLICIES = ("propagate", "detach")
MODES = ("new", "rerun-latest", "rerun-last-successful")
DEFAULT_WAIT_TIMEOUT = 60
TOP_LEVEL_FIELDS = ("variables", "downstream", "notify")
# `notify:` (docs/notifications.md): the events a channel may be told of (notify/models.py Event).
NOTIFY_EVENTS = ("chain_failed", "chain_recovered", "release_finished", "run_manual", "run_refused")
NOTIFY_FIELDS = ("channel", "events", "branches")
MAX_NOTIFY = 20
CHANNEL_NAME = re.compile(r"^[-a-zA-Z0-9_]{1,100}$")
TARGET_FIELDS = (
    "key",
    "label",
    "project",
    "ref",
    "workflow",
    "strategy",
    "interruptible",
    "variables",
    "skip",
    "on",
    "branches",
    "soft_fail",
    "depends_on",
    "allow_dependency_failure",
    "inherit",
    "params_file",
    "if",
    "cancel",
    "mode",
    "wait",
    "timeout",
    "deploy",
    "retry",
)
NULL_TAG = "tag:yaml.org,2002:null"


class ConfigError(ValueError):
    def __init__(self, message: str, *, line: int | None = None, field: str | None = None):
        self.line = line
        self.field = field
        self.reason = message
        where = " ".join(
            p for p in (f"line {line}:" if line else "", f"{field}:" if field else "") if p
        )
        super().__init__(f"{where} {message}".strip())


@dataclass(frozen=True)
class Variable:
    name: str
    value: str
    masked: bool = False


@dataclass(frozen=True)
class Target:
    key: str
    project: str  # "self", "acme/api", or "<forge>:acme/api"
    label: str = ""
    ref: str | None = None
    workflow: str | None = None
    strategy: str = "depend"
    interruptible: bool = True
    variables: tuple[Variable, ...] = ()
    skip: str | None = None  # a reason when the target is skipped
    on: tuple[str, ...] = ("merge_request",)
    branches: tuple[str, ...] = ()  # glob patterns; "!pattern" excludes
    soft_fail: bool = False
    depends_on: tuple[str, ...] = ()
    allow_dependency_failure: bool = False
    inherit_variables: bool | tuple[str, ...] = True  # which global variables reach the target
    params_file: str | None = None
    condition: Condition | None = None  # `if:`
    cancel: str = "propagate"
    mode: str = "new"
    wait_timeout: int = 0  # seconds to wait for a running pipeline on the ref; 0: do not wait
    deploy: str | None = None  # an environment
    retry: RetryPolicy = NO_RETRY  # automatic retries (chains/retrying.py)
    line: int = 0
    where: str = ""  # "downstream[2]", for error messages
    depends_line: int = 0
    # The variables of the admin rule that set this target: they reach its targets only.
    rule_variables: tuple[Variable, ...] = ()


@dataclass(frozen=True)
class NotifyEntry:
    """One `notify:` item: a channel an admin set up, named (never its address), and when."""

    channel: str
    events: tuple[str, ...] = ()  # none: chain_failed and chain_recovered
    branches: tuple[str, ...] = ()  # target branch (or tag) patterns; none: every chain
    line: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "channel": self.channel,
            "events": list(self.events),
            "branches": list(self.branches),
        }


@dataclass(frozen=True)
class BatonConfig:
    variables: tuple[Variable, ...] = ()
    downstream: tuple[Target, ...] = ()
    notify: tuple[NotifyEntry, ...] = ()


def parse_config(text: str, *, standalone: bool = True) -> BatonConfig:
    """``standalone=False`` for admin rules: their `depends_on` may name targets of the file they
    are merged with, so dependencies are checked after the merge."""
    try:
        root = limits.compose(text)
    except limits.LimitError as exc:
        raise ConfigError(str(exc), line=exc.line) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        last = len(text.splitlines()) or 1  # libyaml marks the end of the text past its last line
        raise ConfigError(
            f"not valid YAML: {exc.problem or exc.context}",
            line=min(mark.line + 1, last) if mark else None,
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}") from None
    if root is None:
        return BatonConfig()
    fields = _mapping(root, "the file")
    for name, (key_node, _) in fields.items():
        if name not in TOP_LEVEL_FIELDS:
            raise ConfigError(
                f"unknown field; expected one of {', '.join(TOP_LEVEL_FIELDS)}",
                line=_line(key_node),
                field=name,
            )
    variables = _variables(fields["variables"][1], "variables") if "variables" in fields else ()
    targets: list[Target] = []
    if "downstream" in fields:
        node = fields["downstream"][1]
        if not isinstance(node, SequenceNode):
            raise ConfigError("must be a list of targets", line=_line(node), field="downstream")
        if len(node.value) > settings.BATON_MAX_TARGETS:
            raise ConfigError(
                f"has {len(node.value)} targets; at most {settings.BATON_MAX_TARGETS} "
                "(BATON_MAX_TARGETS)",
                line=_line(node),
                field="downstream",
            )
        targets = [_target(item, f"downstream[{i}]") for i, item in enumerate(node.value)]
    seen: dict[str, Target] = {}
    for target in targets:
        if target.key in seen:
            raise ConfigError(
                f"duplicate key {target.key!r} (also on line {seen[target.key].line}); "
                "give each target its own key",
                line=target.line,
                field="key",
            )
        seen[target.key] = target
    if standalone:
        _check_dependencies(seen)
    notify = _notify(fields["notify"][1]) if "notify" in fields else ()
    return BatonConfig(variables=variables, downstream=tuple(targets), notify=notify)


def _notify(node: Node) -> tuple[NotifyEntry, ...]:
    """`notify:` in the style of Buildkite's: a list of channel names, or of
    ``{channel, events, branches}``."""
    if not isinstance(node, SequenceNode):
        raise ConfigError("must be a list of channels", line=_line(node), field="notify")
    if len(node.value) > MAX_NOTIFY:
        raise ConfigError(f"at most {MAX_NOTIFY} entries", line=_line(node), field="notify")
    entries = []
    for i, item in enumerate(node.value):
        where = f"notify[{i}]"
        fields: dict[str, tuple[Node, Node]]
        if isinstance(item, ScalarNode):
            fields = {"channel": (item, item)}
        else:
            fields = _mapping(item, where)
        for name, (key_node, _) in fields.items():
            if name not in NOTIFY_FIELDS:
                raise ConfigError(
                    f"unknown field; expected one of {', '.join(NOTIFY_FIELDS)}",
                    line=_line(key_node),
                    field=f"{where}.{name}",
                )
        if "channel" not in fields:
            raise ConfigError("names no channel", line=_line(item), field=f"{where}.channel")
        channel_node = fields["channel"][1]
        channel = _string(channel_node, f"{where}.channel")
        if not CHANNEL_NAME.match(channel):
            raise ConfigError(
                "must be the name of a channel an admin set up (letters, digits, - and _), "
                "never its address",
                line=_line(channel_node),
                field=f"{where}.channel",
            )
        events = _string_list(fields, "events", where)
        for n, event in enumerate(events):
            if event not in NOTIFY_EVENTS:
                raise ConfigError(
                    f"must be one of {', '.join(NOTIFY_EVENTS)} (got {event!r})",
                    line=_line(fields["events"][1]),
                    field=f"{where}.events[{n}]",
                )
        entries.append(
            NotifyEntry(
                channel=channel,
                events=events,
                branches=_patterns(fields, where),
                line=_line(item),
            )
        )
    return tuple(entries)


def _check_dependencies(targets: dict[str, Target]) -> None:
    for target in targets.values():
        for name in target.depends_on:
            if name not in targets:
                raise ConfigError(
                    f"no target has the key {name!r}",
                    line=target.depends_line,
                    field=f"{target.where}.depends_on",
                )
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(key: str, path: list[str]) -> None:
        if state.get(key) == 2:
            return
        if state.get(key) == 1:
            cycle = [*path[path.index(key) :], key]
            raise ConfigError(
                f"depends_on makes a cycle: {' → '.join(cycle)}",
                line=targets[key].depends_line,
                field=f"{targets[key].where}.depends_on",
            )
        state[key] = 1
        for name in targets[key].depends_on:
            visit(name, [*path, key])
        state[key] = 2

    for key in targets:
        visit(key, [])


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def _mapping(node: Node, where: str) -> dict[str, tuple[Node, Node]]:
    if not isinstance(node, MappingNode):
        raise ConfigError("must be a mapping of field: value", line=_line(node), field=where)
    result: dict[str, tuple[Node, Node]] = {}
    for key_node, value_node in node.value:
        if not isinstance(key_node, ScalarNode):
            raise ConfigError("field names must be plain text", line=_line(key_node), field=where)
        name = str(key_node.value)
        if name in result:
            raise ConfigError("appears twice", line=_line(key_node), field=f"{where}.{name}")
        result[name] = (key_node, value_node)
    return result


def _scalar(node: Node, field: str) -> str:
    if not isinstance(node, ScalarNode):
        raise ConfigError(
            "must be a single value, not a list or mapping", line=_line(node), field=field
        )
    return str(node.value)


def _string(node: Node, field: str) -> str:
    value = _scalar(node, field)
    if not value.strip():
        raise ConfigError("must not be empty", line=_line(node), field=field)
    return value


def _bool(node: Node, field: str) -> bool:
    value = _scalar(node, field).lower()
    if value in {"true", "yes", "on"}:
        return True
    if value in {"false", "no", "off"}:
        return False
    raise ConfigError("must be true or false", line=_line(node), field=field)


def _variables(node: Node, where: str) -> tuple[Variable, ...]:
    result = []
    spec = _mapping(node, where)
    if len(spec) > settings.BATON_MAX_VARIABLES:
        raise ConfigError(
            f"has {len(spec)} variables; at most {settings.BATON_MAX_VARIABLES} "
            "(BATON_MAX_VARIABLES)",
            line=_line(node),
            field=where,
        )
    for name, (key_node, value_node) in spec.items():
        field = f"{where}.{name}"
        if not VARIABLE_NAME.match(name):
            raise ConfigError(
                "variable names use letters, digits and _ and do not start with a digit",
                line=_line(key_node),
                field=field,
            )
        if isinstance(value_node, MappingNode):
            spec = _mapping(value_node, field)
            unknown = set(spec) - {"value", "masked"}
            if unknown:
                bad = sorted(unknown)[0]
                raise ConfigError(
                    "unknown field; a variable takes value and masked",
                    line=_line(spec[bad][0]),
                    field=f"{field}.{bad}",
                )
            if "value" not in spec:
                raise ConfigError("needs a value", line=_line(value_node), field=field)
            value = _scalar(spec["value"][1], f"{field}.value")
            masked = _bool(spec["masked"][1], f"{field}.masked") if "masked" in spec else False
            result.append(Variable(name, value, masked))
        else:
            result.append(Variable(name, _scalar(value_node, field)))
    return tuple(result)


def _target(node: Node, where: str) -> Target:
    fields = _mapping(node, where)
    for name, (key_node, _) in fields.items():
        if name not in TARGET_FIELDS:
            raise ConfigError(
                f"unknown field; expected one of {', '.join(TARGET_FIELDS)}",
                line=_line(key_node),
                field=f"{where}.{name}",
            )
    if "project" not in fields:
        raise ConfigError(
            "needs a project (a path such as acme/api, or self)",
            line=_line(node),
            field=f"{where}.project",
        )
    project = _string(fields["project"][1], f"{where}.project").strip()
    if project != "self" and "/" not in project.split(":", 1)[-1]:
        raise ConfigError(
            "must be a full path such as acme/api, github:acme/docs, or self",
            line=_line(fields["project"][1]),
            field=f"{where}.project",
        )
    _check_path(project, check_target_project, fields["project"][1], f"{where}.project")

    def optional(name: str) -> str | None:
        if name not in fields or fields[name][1].tag == NULL_TAG:
            return None
        return _string(fields[name][1], f"{where}.{name}")

    def path(name: str, check: Callable[[str], str]) -> str | None:
        value = optional(name)
        if value is not None:
            _check_path(value, check, fields[name][1], f"{where}.{name}")
        return value

    def flag(name: str, default: bool) -> bool:
        return _bool(fields[name][1], f"{where}.{name}") if name in fields else default

    def choice(name: str, allowed: tuple[str, ...], default: str) -> str:
        value = optional(name) or default
        if value not in allowed:
            raise ConfigError(
                f"must be one of {', '.join(allowed)} (got {value!r})",
                line=_line(fields[name][1]),
                field=f"{where}.{name}",
            )
        return value

    key = optional("key") or _default_key(project)
    if not KEY_PATTERN.match(key):
        raise ConfigError(
            "keys use letters, digits, '.', '_' and '-' (at most 100)",
            line=_line(fields["key"][1]) if "key" in fields else _line(node),
            field=f"{where}.key",
        )
    events = _string_list(fields, "on", where) or ("merge_request",)
    for event in events:
        if event not in EVENTS:
            raise ConfigError(
                f"{event!r} is not one of {', '.join(EVENTS)}",
                line=_line(fields["on"][1]),
                field=f"{where}.on",
            )
    condition = None
    if "if" in fields:
        try:
            condition = parse_condition(_string(fields["if"][1], f"{where}.if"))
        except ConditionError as exc:
            raise ConfigError(str(exc), line=_line(fields["if"][1]), field=f"{where}.if") from None
    mode = choice("mode", MODES, "new")
    deploy = optional("deploy")
    if deploy and mode != "new":
        raise ConfigError(
            "deploy starts a new deployment; it cannot be combined with mode: " + mode,
            line=_line(fields["deploy"][1]),
            field=f"{where}.deploy",
        )
    skip: str | None = None
    if "skip" in fields:
        raw = _scalar(fields["skip"][1], f"{where}.skip")
        if raw.lower() in {"true", "yes", "on"}:
            skip = "skipped in .baton.yml"
        elif raw.lower() not in {"false", "no", "off", ""}:
            skip = raw
    return Target(
        key=key,
        project=project,
        label=optional("label") or "",
        ref=path("ref", check_ref),
        workflow=path("workflow", check_file_path),
        strategy=choice("strategy", STRATEGIES, "depend"),
        interruptible=flag("interruptible", True),
        variables=_variables(fields["variables"][1], f"{where}.variables")
        if "variables" in fields
        else (),
        skip=skip,
        on=events,
        branches=_patterns(fields, where),
        soft_fail=flag("soft_fail", False),
        depends_on=_string_list(fields, "depends_on", where),
        allow_dependency_failure=flag("allow_dependency_failure", False),
        inherit_variables=_inherit(fields, where),
        params_file=path("params_file", check_file_path),
        condition=condition,
        cancel=choice("cancel", CANCEL_POLICIES, "propagate"),
        mode=mode,
        wait_timeout=_wait_timeout(fields, where, mode),
        deploy=deploy,
        retry=_retry(fields, where),
        line=_line(node),
        where=where,
        depends_line=_line(fields["depends_on"][1]) if "depends_on" in fields else _line(node),
    )


def _check_path(value: str, check: Callable[[str], str], node: Node, field: str) -> None:
    """Project paths, file paths and refs end up in forge URLs: refuse anything that could name
    another repository (`..`, empty or `.` segments, encoded slashes, backslashes, control
    characters)."""
    try:
        check(value)
    except PathError as exc:
        raise ConfigError(str(exc), line=_line(node), field=field) from None


def _wait_timeout(fields: dict[str, tuple[Node, Node]], where: str, mode: str) -> int:
    """`wait: true` with `timeout` (seconds, default 60), as Drone's downstream plugin has it."""
    wait = _bool(fields["wait"][1], f"{where}.wait") if "wait" in fields else False
    if "timeout" in fields and not wait:
        raise ConfigError(
            "timeout applies only with wait: true",
            line=_line(fields["timeout"][1]),
            field=f"{where}.timeout",
        )
    if not wait:
        return 0
    if mode == "rerun-last-successful":
        raise ConfigError(
            "wait cannot be combined with mode: rerun-last-successful (as in Drone)",
            line=_line(fields["wait"][1]),
            field=f"{where}.wait",
        )
    if "timeout" not in fields:
        return DEFAULT_WAIT_TIMEOUT
    raw = _scalar(fields["timeout"][1], f"{where}.timeout")
    if not raw.isdigit() or not 1 <= int(raw) <= 3600:
        raise ConfigError(
            "must be a whole number of seconds from 1 to 3600",
            line=_line(fields["timeout"][1]),
            field=f"{where}.timeout",
        )
    return int(raw)


def _retry(fields: dict[str, tuple[Node, Node]], where: str) -> RetryPolicy:
    """`retry: 2`, or `retry: {max: 2, when: [runner_system_failure, timed_out]}` (GitLab's
    job `retry:`); `when` defaults to always."""
    if "retry" not in fields:
        return RetryPolicy()
    node = fields["retry"][1]
    field = f"{where}.retry"

    def count(value_node: Node, name: str) -> int:
        raw = _scalar(value_node, name)
        if not raw.isdigit() or int(raw) > MAX_RETRIES:
            raise ConfigError(
                f"must be a whole number from 0 to {MAX_RETRIES} (got {raw[:20]!r})",
                line=_line(value_node),
                field=name,
            )
        return int(raw)

    if isinstance(node, ScalarNode):
        return RetryPolicy(max=count(node, field))
    spec = _mapping(node, field)
    for name, (key_node, _) in spec.items():
        if name not in ("max", "when"):
            raise ConfigError(
                "unknown field; retry takes max and when",
                line=_line(key_node),
                field=f"{field}.{name}",
            )
    if "max" not in spec:
        raise ConfigError("needs max (0 to 3)", line=_line(node), field=f"{field}.max")
    when = _string_list(spec, "when", field) or ("always",)
    for i, reason in enumerate(when):
        if reason not in REASONS:
            when_node = spec["when"][1]
            listed = isinstance(when_node, SequenceNode)
            raise ConfigError(
                f"{reason[:60]!r} is not a failure reason Baton knows; one of "
                + ", ".join(REASONS),
                line=_line(when_node.value[i] if listed else when_node),
                field=f"{field}.when[{i}]" if listed else f"{field}.when",
            )
    return RetryPolicy(max=count(spec["max"][1], f"{field}.max"), when=tuple(dict.fromkeys(when)))


def _string_list(fields: dict[str, tuple[Node, Node]], name: str, where: str) -> tuple[str, ...]:
    """A list of names, or one name on its own."""
    if name not in fields:
        return ()
    node = fields[name][1]
    field = f"{where}.{name}"
    if isinstance(node, ScalarNode):
        return (_string(node, field),)
    if not isinstance(node, SequenceNode):
        raise ConfigError("must be a list", line=_line(node), field=field)
    return tuple(_string(item, f"{field}[{i}]") for i, item in enumerate(node.value))


def _patterns(fields: dict[str, tuple[Node, Node]], where: str) -> tuple[str, ...]:
    """`branches: "main release/* !release/old"`, or a list of the same."""
    patterns = tuple(p for item in _string_list(fields, "branches", where) for p in item.split())
    try:
        check_patterns([p.removeprefix("!") for p in patterns])
    except PatternError as exc:  # globs are capped in length and number (chains/globs.py)
        raise ConfigError(
            str(exc), line=_line(fields["branches"][1]), field=f"{where}.branches"
        ) from None
    return patterns


def _inherit(fields: dict[str, tuple[Node, Node]], where: str) -> bool | tuple[str, ...]:
    if "inherit" not in fields:
        return True
    spec = _mapping(fields["inherit"][1], f"{where}.inherit")
    for name, (key_node, _) in spec.items():
        if name != "variables":
            raise ConfigError(
                "unknown field; inherit takes variables",
                line=_line(key_node),
                field=f"{where}.inherit.{name}",
            )
    if "variables" not in spec:
        return True
    node = spec["variables"][1]
    if isinstance(node, ScalarNode):
        return _bool(node, f"{where}.inherit.variables")
    return _string_list(spec, "variables", f"{where}.inherit")


def _default_key(project: str) -> str:
    if project == "self":
        return "child"
    return re.sub(r"[^A-Za-z0-9_.-]", "-", project.split(":", 1)[-1].rsplit("/", 1)[-1])[:100]


def merge(base: BatonConfig, *rules: BatonConfig) -> BatonConfig:
    """The file, then admin rules in their order: a rule's targets win over those of the same
    key before it; its other targets are added after. A rule's own variables reach only the
    targets that rule names (they may be secrets: a target the file adds, `project: self`
    included, never sees them); there they win over the file's."""
    targets = {t.key: t for t in base.downstream}
    for rule in rules:
        targets.update(
            {t.key: dataclasses.replace(t, rule_variables=rule.variables) for t in rule.downstream}
        )
    merged = BatonConfig(
        variables=base.variables, downstream=tuple(targets.values()), notify=base.notify
    )
    _check_dependencies(targets)
    return merged
