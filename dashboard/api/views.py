"""Read endpoints and actions. Views stay thin: who sees what comes from ``permissions``
(``chains.policy``), what may be done from ``chains.policy``, and every action is one domain
verb of ``bots.services``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db.models import Prefetch, QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from bots import services
from chains import quarantine, retrying
from chains.models import Chain, Repository, Run
from dashboard.api import filters
from dashboard.api.permissions import access, require
from dashboard.api.serializers import (
    ChainDetailSerializer,
    ChainSerializer,
    ErrorSerializer,
    RepositorySerializer,
    RunDetailSerializer,
    RunSerializer,
)
from dashboard.filters import ChainFilterSet


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The action was refused."
    default_code = "refused"


@contextmanager
def refused_as_conflict() -> Iterator[None]:
    """A domain verb's refusal (``services.ActionRefused``) is a 409 carrying its words."""
    try:
        yield
    except services.ActionRefused as refused:
        raise Conflict(str(refused)) from refused


class Pagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


def _errors(*codes: int) -> dict[int, OpenApiResponse]:
    words = {
        400: "A query parameter is not valid (the body names it)",
        401: "Not signed in: send `Authorization: Token …` or a session cookie",
        403: "The permission policy does not allow it; `detail` says why",
        404: "No such object among those you may view (lists: a page past the last)",
        409: "Refused in its present state; `detail` says why",
    }
    return {
        code: OpenApiResponse(
            OpenApiTypes.OBJECT if code == 400 else ErrorSerializer, description=words[code]
        )
        for code in codes
    }


READ_ERRORS = _errors(401, 404)
LIST_ERRORS = _errors(400, 401, 404)


def _action_schema(answer: type[BaseSerializer[Any]], summary: str) -> Any:
    return extend_schema(
        summary=summary,
        request=None,
        responses={202: answer, **_errors(401, 403, 404, 409)},
    )


class BatonViewSet(viewsets.ReadOnlyModelViewSet[Any]):
    lookup_value_converter = "int"
    filter_backends = [filters.QueryFilterBackend]
    pagination_class = Pagination

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "access": access(self.request)}

    def actor(self) -> services.Actor:
        user = self.request.user
        return services.Actor(
            user.get_username(),
            "api",
            user=user,
            remote_addr=self.request.META.get("REMOTE_ADDR"),
        )

    def accepted(self, instance_pk: int) -> Response:
        """202 with the object as it is now."""
        fresh = self.get_queryset().get(pk=instance_pk)
        return Response(self.get_serializer(fresh).data, status=status.HTTP_202_ACCEPTED)


@extend_schema_view(
    list=extend_schema(
        summary="Chains you may view, newest first",
        responses={200: ChainSerializer(many=True), **LIST_ERRORS},
    ),
    retrieve=extend_schema(
        summary="A chain with its runs", responses={200: ChainDetailSerializer, **READ_ERRORS}
    ),
)
class ChainViewSet(BatonViewSet):
    filter_backends = [filters.ChainFilterBackend]
    filterset_class = ChainFilterSet  # the same filters as the dashboard's chain list

    def get_queryset(self) -> QuerySet[Chain]:
        chains = (
            Chain.objects.visible_to(self.request.user)
            .select_related("forge", "repository")
            .order_by("-created_at", "-id")
        )
        if self.action != "list":
            runs = Run.objects.select_related("repository__forge").order_by("depth", "id")
            chains = chains.prefetch_related(Prefetch("runs", queryset=runs))
        return chains

    def get_serializer_class(self) -> type[BaseSerializer[Any]]:
        return ChainSerializer if self.action == "list" else ChainDetailSerializer

    @_action_schema(ChainDetailSerializer, "Cancel every active run of the chain")
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: int) -> Response:
        chain = self.get_object()
        require(request, "cancel-chain", chain)
        with refused_as_conflict():
            if not services.cancel_chain(chain, actor=self.actor()):
                raise services.ActionRefused(
                    "Nothing to cancel: no run of this chain is still active."
                )
        return self.accepted(chain.pk)

    @_action_schema(ChainDetailSerializer, "Retry every failed run of the chain")
    @action(detail=True, methods=["post"], url_path="retry-failed")
    def retry_failed(self, request: Request, pk: int) -> Response:
        chain = self.get_object()
        require(request, "retry-failed", chain)
        with refused_as_conflict():
            services.retry_failed(chain, actor=self.actor())
        return self.accepted(chain.pk)

    @_action_schema(
        ChainDetailSerializer,
        "Plan and run the change again on its latest commit (a new chain supersedes this one)",
    )
    @action(detail=True, methods=["post"])
    def rerun(self, request: Request, pk: int) -> Response:
        chain = self.get_object()
        require(request, "rerun", chain)
        with refused_as_conflict():
            services.rerun_chain(chain, actor=self.actor())
        return self.accepted(chain.pk)


