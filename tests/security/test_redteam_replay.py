"""Red-team finding: a "closed" change event was believed as it came. Closing cancels the change's
interruptible runs; the event was not checked with the forge, so someone holding only the webhook
secret (or a late or replayed close from before a reopen) canceled the runs of an open change."""

from __future__ import annotations

from typing import Any

import pytest
import responses
from django.test import Client

from bots import router
from chains.models import Chain
from tests.security.change_fakes import PEOPLE, deliver, fake_change, gitlab_forge, mr_hook, person

PROD = "downstream:\n  - {key: prod, project: acme/prod, interruptible: true}\n"


@pytest.fixture
def forge(db: None) -> Any:
    forge = gitlab_forge()
    person(forge, "rita", "acme/*")
    return forge


@responses.activate
def test_a_close_the_forge_does_not_confirm_cancels_nothing(forge: Any, client: Client) -> None:
    fake_change("rita", config=PROD)  # the forge says: open
    opened = deliver(
        client, mr_hook("open", actor="rita", author_id=PEOPLE["rita"]), "o", "Merge Request Hook"
    )
    router.process(opened.pk)
    chain = Chain.objects.get(delivery=opened)
    assert chain.runs.get().status == "queued"
    closed = deliver(
        client, mr_hook("close", actor="rita", author_id=PEOPLE["rita"]), "c", "Merge Request Hook"
    )
    router.process(closed.pk)
    run = chain.runs.get()
    assert run.status == "queued" and not run.cancel_requested, run.error


@responses.activate
def test_an_opened_event_replayed_after_the_window_starts_nothing(
    forge: Any, client: Client
) -> None:
    """A change is opened once. An "opened" event replayed under a new key after
    BATON_REPEAT_WINDOW (600 s) started the whole chain again, deploys included."""
    from datetime import timedelta

    from django.utils import timezone

    fake_change("rita", config=PROD)
    hook = mr_hook("open", actor="rita", author_id=PEOPLE["rita"])
    first = deliver(client, hook, "first", "Merge Request Hook")
    router.process(first.pk)
    assert Chain.objects.count() == 1
    Chain.objects.update(created_at=timezone.now() - timedelta(hours=2))
    replay = deliver(client, hook, "replayed-later", "Merge Request Hook")
    router.process(replay.pk)
    assert Chain.objects.count() == 1
