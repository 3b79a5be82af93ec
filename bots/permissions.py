"""The policy, plus the forge's own word where a forge is set to fall back on it."""

from __future__ import annotations

from bots.forges.base import ForgeError
from bots.forges.registry import forge_for
from chains.models import Forge, Repository
from chains.policy import Verdict, person_may

# What a forge's write access stands for when no grant matches.
FORGE_DECIDES = ("view", "trigger", "retry", "cancel")


def may(forge: Forge, username: str, action: str, repository: Repository) -> Verdict:
    """May the forge account ``username`` do ``action`` on ``repository``?"""
    verdict = person_may(forge, username, action, repository)
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
