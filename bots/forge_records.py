"""The forge records every delivery needs, at intake (by slug, from the URL) and in the worker
(by id, from the delivery): kept per process for ``SECONDS``, their secrets decrypted once, never
in a shared cache. Saving or deleting any forge forgets them all at once in that process; the
other processes see the change within ``SECONDS``."""

from __future__ import annotations

from django.core.cache import caches
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from bots import caching
from chains.models import Forge

SECONDS = 10.0  # a changed secret or token takes effect within this long
LOCAL = "local"  # per process: a kept forge holds its secrets decrypted


def by_slug(slug: str) -> Forge | None:
    return caching.remembered(
        caching.key("forge", slug), SECONDS, lambda: _decrypted(slug=slug), alias=LOCAL
    )


def by_id(forge_id: int) -> Forge | None:
    return caching.remembered(
        caching.key("forge-id", forge_id), SECONDS, lambda: _decrypted(pk=forge_id), alias=LOCAL
    )


def _decrypted(**lookup: object) -> Forge | None:
    forge = Forge.objects.filter(**lookup).first()
    if forge is not None:
        forge.webhook_secret  # noqa: B018 - decrypt now, not on every delivery
        forge.token  # noqa: B018
    return forge


@receiver([post_save, post_delete], sender=Forge)
def _forget(sender: type[Forge], instance: Forge, **kwargs: object) -> None:
    caches[LOCAL].clear()  # a renamed slug too; the rest of this cache is a few rule secrets
