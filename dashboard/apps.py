from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "dashboard"

    def ready(self) -> None:
        # A user's API tokens end when their password changes.
        from dashboard import signin
        from dashboard.api import tokens

        tokens.connect()
        signin.connect()  # a forge sign-in links the account (docs/sign-in.md)


class ApiTokensConfig(AppConfig):
    """django-rest-knox's app under a name admins recognise (its admin index heading)."""

    name = "knox"
    label = "knox"
    default = False  # "dashboard" keeps DashboardConfig as its own
    verbose_name = "API tokens"
