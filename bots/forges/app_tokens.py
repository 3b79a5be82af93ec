"""Where a GitHub App forge keeps what every Baton process must share: the installation token of
each installation (in the database, encrypted, one row per installation) and which installation
covers which repository (in Django's cache: a lookup any process may repeat).

A token is handed out until it is close to its expiry: ``BATON_GITHUB_APP_RENEW_BEFORE`` seconds
before (default 300, five minutes of GitHub's hour), and never later than the last twelfth of its
lifetime (so a sandbox whose hour passes in seconds renews in time too).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from chains.models import AppInstallation

INSTALLATION_CACHE_SECONDS = 3600  # which installation covers a repository, remembered an hour


class DatabaseTokens:
    """The ``bots.forges.github.InstallationTokens`` of one forge row and App."""

    def __init__(self, forge_id: int, app_id: int, api_url: str) -> None:
        self.forge_id = forge_id
        self.app_id = app_id
        self._prefix = (
            "baton:gh-app:"
            + hashlib.sha256(f"{forge_id}|{app_id}|{api_url}".encode()).hexdigest()[:24]
        )

    # -- tokens ------------------------------------------------------------------------------

    def current(self, installation_id: int) -> str | None:
        """The stored token of ``installation_id``, unless it is about to expire."""
        row = (
            AppInstallation.objects.filter(
                forge_id=self.forge_id, app_id=self.app_id, installation_id=installation_id
            )
            .only("token", "minted_at", "expires_at")
            .first()
        )
        if row is None or not row.token or row.expires_at is None:
            return None
        now = timezone.now()
        lifetime = (row.expires_at - (row.minted_at or now)).total_seconds()
        margin = min(float(settings.BATON_GITHUB_APP_RENEW_BEFORE), max(lifetime, 0.0) / 12)
        if row.expires_at - timedelta(seconds=margin) <= now:
            return None
        return str(row.token)

    def keep(self, installation_id: int, token: str, expires_at: datetime | None) -> None:
        now = timezone.now()
        if expires_at is not None and timezone.is_naive(expires_at):
            expires_at = expires_at.replace(tzinfo=UTC)
        AppInstallation.objects.update_or_create(
            forge_id=self.forge_id,
            app_id=self.app_id,
            installation_id=installation_id,
            defaults={
                "token": token,
                "minted_at": now,
                "expires_at": expires_at or now + timedelta(hours=1),
            },
        )

    def drop(self, installation_id: int, token: str) -> None:
        """Forget ``token`` (refused by GitHub), unless another process already replaced it."""
        with transaction.atomic():
            row = (
                AppInstallation.objects.select_for_update()
                .filter(forge_id=self.forge_id, app_id=self.app_id, installation_id=installation_id)
                .first()
            )
            if row is not None and row.token == token:
                row.token, row.expires_at = None, None
                row.save(update_fields=["token", "expires_at"])

    # -- installations -----------------------------------------------------------------------

    def _key(self, repository: str) -> str:
        digest = hashlib.sha256(repository.lower().encode()).hexdigest()[:32]
        return f"{self._prefix}:repo:{digest}"

    def installation_of(self, repository: str) -> int | None:
        value = cache.get(self._key(repository))
        return int(value) if isinstance(value, int) else None

    def remember(self, repository: str, installation_id: int) -> None:
        cache.set(self._key(repository), int(installation_id), INSTALLATION_CACHE_SECONDS)

    def forget(self, repository: str) -> None:
        cache.delete(self._key(repository))

    def known(self) -> list[tuple[int, str]]:
        """(installation id, account) of the installations seen so far."""
        return list(
            AppInstallation.objects.filter(forge_id=self.forge_id, app_id=self.app_id)
            .order_by("installation_id")
            .values_list("installation_id", "account")
        )

    def record(self, installations: list[tuple[int, str]]) -> None:
        """Remember the installations GitHub listed (their accounts, for people to read)."""
        for installation_id, account in installations:
            AppInstallation.objects.update_or_create(
                forge_id=self.forge_id,
                app_id=self.app_id,
                installation_id=installation_id,
                defaults={"account": account[:255]},
            )
