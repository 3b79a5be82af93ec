"""After-commit task kicks: the one place the engine asks for Celery work.

The engine (``bots/engine``), the domain verbs (``bots/services.py``), the comment commands and the
webhook view call these; the tasks (``bots/tasks.py``) call the engine. So that the import graph
stays ``tasks → engine → chains`` with no cycle, this module never imports ``bots.tasks``: it
finds each task by its registered name (``bots/apps.py`` registers them when Django starts), so
that eager mode, and tests that patch ``bots.tasks.<task>.apply_async``, behave as before.

Every kick but ``deliver`` runs after the current transaction commits (at once outside one): a
worker must never see a run or chain before the row that asks for the work is visible.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from celery import current_app
from celery.utils import uuid
from django.conf import settings
from django.db import transaction

from bots.inbound.table import INBOUND

TASKS = "bots.tasks."


def _task(name: str) -> Any:
    return current_app.tasks[TASKS + name]


# As long as Celery's own ``argsrepr`` may be: a comment's words among the arguments stay bounded.
ARGSREPR_MAX = 1024


def _send(name: str, args: tuple[Any, ...], **options: Any) -> None:
    """Publish the task. Its arguments (ids, names) are shown as their plain ``repr``, cut at
    ARGSREPR_MAX: Celery's own bounded ``saferepr`` of them cost a sixth of a publish's CPU."""
    shown = repr(args)[:ARGSREPR_MAX]
    _task(name).apply_async(args, argsrepr=shown, kwargsrepr="{}", **options)


def _later(name: str, *args: Any, countdown: float | None = None) -> None:
    if countdown is None:
        transaction.on_commit(lambda: _send(name, args))
    else:
        delay = max(0.0, countdown)
        transaction.on_commit(lambda: _send(name, args, countdown=delay))


def trigger(run_id: int, *, after: float | None = None) -> None:
    """Send the run to its forge (``after`` seconds from now)."""
    _later("trigger_run", run_id, countdown=after)


# Runs per fan-out task: one chunk of bots/engine/fanout.py, so a big fan-out is several tasks
# side by side on the worker's threads, and one chunk's record overlaps another's sends (two
# chunks of 16 one after the other in one task took 2.2 s for 100 targets, one a task 1.65 s).
BATCH = 16


# From this many runs on, a fan-out goes in fan-out tasks; fewer get a task each (they spread
# over the worker's threads as fast, and each run keeps its own task as before).
BATCH_FROM = 50


def trigger_all(run_ids: Iterable[int]) -> None:
    """Send these runs: a task per run, or fan-out tasks of up to ``BATCH`` for ``BATCH_FROM``
    runs or more."""
    ids = list(run_ids)
    if len(ids) < BATCH_FROM:
        trigger_each(ids)
        return
    for start in range(0, len(ids), BATCH):
        _later("trigger_runs", ids[start : start + BATCH])


def trigger_each(run_ids: Iterable[int]) -> None:
    """One task per run (what a fan-out hands back for the one-at-a-time path)."""
    for run_id in list(run_ids):
        trigger(run_id)


def mirror(chain_id: int, *, after: float) -> None:
    """Bring the upstream change up to date (statuses, summary comment)."""
    _later("mirror_chain", chain_id, countdown=after)


def cancel_remote(run_id: int) -> None:
    _later("cancel_remote", run_id)


def retry_remote(run_id: int) -> None:
    _later("retry_remote", run_id)


def check_end(run_id: int, attempt: int, due_at: float, *, after: float) -> None:
    """Poll the run's repository ``after`` seconds from now if the run (this attempt) has not
    ended by then and nothing was heard of it since ``due_at`` (bots/engine/overdue.py)."""
    _later("check_end", run_id, attempt, due_at, countdown=after)


def failed_jobs(run_id: int, remote_id: str, attempt: int) -> None:
    """Ask the forge which jobs of the run's failed pipeline failed, and why."""
    _later("fetch_failed_jobs", run_id, remote_id, attempt)


def release(chain_id: int) -> None:
    _later("release_runs", chain_id)


def expand(run_id: int) -> None:
    """Read what the triggered project's own `.baton.yml` sets off in turn."""
    _later("expand_run", run_id)


def rerun_chain(chain_id: int, actor: str, user_id: int | None) -> None:
    _later("rerun_chain", chain_id, actor, user_id)


def start_for_comment(
    forge_id: int, project: str, number: int, person: str, only: list[str] | None
) -> None:
    _later("start_for_comment", forge_id, project, number, person, only)


def deliver(delivery_id: int, forge_kind: str, event: str) -> None:
    """Hand a stored delivery to a worker now (the caller has committed it): news of pipelines
    to the tracking queue (settings.BATON_TRACKING_QUEUE), every other event to the default one."""
    _send("process_delivery", (delivery_id,), queue=queue_for(forge_kind, event))


def publish_delivery(connection: Any, delivery_id: int, forge_kind: str, event: str) -> None:
    """``deliver`` for the webhook view, on its own broker connection, once (no retry: a
    delivery not enqueued waits for the sweeper). The message is Celery's own, built and sent by
    ``app.amqp`` as ``apply_async`` does, without what ``apply_async`` adds around it for a task
    that has none of it: routing (the queue is known), a parent task, a result to ask for.
    That is a third of the publish's Python calls, an eighth of a delivery's at intake
    (docs/benchmarks.md, "Issue 12, session 8"). The queue is declared on the connection's first
    publish only (kombu's own test, before the copies of the queue it makes to get there)."""
    amqp = current_app.amqp
    name = TASKS + "process_delivery"
    args = (delivery_id,)
    queue = amqp.queues[queue_for(forge_kind, event)]
    message = amqp.create_task_message(uuid(), name, args, {}, argsrepr=repr(args), kwargsrepr="{}")
    amqp.send_task_message(
        amqp.Producer(connection, auto_declare=False),
        name,
        message,
        queue=queue,
        declare=[] if hash(queue) in connection.declared_entities else [queue],
        retry=False,
    )


def queue_for(forge_kind: str, event: str) -> str:
    """The Celery queue a delivery of this forge kind and event goes to."""
    inbound = INBOUND.get(forge_kind)
    if inbound is not None and event in inbound.TRACKING_EVENTS:
        return str(settings.BATON_TRACKING_QUEUE)
    return str(settings.CELERY_TASK_DEFAULT_QUEUE)
