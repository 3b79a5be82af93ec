"""Query-string filters of the list endpoints: each a serializer that validates the parameters
(a bad value is a 400 that names it) and a function that narrows the queryset. A blank text
parameter (``?project=``) filters nothing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import reduce
from operator import and_, or_
from typing import Any

from django.db.models import Q, QuerySet
from rest_framework import serializers
from rest_framework.filters import BaseFilterBackend
from rest_framework.request import Request

from chains.models import Chain, Repository, Run
from chains.status import Status
from dashboard.api.permissions import Access, access

MAX_ID = 2**63 - 1  # the widest integer column; larger values would not reach the database


class ChainFilters(serializers.Serializer[Any]):
    """Query parameters of ``GET /api/v1/chains/``."""

    project = serializers.CharField(
        required=False, allow_blank=True, help_text="Upstream project path, e.g. acme/app"
    )
    forge = serializers.SlugField(required=False, help_text="Forge slug, as in /hooks/<slug>/")
    change = serializers.IntegerField(
        required=False,
        min_value=0,
        max_value=MAX_ID,
        help_text="Merge request iid or pull request number",
    )
    status = serializers.MultipleChoiceField(
        choices=Status.choices, required=False, help_text="One or more (repeat the parameter)"
    )
    target_branch = serializers.CharField(required=False, allow_blank=True)
    created_after = serializers.DateTimeField(required=False, help_text="ISO 8601, inclusive")
    created_before = serializers.DateTimeField(required=False, help_text="ISO 8601, exclusive")
    search = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text="Words, each found in the title, author, source branch, project path or as "
        "the start of the head sha",
    )


class RunFilters(serializers.Serializer[Any]):
    """Query parameters of ``GET /api/v1/runs/``."""

    chain = serializers.IntegerField(
        required=False, min_value=0, max_value=MAX_ID, help_text="Chain id"
    )
    status = serializers.MultipleChoiceField(
        choices=Status.choices, required=False, help_text="One or more (repeat the parameter)"
    )
    project = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text="The run's own (downstream) project path; private projects never match",
    )
    forge = serializers.SlugField(
        required=False, help_text="Forge slug of the run's project; private projects never match"
    )


class RepositoryFilters(serializers.Serializer[Any]):
    """Query parameters of ``GET /api/v1/repositories/``."""

    forge = serializers.SlugField(required=False, help_text="Forge slug")
    search = serializers.CharField(required=False, allow_blank=True, help_text="Part of the path")


def _words(text: str) -> list[str]:
    return text.split()[:10]


def chains(queryset: QuerySet[Chain], data: dict[str, Any], _: Access) -> QuerySet[Chain]:
    if data.get("project"):
        queryset = queryset.filter(repository__path=data["project"])
    if data.get("forge"):
        queryset = queryset.filter(forge__slug=data["forge"])
    if "change" in data:
        queryset = queryset.filter(change_number=data["change"])
    if data.get("status"):
        queryset = queryset.filter(status__in=sorted(data["status"]))
    if data.get("target_branch"):
        queryset = queryset.filter(target_branch=data["target_branch"])
    if "created_after" in data:
        queryset = queryset.filter(created_at__gte=data["created_after"])
    if "created_before" in data:
        queryset = queryset.filter(created_at__lt=data["created_before"])
    words = _words(data.get("search", ""))
    if words:
        queryset = queryset.filter(
            reduce(
                and_,
                (
                    reduce(
                        or_,
                        (
                            Q(title__icontains=word),
                            Q(author__icontains=word),
                            Q(source_branch__icontains=word),
                            Q(repository__path__icontains=word),
                            Q(head_sha__startswith=word.lower()),
                        ),
                    )
                    for word in words
                ),
            )
        )
    return queryset


def runs(queryset: QuerySet[Run], data: dict[str, Any], seen: Access) -> QuerySet[Run]:
    if "chain" in data:
        queryset = queryset.filter(chain_id=data["chain"])
    if data.get("status"):
        queryset = queryset.filter(status__in=sorted(data["status"]))
    if data.get("project") or data.get("forge"):
        # Filtering by a project must not tell which runs target one the user may not view.
        queryset = seen.only_visible(queryset, "repository_id")
        if data.get("project"):
            queryset = queryset.filter(repository__path=data["project"])
        if data.get("forge"):
            queryset = queryset.filter(repository__forge__slug=data["forge"])
    return queryset


def repositories(
    queryset: QuerySet[Repository], data: dict[str, Any], _: Access
) -> QuerySet[Repository]:
    if data.get("forge"):
        queryset = queryset.filter(forge__slug=data["forge"])
    for word in _words(data.get("search", "")):
        queryset = queryset.filter(path__icontains=word)
    return queryset


@dataclass(frozen=True)
class Filters:
    parameters: type[serializers.Serializer[Any]]
    apply: Callable[[QuerySet[Any], dict[str, Any], Access], QuerySet[Any]]


CHAINS = Filters(ChainFilters, chains)
RUNS = Filters(RunFilters, runs)
REPOSITORIES = Filters(RepositoryFilters, repositories)


class QueryFilterBackend(BaseFilterBackend):
    """Applies the view's ``filters`` (a ``Filters``) on list requests."""

    def filter_queryset(self, request: Request, queryset: QuerySet[Any], view: Any) -> Any:
        filters: Filters | None = getattr(view, "filters", None)
        if filters is None or getattr(view, "action", None) != "list":
            return queryset
        parameters = filters.parameters(data=request.query_params)
        parameters.is_valid(raise_exception=True)
        return filters.apply(queryset, dict(parameters.validated_data), access(request))
