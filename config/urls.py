from django.contrib import admin
from django.urls import include, path

from config import health, metrics

urlpatterns = [
    path("admin/", admin.site.urls),
    path("hooks/", include("bots.urls")),
    path("api/", include("dashboard.api.urls")),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics, name="metrics"),
    path("", include("dashboard.urls")),
]
