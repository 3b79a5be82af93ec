"""Who may do what: one policy for the dashboard, the API, comment commands and the engine.

A grant gives a team or a user some actions (view, trigger, retry, cancel, deploy; admin is all
of them) on the projects a glob names, on one forge or all. Forge accounts act through the Baton
user they are linked to (`Identity`). Every decision comes with its reason in words.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Q

from chains.conditions import glob_match
from chains.models import Forge, Grant, Identity, Repository

ACTIONS = ("view", "trigger", "retry", "cancel", "deploy", "admin")


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str

    def __bool__(self) -> bool:
        return self.allowed


def _covers(grant: Grant, action: str, repository: Repository) -> bool:
    if grant.forge_id is not None and grant.forge_id != repository.forge_id:
        return False
    if action not in grant.actions and "admin" not in grant.actions:
        return False
    pattern = grant.projects.strip()
    return pattern == "*" or glob_match(pattern, repository.path)


def grants_of(user: Any) -> list[Grant]:
    """The user's grants, read once per user object (one request sees one set of grants)."""
    cached: list[Grant] | None = getattr(user, "_baton_grants", None)
    if cached is None:
        cached = list(
            Grant.objects.filter(Q(user=user) | Q(team__members=user))
            .select_related("team")
            .distinct()
        )
        user._baton_grants = cached
    return cached


def user_may(
    user: Any, action: str, repository: Repository, grants: list[Grant] | None = None
) -> Verdict:
    name = getattr(user, "get_username", lambda: "someone")()
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return Verdict(False, "sign in first")
    if user.is_superuser:
        return Verdict(True, f"{name} is an administrator")
    for grant in grants if grants is not None else grants_of(user):
        if _covers(grant, action, repository):
            via = f"team {grant.team.name}" if grant.team else "a personal grant"
            return Verdict(True, f"{name} may {action} {repository.path} through {via}")
    return Verdict(False, f"no grant gives {name} {action} on {repository.path}")


def account_user(forge: Forge, username: str) -> Any:
    identity = Identity.objects.filter(forge=forge, username=username).select_related("user")
    found = identity.first()
    return found.user if found else None


def person_may(forge: Forge, username: str, action: str, repository: Repository) -> Verdict:
    """For a forge account: through the Baton user it is linked to."""
    return account_may(account_user(forge, username), forge, username, action, repository)


def account_may(
    user: Any, forge: Forge, username: str, action: str, repository: Repository
) -> Verdict:
    """``person_may`` with the account's Baton user already looked up (None: not linked)."""
    if user is None:
        return Verdict(False, f"{username} on {forge.name} is not linked to a Baton user")
    verdict = user_may(user, action, repository)
    return Verdict(verdict.allowed, verdict.reason.replace(user.get_username(), username, 1))


def visible(user: Any, repositories: list[Repository]) -> set[int]:
    """Ids of the repositories ``user`` may view (one query for the grants)."""
    if user is not None and getattr(user, "is_superuser", False):
        return {r.pk for r in repositories}
    if user is None or not getattr(user, "is_authenticated", False):
        return set()
    grants = grants_of(user)
    return {r.pk for r in repositories if user_may(user, "view", r, grants)}
