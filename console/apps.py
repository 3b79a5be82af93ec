from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    """The admin console: Django's admin over the models of `chains`, with actions that ask
    the forges (through `bots`). It has no models of its own; its pages keep the `chains` URLs
    (/admin/chains/forge/…) and permissions (chains.manage_forge)."""

    name = "console"
    verbose_name = "Admin console"
