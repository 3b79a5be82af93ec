"""Query-string filters of the list endpoints: each a serializer that validates the parameters
(a bad value is a 400 that names it) and a function that narrows the queryset. A blank text
parameter (``?project=``) filters nothing. Chains are filtered by the dashboard's own
``ChainFilterSet`` (django-filter), through ``ChainFilterBackend``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import serializers
from rest_framework.filters import BaseFilterBackend
from rest_framework.request import Request

from chains.models import Repository, Run
from chains.status import Status
from dashboard.api.permissions import Access, access
from dashboard.filters import MAX_ID


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


RUNS = Filters(RunFilters, runs)
REPOSITORIES = Filters(RepositoryFilters, repositories)


class ChainFilterBackend(DjangoFilterBackend):
    """``dashboard.filters.ChainFilterSet`` on list requests (a bad value: 400 naming it). Its
    parameters are documented in the OpenAPI schema from the filter set."""

    def filter_queryset(self, request: Request, queryset: QuerySet[Any], view: Any) -> Any:
        if getattr(view, "action", None) != "list":
            return queryset
        return super().filter_queryset(request, queryset, view)


class QueryFilterBackend(BaseFilterBackend):
    """Applies the view's ``filters`` (a ``Filters``) on list requests."""

    def filter_queryset(self, request: Request, queryset: QuerySet[Any], view: Any) -> Any:
        filters: Filters | None = getattr(view, "filters", None)
        if filters is None or getattr(view, "action", None) != "list":
            return queryset
        parameters = filters.parameters(data=request.query_params)
        parameters.is_valid(raise_exception=True)
        return filters.apply(queryset, dict(parameters.validated_data), access(request))
