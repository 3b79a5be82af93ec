import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("baton")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Log ids, queue wait, task durations and retries (docs/operations.md).
from config import observability  # noqa: E402, F401
