"""Who may do what: one policy for the dashboard, the API, comment commands and the engine.

A grant gives a team, a user or a forge group (a GitLab group or GitHub team whose members
signed in with that forge) some actions (view, trigger, retry, cancel, deploy; admin is all of
them) on the projects a glob names, on one forge or all. Forge accounts act through the Baton
user they are linked to (`Identity`; signing in with the forge links it). Every decision comes
with its reason in words.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from django.conf import settings
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from chains.conditions import glob_match
from chains.models import Chain, Forge, ForgeMembership, Grant, Identity, Repository, Run
from chains.redaction import PRIVATE
from chains.status import ACTIVE, Status

ACTIONS = ("view", "trigger", "retry", "cancel", "deploy", "quarantine", "admin")


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str

    def __bool__(self) -> bool:
        return self.allowed


def _covers(grant: Grant, action: str, repository: Repository) -> bool:
    return _covers_path(grant, action, repository.forge_id, repository.path)


def _covers_path(grant: Grant, action: str, forge_id: int, path: str) -> bool:
    if grant.forge_id is not None and grant.forge_id != forge_id:
        return False
    if action not in grant.actions and "admin" not in grant.actions:
        return False
    pattern = grant.projects.strip()
    return pattern == "*" or glob_match(pattern, path)


def member_of_forge_group(user: Any) -> Exists:
    """A grant's forge group is one the user belonged to on that forge when they last signed in
    with it, read no longer than ``BATON_SIGNIN_GROUPS_MAX_AGE`` seconds ago."""
    fresh_since = timezone.now() - timedelta(seconds=settings.BATON_SIGNIN_GROUPS_MAX_AGE)
    return Exists(
        ForgeMembership.objects.filter(
            identity__user=user,
            identity__forge_id=OuterRef("forge_id"),
            identity__groups_read_at__gte=fresh_since,
            name=OuterRef("forge_group"),
        )
    )


def grants_of(user: Any) -> list[Grant]:
    """The user's grants, read once per user object (one request sees one set of grants): their
    own, their teams', and those of the forge groups they belong to (one query)."""
    cached: list[Grant] | None = getattr(user, "_baton_grants", None)
    if cached is None:
        cached = list(
            Grant.objects.filter(Q(user=user) | Q(team__members=user) | member_of_forge_group(user))
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
            via = (
                f"team {grant.team.name}"
                if grant.team
                else f"forge group {grant.forge_group}"
                if grant.forge_group
                else "a personal grant"
            )
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


# --- whom a decision is about ------------------------------------------------------------------


class Principal(Protocol):
    """Who asks: a Baton user (dashboard, API) or a forge account resolved to one (comments)."""

    @property
    def username(self) -> str: ...

    def may(self, action: str, repository: Repository) -> Verdict: ...


class UserPrincipal:
    """A Baton user; its grants are read once."""

    def __init__(self, user: Any):
        self.user = user

    @property
    def username(self) -> str:
        name = getattr(self.user, "get_username", None)
        return str(name()) if name and getattr(self.user, "is_authenticated", False) else "nobody"

    def may(self, action: str, repository: Repository) -> Verdict:
        return user_may(self.user, action, repository)


def principal_for(user: Any) -> UserPrincipal:
    """The principal of a dashboard or API request (or of a re-run started there)."""
    return UserPrincipal(user)


# --- what may be seen: the one narrowing every list uses ---------------------------------------


def visible_repository_ids(user: Any) -> frozenset[int] | None:
    """Ids of the repositories ``user`` may view; None means every one (an administrator).
    Read once per user object: one query for the repositories, one for the grants."""
    if user is not None and getattr(user, "is_superuser", False) and user.is_active:
        return None
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return frozenset()
    cached: frozenset[int] | None = getattr(user, "_baton_visible", None)
    if cached is None:
        # ``user_may``'s "view" over every project, read as rows (no model per project: this
        # runs on every page).
        grants = [g for g in grants_of(user) if "view" in g.actions or "admin" in g.actions]
        rows = Repository.objects.values_list("id", "forge_id", "path")
        cached = frozenset(
            pk
            for pk, forge_id, path in rows
            if any(_covers_path(g, "view", forge_id, path) for g in grants)
        )
        user._baton_visible = cached
    return cached


# --- what a verb on an object needs ------------------------------------------------------------

# Verbs a person can ask for, on a run or on a chain.
RUN_VERBS = ("retry", "retry-subtree", "cancel")
CHAIN_VERBS = ("cancel-chain", "retry-failed", "rerun")
VERBS = ("view", *RUN_VERBS, *CHAIN_VERBS)


def _family(chain_id: int) -> list[Run]:
    return list(Run.objects.filter(chain_id=chain_id).select_related("repository"))


def _below(run: Run, family: list[Run], follow: Any = lambda child: True) -> list[Run]:
    """Descendants of ``run`` reached through children for which ``follow`` holds."""
    found: list[Run] = []
    todo = [run.pk]
    while todo:
        parent = todo.pop(0)
        for child in family:
            if child.parent_id == parent and follow(child):
                found.append(child)
                todo.append(child.pk)
    return found


def needs(verb: str, target: Run | Chain) -> list[tuple[str, Repository]]:
    """The (action, repository) pairs ``verb`` on ``target`` needs, each repository once.

    view: view on the chain's project. retry: retry on the run's project. retry-subtree: retry
    on the run and every run it set off. cancel: cancel on the run and every active run the
    cancel propagates to. cancel-chain: cancel on every active run and on the chain's project.
    retry-failed: retry on every failed run and on the chain's project. rerun: trigger on the
    chain's project and every target of the chain (deploy on its deploy targets)."""
    pairs: list[tuple[str, Repository]] = []
    if isinstance(target, Run):
        run = target
        if verb == "view":
            pairs = [("view", run.chain.repository)]
        elif verb == "retry":
            pairs = [("retry", run.repository)]
        elif verb == "retry-subtree":
            below = _below(run, _family(run.chain_id))
            pairs = [("retry", r.repository) for r in [run, *below]]
        elif verb == "cancel":

            def propagates(child: Run) -> bool:
                return child.cancel_policy == "propagate" and child.status in ACTIVE

            below = _below(run, _family(run.chain_id), propagates)
            pairs = [("cancel", r.repository) for r in [run, *below]]
        else:
            raise ValueError(f"{verb} is not something one does to a run")
    elif verb == "view":
        pairs = [("view", target.repository)]
    else:
        chain = target
        runs = sorted(_family(chain.pk), key=lambda r: (r.depth, r.pk))
        if verb == "cancel-chain":
            active = [r for r in runs if r.status in ACTIVE]
            pairs = [("cancel", r.repository) for r in active] + [("cancel", chain.repository)]
        elif verb == "retry-failed":
            failed = [r for r in runs if r.status == Status.FAILED]
            pairs = [("retry", r.repository) for r in failed] + [("retry", chain.repository)]
        elif verb == "rerun":
            pairs = [("trigger", chain.repository)] + [
                ("deploy" if r.deploy_environment else "trigger", r.repository) for r in runs
            ]
        else:
            raise ValueError(f"{verb} is not something one does to a chain")
    unique: dict[tuple[str, int], tuple[str, Repository]] = {}
    for action, repository in pairs:
        unique.setdefault((action, repository.pk), (action, repository))
    return list(unique.values())


def _nameable(principal: Principal, repository: Repository) -> bool:
    """May a refusal name ``repository`` to ``principal``?"""
    if repository.visibility == Repository.Visibility.PUBLIC:
        return True
    return bool(principal.may("view", repository))


def decide(principal: Principal, verb: str, target: Run | Chain) -> Verdict:
    """May ``principal`` do ``verb`` on ``target``? Every pair ``needs`` names is checked before
    anything is done: all or nothing. A refusal never names a project its reader may not view."""
    who = principal.username or "nobody"
    for action, repository in needs(verb, target):
        verdict = principal.may(action, repository)
        if verdict:
            continue
        if not _nameable(principal, repository):
            # The reason is kept only when it does not name the project (e.g. "not linked").
            why = "" if repository.path in verdict.reason else f": {verdict.reason}"
            return Verdict(False, f"{who} may not {action} {PRIVATE} this touches{why}")
        return Verdict(False, f"{who} may not {action} {repository.path}: {verdict.reason}")
    return Verdict(True, f"{who} may {verb}")
