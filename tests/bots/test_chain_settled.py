"""A chain's own status and finished_at follow its runs in the same transaction, not only when the
mirroring task gets through to the forge (a forge whose status writes keep failing left the chain
"pending" and the dashboard polling it forever)."""

from __future__ import annotations

from typing import Any

import pytest

from bots.engine import tracking
from bots.events import PipelineEvent
from chains import runstate
from chains.models import Chain
from chains.status import Status
from tests.dashboard import factories


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
