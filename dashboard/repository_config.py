"""A repository's current `.baton.yml` (read through its forge at the default branch, remembered
for ``BATON_REPOSITORY_CONFIG_TTL`` seconds) and the admin rules that apply to it, as a reader may
see them.

What is hidden: masked values (the file's are replaced by ``••••`` as the admin's rules store
them; a rule's stored values are never read here), and the names of target projects the reader
may not view (written as "a private project", with their keys and labels). A file too broken to
find its masked values in is shown only as its error when it mentions ``masked``."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import yaml
from django.conf import settings
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from bots import caching
from bots.forges.base import ForgeError
from bots.forges.registry import forge_for
from chains import deadline, limits, policy
from chains.config import BatonConfig, ConfigError, parse_config
from chains.masking import MASK
from chains.models import Repository, Rule
from chains.redaction import scrub
from chains.rule_secrets import _all_variables, seal

log = logging.getLogger(__name__)

MAX_SHOWN_LINES = 1000


@dataclass(frozen=True)
class Line:
    number: int
    text: str
    error: bool = False


@dataclass
class RuleView:
    name: str
    projects: str
    position: int
    lines: list[Line]
    error: str = ""


@dataclass
class ConfigView:
    path: str
    ref: str = ""
    lines: list[Line] = field(default_factory=list)
    missing: bool = False  # the repository has no such file at the ref
    error: str = ""  # the file does not parse (with its line)
    error_line: int | None = None
    problem: str = ""  # the forge could not be asked (in words)
    read_at: datetime | None = None
    truncated: bool = False
    rules: list[RuleView] = field(default_factory=list)
    max_age: float = 0.0


def _lines(text: str, error_line: int | None = None) -> tuple[list[Line], bool]:
    raw = text.splitlines()
    shown = [
        Line(i, line, error=i == error_line) for i, line in enumerate(raw[:MAX_SHOWN_LINES], 1)
    ]
    return shown, len(raw) > MAX_SHOWN_LINES


def _target_names(config: BatonConfig) -> list[Named]:
    """(forge name or "", path, key, label) of each target, "self" left out."""
    found = []
    for target in config.downstream:
        if target.project == "self":
            continue
        where, _, path = target.project.rpartition(":")
        found.append((where, path, target.key, target.label))
    return found


Named = tuple[str, str, str, str]  # (forge name or "", path, key, label) of a target


def _lenient(text: str) -> tuple[str, list[Named]] | None:
    """For a file that does not parse but is YAML: its text with masked values as ••••, and the
    targets it names (``project``, ``key``, ``label`` wherever they are written); None when that
    cannot be known (not YAML, or a masked value written as an anchor or alias)."""
    try:
        root = limits.compose(text)
    except (limits.LimitError, yaml.YAMLError):
        return None
    if root is None:
        return text, []
    edits = []
    for found in _all_variables(root):
        if not found.masked:
            continue
        node = found.node
        start, end = node.start_mark.index, node.end_mark.index
        if not isinstance(node, ScalarNode) or text[start:end][:1] in ("&", "*"):
            return None
        edits.append((start, end, f'"{MASK}"' + ("\n" if text[start:end].endswith("\n") else "")))
    shown = text
    for start, end, replacement in sorted(edits, reverse=True):
        shown = shown[:start] + replacement + shown[end:]
    named: list[Named] = []
    items = (
        [v for k, v in root.value if getattr(k, "value", "") == "downstream"]
        if isinstance(root, MappingNode)
        else []
    )
    for sequence in items:
        for item in sequence.value if isinstance(sequence, SequenceNode) else []:
            fields = {
                str(k.value): str(v.value)
                for k, v in (item.value if isinstance(item, MappingNode) else [])
                if isinstance(k, ScalarNode) and isinstance(v, ScalarNode)
            }
            project = fields.get("project", "").strip()
            if project == "self":
                continue
            where, _, path = project.rpartition(":")
            named.append((where, path, fields.get("key", ""), fields.get("label", "")))
    return shown, named


def hidden_names(config: BatonConfig, repository: Repository, user: Any) -> set[str]:
    return hidden_target_names(_target_names(config), repository, user)


def hidden_target_names(targets: list[Named], repository: Repository, user: Any) -> set[str]:
    """Names in ``config`` the reader may not see: the path, key and label of every target in a
    project they may not view (one Baton has not heard of yet: as their grants say on this
    forge, hidden on another): one query for the projects."""
    if policy.visible_repository_ids(user) is None:
        return set()
    if not targets:
        return set()
    known = list(
        Repository.objects.filter(path__in={path for _, path, _, _ in targets}).select_related(
            "forge"
        )
    )
    seen = policy.visible(user, known)
    grants = policy.grants_of(user)
    names: set[str] = set()
    for where, path, key, label in targets:
        matches = [
            r
            for r in known
            if r.path == path
            and (
                where in (r.forge.slug, r.forge.kind)
                if where
                else r.forge_id == repository.forge_id
            )
        ]
        if matches:
            ok = any(r.pk in seen for r in matches)
        else:  # not heard of yet: on this forge, the reader's grants decide; elsewhere, hidden
            unknown = Repository(forge_id=repository.forge_id, path=path)
            ok = not where and bool(policy.user_may(user, "view", unknown, grants))
        if not ok:
            names.update(n for n in (f"{where}:{path}" if where else "", path, key, label) if n)
    return names


def _shown_text(text: str) -> tuple[str, str, int | None, BatonConfig | None]:
    """(text to show with masked values as ••••, error, error line, parsed config)."""
    try:
        config = parse_config(text)
    except ConfigError as exc:
        return "", str(exc), exc.line, None
    try:
        sealed, _ = seal(text, {})
    except ConfigError:  # a masked value Baton cannot take out (an alias): show none of it
        lenient = _lenient(text)
        sealed = lenient[0] if lenient else ""
    return sealed, "", None, config


def _read(repository: Repository, ref: str) -> tuple[str | None, str]:
    client = forge_for(repository.forge)
    text = client.read_file(repository.path, settings.BATON_CONFIG_PATH, ref)
    return text, datetime.now(UTC).isoformat()


def _default_branch(repository: Repository) -> str:
    if not repository.default_branch:
        repository.update_from(forge_for(repository.forge).get_project(repository.path))
    return repository.default_branch


def current_config(repository: Repository, user: Any) -> ConfigView:
    """The file at the default branch and the rules that apply, as ``user`` may see them."""
    ttl = settings.BATON_REPOSITORY_CONFIG_TTL
    view = ConfigView(path=settings.BATON_CONFIG_PATH, max_age=ttl)
    view.rules = applying_rules(repository, user)
    limit = settings.BATON_PLAN_TIME_LIMIT
    try:
        with deadline.within(limit):
            view.ref = _default_branch(repository)
            key = caching.key("repository-config", repository.pk, view.ref)
            text, read_at = caching.remembered(key, ttl, lambda: _read(repository, view.ref))
    except ForgeError as exc:
        log.warning("%s of %s: the forge could not say: %s", view.path, repository.path, exc)
        view.problem = (
            f"Baton could not read {view.path} from the forge just now"
            f"{f' (it answered {exc.status_code})' if exc.status_code else ''}; "
            "try again in a moment (the details are in Baton's log)."
        )
        return view
    except deadline.TimeUp:
        view.problem = (
            f"The forge did not answer within {limit:g} seconds (BATON_PLAN_TIME_LIMIT); "
            "try again in a moment."
        )
        return view
    view.read_at = datetime.fromisoformat(read_at)
    if text is None:
        view.missing = True
        return view
    shown, error, line, config = _shown_text(text)
    if config is not None:
        names = hidden_names(config, repository, user)
    else:
        lenient = _lenient(text)
        if lenient is None:
            # Not even YAML: what it names cannot be known, so only its error is shown (with
            # the line it names when the file says nothing of masked values).
            raw = text.splitlines()
            near = raw[line - 1] if line and 0 < line <= len(raw) else ""
            safe = "masked" not in text and policy.visible_repository_ids(user) is None
            view.lines = [Line(line, near, error=True)] if line and safe else []
            view.error, view.error_line = error, line
            return view
        shown, named = lenient
        names = hidden_target_names(named, repository, user)
    view.lines, view.truncated = _lines(scrub(shown, names), line)
    view.error, view.error_line = scrub(error, names), line
    return view


def applying_rules(repository: Repository, user: Any) -> list[RuleView]:
    """The enabled admin rules that apply to the repository, masked values as the rule stores
    them (••••, never the encrypted values), names the reader may not view scrubbed: one query
    for the rules, one for their targets' projects."""
    enabled = Rule.objects.filter(enabled=True).defer("secrets")
    rules = [rule for rule in enabled if rule.applies_to(repository.path)]
    views = []
    for rule in rules:
        try:
            config = parse_config(rule.config, standalone=False)
            error, line = "", None
        except ConfigError as exc:
            config, error, line = BatonConfig(), str(exc), exc.line
        names = hidden_names(config, repository, user)
        lines, _ = _lines(scrub(rule.config, names), line)
        if error and policy.visible_repository_ids(user) is not None:
            lines = []  # a broken rule's targets cannot be known: its error only
        views.append(RuleView(rule.name, rule.projects, rule.position, lines, scrub(error, names)))
    return views
