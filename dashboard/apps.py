from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "dashboard"

    def ready(self) -> None:
        # A user's API tokens end when their password changes.
        from dashboard.api import tokens

        tokens.connect()
