import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from config.preflight import settings_or_exit

settings_or_exit()  # a worker with a bad setting stops with one line naming it

app = Celery("baton")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Log ids, queue wait, task durations and retries (docs/operations.md).
from config import observability  # noqa: E402, F401