@extend_schema_view(
    list=extend_schema(
        summary="Runs of the chains you may view",
        parameters=[filters.RunFilters],
        responses={200: RunSerializer(many=True), **LIST_ERRORS},
    ),
    retrieve=extend_schema(
        summary="A run with its earlier attempts",
        responses={200: RunDetailSerializer, **READ_ERRORS},
    ),
)
class RunViewSet(BatonViewSet):
    filters = filters.RUNS

    def get_queryset(self) -> QuerySet[Run]:
        runs = (
            Run.objects.visible_to(self.request.user)
            .select_related("repository__forge")
            .order_by("-chain_id", "depth", "id")
        )
        if self.action != "list":
            runs = runs.prefetch_related("attempts")
        return runs

    def get_serializer_class(self) -> type[BaseSerializer[Any]]:
        return RunSerializer if self.action == "list" else RunDetailSerializer

    @_action_schema(RunDetailSerializer, "Retry a failed or canceled run, as a new attempt")
    @action(detail=True, methods=["post"])
    def retry(self, request: Request, pk: int) -> Response:
        run = self.get_object()
        require(request, "retry", run)
        with refused_as_conflict():
            services.retry_run(run, actor=self.actor())
        return self.accepted(run.pk)

    @_action_schema(
        RunDetailSerializer, "Run it again as a fresh pipeline, and everything it set off"
    )
    @action(detail=True, methods=["post"], url_path="retry-subtree")
    def retry_subtree(self, request: Request, pk: int) -> Response:
        run = self.get_object()
        require(request, "retry-subtree", run)
        with refused_as_conflict():
            services.retry_subtree(run, actor=self.actor())
        return self.accepted(run.pk)

    @_action_schema(RunDetailSerializer, "Cancel a run and what it triggered")
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: int) -> Response:
        run = self.get_object()
        require(request, "cancel", run)
        with refused_as_conflict():
            if not services.cancel_run(run, actor=self.actor()):
                name = run.label or run.key if access(request).sees(run.repository_id) else ""
                raise services.ActionRefused(
                    f"{name or 'This run'} was not canceled: it has already finished or a "
                    "cancel is under way."
                )
        return self.accepted(run.pk)


@extend_schema_view(
    list=extend_schema(
        summary="Repositories you may view",
        parameters=[filters.RepositoryFilters],
        responses={200: RepositorySerializer(many=True), **LIST_ERRORS},
    ),
    retrieve=extend_schema(
        summary="A repository", responses={200: RepositorySerializer, **READ_ERRORS}
    ),
)
class RepositoryViewSet(BatonViewSet):
    serializer_class = RepositorySerializer
    filters = filters.REPOSITORIES

    def get_queryset(self) -> QuerySet[Repository]:
        visible = Repository.objects.visible_to(self.request.user)
        shown = quarantine.with_quarantine(retrying.with_flakiness(visible))
        return shown.select_related("forge").order_by("forge__slug", "path")
