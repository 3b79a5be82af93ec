"""Mounted at ``/api/``: the API at ``v1/``, its OpenAPI schema at ``schema/``, a docs page at
``docs/``."""

from __future__ import annotations

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.routers import DefaultRouter

from dashboard.api import docs, health, views


class Router(DefaultRouter):
    include_format_suffixes = False  # `?format=json` still works; `.json` paths are not routed


router = Router(use_regex_path=False)
router.register("chains", views.ChainViewSet, basename="chain")
router.register("runs", views.RunViewSet, basename="run")
router.register("repositories", views.RepositoryViewSet, basename="repository")

app_name = "api"
urlpatterns = [
    path("v1/health/", health.HealthView.as_view(), name="health"),
    path(
        "v1/repositories/<int:id>/health/",
        health.RepositoryHealthView.as_view(),
        name="repository-health",
    ),
    path("v1/", include(router.urls)),
    path(
        "schema/",
        SpectacularAPIView.as_view(permission_classes=[docs.SchemaAccess]),
        name="schema",
    ),
    path("docs/", docs.api_docs, name="docs"),
]
