from django.apps import AppConfig


class BotsConfig(AppConfig):
    name = "bots"
    verbose_name = "Forge bot"

    def ready(self) -> None:
        # Register the Celery tasks in every process (web ones too): bots/kicks.py finds them by
        # name, so that the engine never imports the task module that imports it.
        from bots import tasks  # noqa: F401
