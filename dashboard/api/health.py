"""Downstream health in the API: the numbers the dashboard's charts draw (dashboard/health.py).
Who sees what is the policy's, as everywhere (``access``)."""

from __future__ import annotations

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
from dashboard.api.views import _errors


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
        responses={200: HealthSerializer, **_errors(401)},
    )
    def get(self, request: Request) -> Response:
        days = health.window_days(request.query_params.get("days"))
        found = health.health(_visible(request), days=days)
        return Response(health_presenter.health_data(found))


class RepositoryHealthView(APIView):
    @extend_schema(
        summary="Downstream health of the targets a repository's chains triggered",
        parameters=[DAYS],
        responses={200: HealthSerializer, **_errors(401, 404)},
    )
    def get(self, request: Request, id: int) -> Response:  # {id}: as the schema names it
        repository = _repository(request, id)
        days = health.window_days(request.query_params.get("days"))
        found = health.health(_visible(request), days=days, upstream=repository.pk)
        return Response(health_presenter.health_data(found))
