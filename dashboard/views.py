"""Release managers' pages. Thin: read the database, render."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from chains.models import Chain
from chains.status import FINISHED


@login_required
def chain_list(request: HttpRequest) -> HttpResponse:
    chains = (
        Chain.objects.select_related("repository", "forge")
        .annotate(
            total=Count("runs"),
            done=Count("runs", filter=Q(runs__status__in=sorted(FINISHED))),
        )
        .order_by("-created_at")[:100]
    )
    return render(request, "dashboard/chain_list.html", {"chains": chains})


@login_required
def chain_detail(request: HttpRequest, pk: int) -> HttpResponse:
    chain = get_object_or_404(Chain.objects.select_related("repository", "forge"), pk=pk)
    runs = chain.runs.select_related("repository").order_by("depth", "pk")
    return render(request, "dashboard/chain_detail.html", {"chain": chain, "runs": runs})
