"""What Baton remembers for a short while, through Django's cache framework (``CACHES`` in
config/settings.py: local memory per process, or a shared Redis when ``CACHE_URL`` names one).

Keys are built from hashed parts, so hostile text (a username, a ref) never shapes a key, and
values are stored wrapped so that "the answer was None" is remembered too."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from typing import Any, TypeVar

from django.core.cache import caches

T = TypeVar("T")
_MISSING = object()


def key(kind: str, *parts: object) -> str:
    """A cache key for ``parts`` (any values with a stable ``repr``) under ``kind``."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=16).hexdigest()
    return f"{kind}:{digest}"


def remembered(
    cache_key: str, seconds: float, compute: Callable[[], T], *, alias: str = "default"
) -> T:
    """``compute()``, remembered for ``seconds`` under ``cache_key`` (0 or less: not at all).
    Two processes that miss at once both compute: fine for the idempotent reads cached here."""
    if seconds <= 0:
        return compute()
    hit = recall(cache_key, _MISSING, alias=alias)
    if hit is not _MISSING:
        return hit  # type: ignore[no-any-return]
    value = compute()
    remember(cache_key, value, seconds, alias=alias)
    return value


def remember(cache_key: str, value: object, seconds: float, *, alias: str = "default") -> None:
    """Keep ``value`` (None too) under ``cache_key`` for ``seconds`` (0 or less: not at all)."""
    if seconds > 0:
        caches[alias].set(cache_key, (value,), _whole(seconds))


def recall(cache_key: str, default: object = None, *, alias: str = "default") -> Any:
    """What ``remember`` keeps under ``cache_key``, or ``default`` once it has expired."""
    hit = caches[alias].get(cache_key, _MISSING)
    return hit[0] if isinstance(hit, tuple) and len(hit) == 1 else default


def first_time(cache_key: str, seconds: float) -> bool:
    """True once per ``seconds`` for ``cache_key`` (atomic: ``add`` on a shared cache too)."""
    return caches["default"].add(cache_key, True, _whole(seconds))


def _whole(seconds: float) -> int:
    """Whole seconds, rounded up: Redis keeps keys for whole seconds (0 would mean not at all)."""
    return max(1, math.ceil(seconds))
