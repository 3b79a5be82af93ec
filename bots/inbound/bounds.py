"""What a webhook body may be before it is stored: bounded size and nesting, and no NUL
characters or lone surrogates (PostgreSQL's text and jsonb cannot hold them)."""

from __future__ import annotations

import math
from typing import Any

NUL = "\x00"


class TooDeep(ValueError):
    pass


class NotFinite(ValueError):
    """`NaN`, `Infinity` or a number too large for a float: Python's JSON reads them, but
    PostgreSQL's jsonb cannot hold them."""


def too_big(content_length: str | None, limit: int) -> bool:
    """Whether the announced length alone already exceeds the limit."""
    try:
        return int(content_length or 0) > limit
    except ValueError:
        return False  # a malformed length is checked against what is actually read


def clean(value: Any, max_depth: int) -> Any:
    """The decoded payload with NUL characters removed from every key and string and lone
    surrogates replaced by "?"; TooDeep when objects and arrays nest deeper than ``max_depth``,
    NotFinite for a NaN or infinite number."""
    return _clean(value, max_depth, 0)


def _text(value: str) -> str:
    if NUL in value:
        value = value.replace(NUL, "")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate ("\\ud800"): PostgreSQL refuses it too
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value


def _clean(value: Any, max_depth: int, depth: int) -> Any:
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise NotFinite("the JSON holds a number that is not finite (NaN, Infinity or too large)")
    if isinstance(value, dict | list):
        if depth >= max_depth:
            raise TooDeep(f"the JSON nests deeper than {max_depth} levels (BATON_MAX_JSON_DEPTH)")
        if isinstance(value, list):
            return [_clean(item, max_depth, depth + 1) for item in value]
        return {
            _clean(key, max_depth, depth + 1): _clean(item, max_depth, depth + 1)
            for key, item in value.items()
        }
    return value
