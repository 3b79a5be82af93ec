"""Masked values never shown: what a masked value reads as, and how to take known masked values
out of stored data (webhook payloads) before anyone can read them.

Pure: no database, no network.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from chains.redaction import MASK

# Keys under which forges echo the variables or inputs a pipeline was started with.
VARIABLE_KEYS = frozenset({"variables", "inputs", "client_payload"})
SHORTEST_SUBSTRING = 4  # shorter masked values are taken out only where they are a whole string


def secret_values(values: Iterable[object]) -> set[str]:
    """The non-empty string values among ``values``."""
    return {str(v) for v in values if v is not None and str(v) != "" and str(v) != MASK}


def scrub(data: Any, secrets: Collection[str]) -> Any:
    """``data`` (JSON-like) with every known secret value replaced by MASK wherever a string
    holds it: as the whole string, or inside it (a title, a URL) when it is long enough to be
    told apart from ordinary text."""
    if not secrets:
        return data
    longest_first = sorted(
        (s for s in secrets if len(s) >= SHORTEST_SUBSTRING), key=len, reverse=True
    )
    whole = set(secrets)

    def clean(value: Any) -> Any:
        if isinstance(value, str):
            if value in whole:
                return MASK
            for secret in longest_first:
                if secret in value:
                    value = value.replace(secret, MASK)
            return value
        if isinstance(value, dict):
            return {clean(k) if isinstance(k, str) else k: clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(item) for item in value]
        return value

    return clean(data)


def mask_named(data: Any, names: Collection[str]) -> Any:
    """``data`` with the value of every variable called one of ``names`` replaced by MASK, in
    the shapes forges use: ``[{"key": NAME, "value": …}]`` and ``{NAME: …}`` under a key of
    VARIABLE_KEYS."""
    if not names:
        return data
    return _under_variable_keys(data, lambda name: name in names)


def hide_variables(data: Any) -> Any:
    """``data`` with every variable value a forge echoes replaced by MASK (names kept): what the
    admin shows of a payload."""
    return _under_variable_keys(data, lambda name: True)


def _under_variable_keys(data: Any, hide: Any) -> Any:
    def variables(value: Any) -> Any:
        if isinstance(value, list):
            return [
                {**item, "value": MASK}
                if isinstance(item, dict) and "value" in item and hide(str(item.get("key", "")))
                else walk(item)
                for item in value
            ]
        if isinstance(value, dict):
            return {k: MASK if hide(str(k)) else walk(v) for k, v in value.items()}
        return walk(value)

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: variables(v) if k in VARIABLE_KEYS else walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(item) for item in value]
        return value

    return walk(data)
