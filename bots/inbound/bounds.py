"""What a webhook body may be before it is stored: bounded size and nesting, and no NUL
characters or lone surrogates (PostgreSQL's text and jsonb cannot hold them)."""

from __future__ import annotations

import json
import math
import re
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


_NOT_A_BRACKET = re.compile(r"[^\[\]{}]+")
_INNERMOST = re.compile(r"\{\}|\[\]")
# The escapes that alone make a NUL or a lone surrogate (an escaped pair or an escaped
# backslash matches too: the slow walk then decides).
_NUL_OR_SURROGATE = re.compile(r"\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})")


def loads(text: str | bytes, max_depth: int) -> Any:
    """The JSON ``text`` decoded, as ``clean`` leaves it: TooDeep, NotFinite, ValueError (not
    JSON) or RecursionError. Usually without walking what it decoded: when the text (UTF-8) has
    no escape that makes a NUL or a surrogate, nothing needs cleaning, and its nesting is
    measured on its brackets outside strings (each pass takes away the innermost pairs), or not at
    all when it has no more opening brackets than ``max_depth``. (A key given twice keeps its
    last value, as in json.loads; the value it hides counts here too: never more is accepted.)"""
    plain = _utf8(text)
    if plain is None:
        return clean(json.loads(text, parse_constant=_not_finite), max_depth)
    text = plain
    value = json.loads(text, parse_constant=_not_finite, parse_float=_finite)
    if _NUL_OR_SURROGATE.search(text):
        return clean(value, max_depth)
    if text.count("{") + text.count("[") <= max_depth:
        return value  # not even that many brackets, in strings or out
    # Out of strings: escaped backslashes, then escaped quotes gone, every other quote opens one.
    outside = "".join(text.replace("\\\\", "").replace('\\"', "").split('"')[::2])
    brackets = _NOT_A_BRACKET.sub("", outside)
    for _ in range(max_depth):
        if not brackets:
            return value
        brackets = _INNERMOST.sub("", brackets)
    if brackets:
        raise _too_deep(max_depth)
    return value


def _utf8(text: str | bytes) -> str | None:
    """``text`` as a str when it is UTF-8 (a str: one that encodes to it) with no zero byte, a
    BOM taken off as json.loads does; else None: JSON in UTF-16 or UTF-32 (json.loads tells them
    by their zero bytes), UTF-8 that encodes surrogates, a str holding one."""
    try:
        if isinstance(text, bytes):
            return None if b"\x00" in text else text.decode("utf-8-sig")
        text.encode("utf-8")
    except (UnicodeDecodeError, UnicodeEncodeError):
        return None
    return None if "\x00" in text else text


def _not_finite(constant: str) -> float:
    raise NotFinite("the JSON holds a number that is not finite (NaN, Infinity or too large)")


def _finite(number: str) -> float:
    value = float(number)
    if not math.isfinite(value):  # 1e999
        _not_finite(number)
    return value


def _too_deep(max_depth: int) -> TooDeep:
    return TooDeep(f"the JSON nests deeper than {max_depth} levels (BATON_MAX_JSON_DEPTH)")


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
        _not_finite(str(value))
    if isinstance(value, dict | list):
        if depth >= max_depth:
            raise _too_deep(max_depth)
        if isinstance(value, list):
            return [_clean(item, max_depth, depth + 1) for item in value]
        return {
            _clean(key, max_depth, depth + 1): _clean(item, max_depth, depth + 1)
            for key, item in value.items()
        }
    return value
