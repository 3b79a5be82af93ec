"""Webhook intake per forge: each module verifies, names, dedupes and parses its deliveries."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from bots.events import Event, MalformedPayload
from chains.paths import PathError, check_project, check_ref, check_sha

Parser = Callable[[Mapping[str, Any]], Event | None]


def get(payload: Any, *path: str) -> Any:
    """``payload[a][b]…``, or MalformedPayload naming the missing path."""
    value = payload
    for part in path:
        if not isinstance(value, Mapping) or part not in value:
            raise MalformedPayload(f"missing {'.'.join(path)}")
        value = value[part]
    return value


def _checked(payload: Any, path: tuple[str, ...], check: Callable[[str], str]) -> str:
    value = str(get(payload, *path))
    try:
        return check(value)
    except PathError as exc:
        raise MalformedPayload(f"{'.'.join(path)}: {exc}") from None


def project_path(payload: Any, *path: str) -> str:
    """A repository path from a webhook, refused when it could name another repository."""
    return _checked(payload, path, check_project)


def ref_name(payload: Any, *path: str) -> str:
    """A branch or tag name from a webhook, by git's rules for ref names."""
    return _checked(payload, path, check_ref)


def optional_ref(payload: Any, *path: str) -> str:
    """A branch name a webhook may carry (a project's default branch): "" when it is missing or
    not a valid ref, never an error: nothing depends on it but a saved look-up."""
    try:
        value = get(payload, *path)
        return check_ref(value) if isinstance(value, str) else ""
    except (MalformedPayload, PathError):
        return ""


def sha(payload: Any, *path: str) -> str:
    return _checked(payload, path, check_sha)


def parse_with(parsers: Mapping[str, Parser], event: str, payload: Any) -> Event | None:
    """The neutral event, or None when the event is authentic but not one Baton acts on.
    A payload without what its event must carry raises MalformedPayload, in words."""
    parser = parsers.get(event)
    if parser is None:
        return None
    if not isinstance(payload, Mapping):
        raise MalformedPayload("payload is not a JSON object")
    try:
        return parser(payload)
    except MalformedPayload:
        raise
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise MalformedPayload(f"{event}: {exc}") from None
