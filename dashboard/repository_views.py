"""The repository index, a repository's current `.baton.yml` and rules, and downstream health.
Thin, as ``dashboard/views.py``: parse, ask, shape, render; what a reader sees is the policy's."""

from __future__ import annotations

from typing import Any

from django.core.paginator import Paginator
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from chains.models import Chain, Repository
from dashboard import health, health_presenter, live, queries
from dashboard.access import may_view, viewer_required, visible_filter
from dashboard.repository_config import current_config

INDEX_PAGE_SIZE = 50


def repositories(user: Any) -> QuerySet[Repository]:
    """The repositories ``user`` may view, each with its latest chain's id, status and time
    (subqueries: one query for a page, whatever the number of chains)."""
    latest = Chain.objects.filter(repository_id=OuterRef("pk")).order_by("-created_at", "-pk")
    return (
        Repository.objects.visible_to(user)
        .select_related("forge")
        .only(
            "id",
            "path",
            "visibility",
            "default_branch",
            "web_url",
            "forge__name",
            "forge__slug",
            "forge__kind",
        )
        .annotate(
            latest_chain=Subquery(latest.values("pk")[:1]),
            latest_status=Subquery(latest.values("status")[:1]),
            latest_at=Subquery(latest.values("created_at")[:1]),
        )
        .order_by("path", "forge__slug")
    )


@require_GET
@viewer_required
def repository_index(request: HttpRequest) -> HttpResponse:
    page = Paginator(repositories(request.user), INDEX_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "dashboard/repositories.html", {"page": page})


def health_for(request: HttpRequest, upstream: int | None = None) -> health_presenter.HealthPage:
    days = health.window_days(request.GET.get("days"))
    found = health.health(visible_filter(request.user), days=days, upstream=upstream)
    return health_presenter.health_page(found)


@require_GET
@viewer_required
def downstream_health(request: HttpRequest) -> HttpResponse:
    context = {"health": health_for(request), "windows": (7, 14, 30, 90)}
    return render(request, "dashboard/health.html", context)


@require_GET
@viewer_required
def repository_config(request: HttpRequest, pk: int) -> HttpResponse:
    """The current `.baton.yml` and rules: the repository page loads it after the page (the
    forge may be slow); without JavaScript it is a page of its own."""
    repository = queries.repository(pk)
    if repository is None or not may_view(request.user, repository):
        raise Http404("No such repository.")
    context = {"repository": repository, "config": current_config(repository, request.user)}
    if live.partial(request):
        return render(request, "dashboard/repository_config.html#config", context)
    return render(request, "dashboard/repository_config.html", context)
