"""What Baton remembers for a short while, through Django's cache framework (``CACHES`` in
config/settings.py: local memory per process, or a shared Redis when ``CACHE_URL`` names one).

Keys are built from hashed parts, so hostile text (a username, a ref) never shapes a key, and
values are stored wrapped so that "the answer was None" is remembered too."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from typing import TypeVar

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
    cache = caches[alias]
    hit = cache.get(cache_key, _MISSING)
    if isinstance(hit, tuple) and len(hit) == 1:
        return hit[0]  # type: ignore[no-any-return]
    value = compute()
    cache.set(cache_key, (value,), _whole(seconds))
    return value


def first_time(cache_key: str, seconds: float) -> bool:
    """True once per ``seconds`` for ``cache_key`` (atomic: ``add`` on a shared cache too)."""
    return caches["default"].add(cache_key, True, _whole(seconds))


def _whole(seconds: float) -> int:
    """Whole seconds, rounded up: Redis keeps keys for whole seconds (0 would mean not at all)."""
    return max(1, math.ceil(seconds))
