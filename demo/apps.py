from django.apps import AppConfig


class DemoConfig(AppConfig):
    """`manage.py demo` (`make run`): Baton with the sandbox forge and a seeded demo. Installed
    only when DEBUG is on (see config/settings.py), so no production app imports the sandbox."""

    name = "demo"
    verbose_name = "Demo"
