"""A chain's own status and finished_at follow its runs in the same transaction, not only when the
mirroring task gets through to the forge (a forge whose status writes keep failing left the chain
"pending" and the dashboard polling it forever)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from django.db import connection, transaction

from bots.engine import tracking
from bots.events import PipelineEvent
from chains import runstate
from chains.models import Chain, Run
from chains.status import Status
from tests import factories
from tests.locking import held_elsewhere


def _finish(run: Any, status: Status) -> None:
    tracking.handle_pipeline(
        run.repository.forge,
        PipelineEvent(
            project=run.repository.path,
            project_id=run.repository.remote_id,
            pipeline_id=run.remote_id,
            status=status,
            web_url="",
        ),
        None,
    )


@pytest.mark.django_db
def test_the_last_run_to_finish_settles_the_chain_without_the_mirror(
    django_capture_on_commit_callbacks: Any,
) -> None:
    chain = factories.chain("acme/app", status=Status.PENDING)
    api = factories.run(chain, "api", status=Status.RUNNING)
    web = factories.run(chain, "web", status=Status.RUNNING)
    with django_capture_on_commit_callbacks(execute=False):  # no mirror task ever runs
        _finish(api, Status.SUCCESS)
        chain.refresh_from_db()
        assert (chain.status, chain.finished_at) == (Status.RUNNING, None)
        _finish(web, Status.FAILED)
    chain.refresh_from_db()
    assert chain.status == Status.FAILED
    assert chain.finished_at is not None
    first = chain.finished_at
    with django_capture_on_commit_callbacks(execute=False):
        _finish(web, Status.FAILED)  # a repeat keeps the time it first finished
    assert Chain.objects.get(pk=chain.pk).finished_at == first


@pytest.mark.django_db
def test_a_chain_that_could_not_be_planned_stays_failed() -> None:
    chain = factories.chain("acme/app", status=Status.FAILED, error="bad .baton.yml")
    runstate.settle_chain(chain.pk)
    chain.refresh_from_db()
    assert chain.status == Status.FAILED and chain.finished_at is not None


@pytest.mark.django_db(transaction=True)
def test_two_runs_finishing_at_once_leave_the_chain_finished() -> None:
    """Write skew: each transaction folds the runs it can see. The chain's row lock makes the
    second one wait for the first, then see its run's end."""
    chain = factories.chain("acme/app", status=Status.PENDING)
    api = factories.run(chain, "api", status=Status.RUNNING)
    web = factories.run(chain, "web", status=Status.RUNNING)
    a_settled, b_writing = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def finish(run_id: int, status: Status, first: bool) -> None:
        try:
            if not first:
                assert a_settled.wait(10)
            with transaction.atomic():
                run = Run.objects.select_for_update().get(pk=run_id)
                runstate.apply_report(run, status)
                run.save()
                if first:
                    runstate.settle_chain(chain.pk)
                    a_settled.set()
                    assert b_writing.wait(10)
                    time.sleep(0.3)  # the other settles now, while this one is not committed
                else:
                    b_writing.set()
                    runstate.settle_chain(chain.pk)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=finish, args=(api.pk, Status.SUCCESS, True)),
        threading.Thread(target=finish, args=(web.pk, Status.FAILED, False)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    chain.refresh_from_db()
    assert chain.status == Status.FAILED and chain.finished_at is not None


@pytest.mark.django_db(transaction=True)
def test_a_run_moving_on_while_it_keeps_its_chain_running_does_not_wait_for_the_chains_row() -> (
    None
):
    """Issue 12, F1: pending → running cannot change a running chain's status, whatever its
    other runs do, so the hook does not queue on the chain's row lock (every other hook of a
    fan-out holds it in turn) when a mirror is asked for already, as in a burst of hooks; a run
    that finishes still settles the chain under it."""
    from django.utils import timezone

    chain = factories.chain("acme/app", status=Status.RUNNING)
    Chain.objects.filter(pk=chain.pk).update(mirror_requested_at=timezone.now())
    api = factories.run(chain, "api", status=Status.PENDING)
    factories.run(chain, "web", status=Status.RUNNING)
    Run.objects.filter(pk=api.pk).update(dispatch=Run.Dispatch.SENT)
    api.refresh_from_db()
    with held_elsewhere(lambda: list(Chain.objects.select_for_update().filter(pk=chain.pk))):
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '2s'")  # waiting for the row fails the test
        try:
            _finish(api, Status.RUNNING)
            assert Run.objects.get(pk=api.pk).status == Status.RUNNING
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SET lock_timeout = 0")
    _finish(api, Status.SUCCESS)
    chain.refresh_from_db()
    assert chain.status == Status.RUNNING  # web still runs
