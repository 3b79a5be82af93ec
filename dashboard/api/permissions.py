"""Who sees what and who may act, through ``chains.policy`` only.

A request's view of the world is computed once: the ids of the repositories its user may view.
Chains are listed when their repository is among them; runs when their chain is; a run whose own
(downstream) repository is not among them is shown as a private project (see serializers).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.db.models import Model, QuerySet
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request

from chains import policy
from chains.models import Repository
from chains.redaction import PRIVATE_NAME as PRIVATE

M = TypeVar("M", bound=Model)


@dataclass(frozen=True)
class Access:
    """What one request's user may view: every repository, or those whose ids are listed."""

    user: Any
    visible: frozenset[int]
    everything: bool

    def sees(self, repository_id: int | None) -> bool:
        return self.everything or repository_id in self.visible

    def only_visible(self, queryset: QuerySet[M], field: str) -> QuerySet[M]:
        """``queryset`` narrowed to rows whose ``field`` (a repository id) the user may view."""
        if self.everything:
            return queryset
        return queryset.filter(**{f"{field}__in": sorted(self.visible)})


def access(request: Request) -> Access:
    """The request's ``Access``, computed on first use (one query for repositories, one for
    the user's grants) and kept on the request."""
    found = getattr(request, "_baton_access", None)
    if found is None:
        repositories = list(Repository.objects.only("id", "forge_id", "path"))
        ids = policy.visible(request.user, repositories)
        # The policy lets a superuser view everything, repositories added a moment ago
        # included: no need to list them. Anyone else's querysets are narrowed to ``ids``.
        everything = bool(getattr(request.user, "is_superuser", False))
        found = Access(request.user, frozenset(ids), everything=everything)
        request._baton_access = found  # type: ignore[attr-defined]
    return found


def require(request: Request, action: str, repositories: Iterable[Repository]) -> None:
    """Raise 403 with the policy's reason unless the user may ``action`` on every repository.

    A reason naming a repository the user may not view would disclose it: it is put in words
    that do not name it."""
    seen = access(request)
    for repository in {r.pk: r for r in repositories}.values():
        verdict = policy.user_may(request.user, action, repository)
        if not verdict.allowed:
            if seen.sees(repository.pk):
                raise PermissionDenied(verdict.reason)
            raise PermissionDenied(f"you may not {action} a {PRIVATE} this touches")
