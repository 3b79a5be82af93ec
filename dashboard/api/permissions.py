"""Who sees what and who may act, through ``chains.policy`` only.

A request's view of the world is computed once: the ids of the repositories its user may view.
Chains are listed when their repository is among them; runs when their chain is; a run whose own
(downstream) repository is not among them is shown as a private project (see serializers).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from django.db.models import Model, QuerySet
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request

from chains import policy
from chains.models import Chain, Run

M = TypeVar("M", bound=Model)

PRIVATE = "private project"


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
    """The request's ``Access``: the policy's visible repositories, read once per request."""
    found = getattr(request, "_baton_access", None)
    if found is None:
        ids = policy.visible_repository_ids(request.user)
        found = Access(request.user, ids or frozenset(), everything=ids is None)
        request._baton_access = found  # type: ignore[attr-defined]
    return found


def require(request: Request, verb: str, target: Run | Chain) -> None:
    """Raise 403 with the policy's words unless the user may ``verb`` on ``target`` (and on
    everything it touches: ``chains.policy.needs``). The words never name a project the user
    may not view."""
    verdict = policy.decide(policy.principal_for(request.user), verb, target)
    if not verdict:
        raise PermissionDenied(verdict.reason)
