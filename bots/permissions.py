"""The policy, plus the forge's own word where a forge is set to fall back on it."""

from __future__ import annotations

from django.contrib.auth import get_user_model

from bots import caching
from bots.forges.base import ForgeError
from bots.forges.registry import forge_for
from chains import audit
from chains.models import Forge, Identity, Repository
from chains.policy import Verdict, account_may, account_user

# What a forge's write access stands for when no grant matches.
FORGE_DECIDES = ("view", "trigger", "retry", "cancel")


LOOKUP_AGAIN_AFTER = 60.0  # seconds before asking the forge again about an unlinked account


def link_by_email(forge: Forge, username: str) -> Identity | None:
    """Link a forge account to the one Baton user with the e-mail address it shows publicly.
    The forge is asked at most once a minute per account (per process, or across processes
    with a shared cache)."""
    if not username or Identity.objects.filter(forge=forge, username=username).exists():
        return None
    if not caching.first_time(caching.key("email-lookup", forge.pk, username), LOOKUP_AGAIN_AFTER):
        return None
    try:
        email = forge_for(forge).public_email(username)
    except ForgeError:
        return None
    users = (
        list(get_user_model().objects.filter(email__iexact=email, is_active=True)[:2])
        if email
        else []
    )
    if len(users) != 1:
        return None
    identity, created = Identity.objects.get_or_create(
        forge=forge,
        username=username,
        defaults={"user": users[0], "linked_by": Identity.Link.EMAIL},
    )
    if created:
        audit.record(
            "identity.link",
            actor="baton",
            surface="system",
            target=f"{username} on {forge.name}",
            after={"user": users[0].get_username(), "by": "e-mail"},
        )
    return identity


class Person:
    """A forge account's permissions; its Baton user and grants are read once, so a chain of a
    hundred targets asks the database twice, not two hundred times."""

    def __init__(self, forge: Forge, username: str):
        self.forge = forge
        self.username = username
        # One query when the account is linked already (the usual case); else linked by its
        # e-mail address if it can be, as ``link_by_email`` says.
        self.user = account_user(forge, username)
        if self.user is None and (linked := link_by_email(forge, username)) is not None:
            self.user = linked.user

    def may(self, action: str, repository: Repository) -> Verdict:
        """May this account do ``action`` on ``repository``?"""
        forge, username = self.forge, self.username
        verdict = account_may(self.user, forge, username, action, repository)
        if verdict or action not in FORGE_DECIDES or repository.forge_id != forge.pk:
            return verdict
        if not repository.forge.forge_permissions:
            return verdict
        try:
            allowed = forge_for(repository.forge).can_write(repository.path, username)
        except ForgeError as exc:
            return Verdict(False, f"{verdict.reason}, and the forge could not tell: {exc.message}")
        where = f"{repository.path} on {repository.forge.name}"
        if allowed:
            return Verdict(True, f"{username} has write access to {where}")
        return Verdict(False, f"{verdict.reason}, and {username} has no write access to {where}")


def may(forge: Forge, username: str, action: str, repository: Repository) -> Verdict:
    """May the forge account ``username`` do ``action`` on ``repository``?"""
    return Person(forge, username).may(action, repository)
