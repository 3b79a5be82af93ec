"""A send whose outcome is unknown stays unknown until a look-up answers: a failing look-up never
lets the run fall back to "not sent" (which created a second pipeline)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import responses
from django.utils import timezone

from bots.engine.triggering import trigger
from chains.models import Chain, Forge, Repository, Run
from chains.status import Status

pytestmark = pytest.mark.django_db

URL = "https://gl.example.com"
PIPELINES = f"{URL}/api/v4/projects/acme%2Fapi/pipelines"


@pytest.fixture
def uncertain_run(services: None) -> Run:
    forge = Forge.objects.create(
        kind="gitlab", slug="gl", name="GitLab", api_url=URL, token="t", webhook_secret="s"
    )
    upstream = Repository.objects.create(forge=forge, path="acme/app", default_branch="main")
    target = Repository.objects.create(forge=forge, path="acme/api", default_branch="main")
    chain = Chain.objects.create(
        forge=forge,
        repository=upstream,
        change_number=1,
        title="x",
        author="alice",
        source_branch="feature/x",
        target_branch="main",
        head_sha="a" * 40,
        upstream_ref="refs/merge-requests/1/head",
    )
    # An earlier create was dropped after the forge may have acted; its lease has run out.
    return Run.objects.create(
        chain=chain,
        key="api",
        repository=target,
        ref="main",
        status=Status.QUEUED,
        dispatch=Run.Dispatch.SENDING,
        lease_until=timezone.now() - timedelta(seconds=1),
        sent_at=timezone.now() - timedelta(seconds=5),
        send_attempts=1,
    )


@responses.activate
def test_a_failing_look_up_keeps_the_send_uncertain_and_creates_nothing(uncertain_run: Run) -> None:
    nonce = uncertain_run.nonce
    responses.get(PIPELINES, status=500, json={"message": "500 Internal Server Error"})
    create = responses.post(f"{URL}/api/v4/projects/acme%2Fapi/pipeline", status=201, json={})
    trigger(uncertain_run.pk)
    uncertain_run.refresh_from_db()
    assert create.call_count == 0
    assert uncertain_run.dispatch == Run.Dispatch.SENDING
    assert uncertain_run.nonce == nonce  # the marker the earlier send carried is kept
    assert uncertain_run.status == Status.QUEUED and "500" in uncertain_run.error


@responses.activate
def test_a_look_up_that_answers_adopts_the_earlier_pipeline(uncertain_run: Run) -> None:
    responses.get(
        PIPELINES,
        json=[{"id": 9, "status": "running", "created_at": timezone.now().isoformat()}],
    )
    responses.get(
        f"{PIPELINES}/9/variables",
        json=[
            {"key": "BATON_RUN_ID", "value": str(uncertain_run.pk)},
            {"key": "BATON_RUN_NONCE", "value": uncertain_run.nonce},
        ],
    )
    create = responses.post(f"{URL}/api/v4/projects/acme%2Fapi/pipeline", status=201, json={})
    trigger(uncertain_run.pk)
    uncertain_run.refresh_from_db()
    assert create.call_count == 0
    assert (uncertain_run.remote_id, uncertain_run.dispatch) == ("9", Run.Dispatch.SENT)
