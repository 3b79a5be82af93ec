"""Webhook intake per forge: each module verifies, names, dedupes and parses its deliveries."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from bots.events import Event, MalformedPayload

Parser = Callable[[Mapping[str, Any]], Event | None]


def get(payload: Any, *path: str) -> Any:
    """``payload[a][b]…``, or MalformedPayload naming the missing path."""
    value = payload
    for part in path:
        if not isinstance(value, Mapping) or part not in value:
            raise MalformedPayload(f"missing {'.'.join(path)}")
        value = value[part]
    return value


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
