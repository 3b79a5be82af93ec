"""``manage.py create_api_token <username> [--days N]``: a new API token for a user, printed once.

Only its hash is stored; nobody can read it back later. Revoke tokens in the admin (API tokens),
or all of a user's by changing their password.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from dashboard.api import tokens


class Command(BaseCommand):
    help = "Make an API token for a user and print it (once: only its hash is kept)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument(
            "--days",
            type=float,
            default=None,
            help=f"valid this many days (0: until revoked; default "
            f"BATON_API_TOKEN_TTL={settings.BATON_API_TOKEN_TTL:g})",
        )

    def handle(self, *args: Any, username: str, days: float | None, **options: Any) -> None:
        if days is not None and days < 0:
            raise CommandError("--days must be 0 (until revoked) or more")
        user = get_user_model()._default_manager.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user {username!r}")
        if not user.is_active:
            raise CommandError(f"user {username!r} is inactive: a token would not work")
        token, secret = tokens.issue(user, days=days)
        until = token.expiry.strftime("%Y-%m-%d %H:%M UTC") if token.expiry else "revoked"
        self.stdout.write(f"Generated token {secret} for user {username} (valid until {until})")
        self.stderr.write("Copy it now: Baton keeps only its hash and cannot show it again.")
