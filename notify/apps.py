from django.apps import AppConfig


class NotifyConfig(AppConfig):
    name = "notify"
    verbose_name = "Notifications"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        import logging

        # Apprise's own log lines may quote a channel's address (its secrets): they are captured
        # around each send (notify/channels.py) and only the scrubbed words are logged, by us.
        logging.getLogger("apprise").propagate = False
