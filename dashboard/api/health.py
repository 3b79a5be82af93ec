"""Downstream health in the API: the numbers the dashboard's charts draw (dashboard/health.py),
and a repository's current `.baton.yml` and the admin rules that apply to it. Who sees what is
the policy's, as everywhere (``access``)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from chains.models import Repository
from dashboard import health, health_presenter
from dashboard.api.permissions import access
from dashboard.repository_config import current_config


class DaySerializer(serializers.Serializer[Any]):
    date = serializers.DateField()
    successes = serializers.IntegerField()
    failures = serializers.IntegerField()
    p50_seconds = serializers.FloatField(allow_null=True, help_text="Of the day's successful runs")
    p90_seconds = serializers.FloatField(allow_null=True)


class TargetSerializer(serializers.Serializer[Any]):
    repository = serializers.IntegerField(help_text="The downstream repository's id")
    project = serializers.CharField()
    forge = serializers.CharField()
    runs = serializers.IntegerField(help_text="Runs that finished as success or failed")
    failures = serializers.IntegerField()
    failure_rate = serializers.FloatField(allow_null=True, help_text="failures / runs")
    p50_seconds = serializers.FloatField(allow_null=True, help_text="Over the whole window")
    p90_seconds = serializers.FloatField(allow_null=True)
    marks = serializers.ListField(
        child=serializers.CharField(), help_text='e.g. "flaky", "quarantined"'
    )
    per_day = DaySerializer(many=True)


class HealthSerializer(serializers.Serializer[Any]):
    days = serializers.IntegerField()
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    left_off = serializers.IntegerField(help_text="Less busy targets not listed")
    targets = TargetSerializer(many=True)


DAYS = OpenApiParameter(
    "days",
    OpenApiTypes.INT,
    description=f"The window in days, 1 to {health.MAX_DAYS} (default {health.DEFAULT_DAYS})",
)


def _visible(request: Request) -> frozenset[int] | None:
    seen = access(request)
    return None if seen.everything else seen.visible


def _repository(request: Request, pk: int) -> Repository:
    seen = access(request)
    found = Repository.objects.select_related("forge").filter(pk=pk).first()
    if found is None or not seen.sees(found.pk):
        raise NotFound("No such repository among those you may view.")
    return found


class HealthView(APIView):
    @extend_schema(
        summary="Duration (p50/p90 per day) and failure rate of every downstream target you "
        "may view",
        parameters=[DAYS],
        responses={200: HealthSerializer},
    )
    def get(self, request: Request) -> Response:
        days = health.window_days(request.query_params.get("days"))
        found = health.health(_visible(request), days=days)
        return Response(health_presenter.health_data(found))


class RepositoryHealthView(APIView):
    @extend_schema(
        summary="Downstream health of the targets a repository's chains triggered",
        parameters=[DAYS],
        responses={200: HealthSerializer},
    )
    def get(self, request: Request, pk: int) -> Response:
        repository = _repository(request, pk)
        days = health.window_days(request.query_params.get("days"))
        found = health.health(_visible(request), days=days, upstream=repository.pk)
        return Response(health_presenter.health_data(found))


class RepositoryConfigView(APIView):
    @extend_schema(
        summary="A repository's current .baton.yml (default branch) and the admin rules that "
        "apply to it; masked values as ••••, private names hidden",
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request, pk: int) -> Response:
        repository = _repository(request, pk)
        view = current_config(repository, request.user)
        data = asdict(view)
        data["text"] = "\n".join(line["text"] for line in data.pop("lines"))
        for rule in data["rules"]:
            rule["text"] = "\n".join(line["text"] for line in rule.pop("lines"))
        data["read_at"] = view.read_at.isoformat() if view.read_at else None
        return Response(data)
