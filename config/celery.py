import os

from celery import Celery, signals
from django.db import close_old_connections

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from config.preflight import settings_or_exit

settings_or_exit()  # a worker with a bad setting stops with one line naming it

app = Celery("baton")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Celery's Django fix-up closes every database connection before and after each task unless
# this is set: a new PostgreSQL connection (a backend process forked, authenticated) for every
# task, a few ms of CPU and of latency each (docs/benchmarks.md, the fan-out's profile). Keep
# them; Django's own rule closes them instead (CONN_MAX_AGE, or unusable), before each task.
app.conf.CELERY_DB_REUSE_MAX = 1_000_000
app.autodiscover_tasks()


@signals.task_prerun.connect
def _fresh_enough_connections(sender: object = None, **extra: object) -> None:
    # Not for an eager task: it runs inside its caller, whose transaction may be open.
    request = getattr(sender, "request", None)
    if not getattr(request, "is_eager", False):
        close_old_connections()


# Log ids, queue wait, task durations and retries (docs/operations.md).
from config import observability  # noqa: E402, F401
