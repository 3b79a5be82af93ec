"""Red-team finding: a comment's author and words were taken from the webhook as they came.

`/baton cancel`, `/baton retry` and the refusals act with the commenter's own grants, so someone
holding only the webhook secret could send a Note Hook "by" a release manager and cancel or retry
runs with that person's grants (or put words into a real comment of theirs). Baton now reads the
comment back from the forge, on the change, and acts on what the forge says was written by
whom."""

from __future__ import annotations

from typing import Any

import pytest
import responses
from django.test import Client

from bots import router
from chains.models import Delivery
from tests.conftest import load_fixture
from tests.security.change_fakes import API, deliver, gitlab_forge, person

NOTES = f"{API}/projects/acme%2Fapp/merge_requests/7/notes"


@pytest.fixture
def forge(db: None) -> Any:
    forge = gitlab_forge()
    person(forge, "rita", "acme/*")
    return forge


def _note_hook(author: str, body: str) -> dict[str, Any]:
    payload = load_fixture("gitlab", "note__merge_request")
    payload["project"]["path_with_namespace"] = "acme/app"
    payload["project"]["id"] = 42
    payload["merge_request"]["iid"] = 7
    payload["object_attributes"].update(id=1244, note=body, noteable_type="MergeRequest")
    payload["user"]["username"] = author
    return payload


@responses.activate
def test_a_comment_the_forge_says_someone_else_wrote_is_not_carried_out(
    forge: Any, client: Client
) -> None:
    responses.get(
        f"{NOTES}/1244", json={"id": 1244, "body": "LGTM", "author": {"username": "mallory"}}
    )
    replies = responses.post(NOTES, json={"id": 9})
    delivery = deliver(client, _note_hook("rita", "/baton cancel"), "n1", "Note Hook")
    router.process(delivery.pk)
    assert replies.call_count == 0
    assert "not carried out" in Delivery.objects.get(pk=delivery.pk).detail


@responses.activate
def test_a_comment_the_forge_does_not_have_is_not_carried_out(forge: Any, client: Client) -> None:
    responses.get(f"{NOTES}/1244", status=404, json={"message": "404 Not found"})
    replies = responses.post(NOTES, json={"id": 9})
    delivery = deliver(client, _note_hook("rita", "/baton cancel"), "n2", "Note Hook")
    router.process(delivery.pk)
    assert replies.call_count == 0


@responses.activate
def test_the_words_carried_out_are_the_forges(forge: Any, client: Client) -> None:
    responses.get(
        f"{NOTES}/1244", json={"id": 1244, "body": "/baton help", "author": {"username": "rita"}}
    )
    replies = responses.post(NOTES, json={"id": 9})
    responses.put(f"{NOTES}/9", json={"id": 9})
    responses.get(
        f"{API}/projects/acme%2Fapp",
        json={
            "id": 42,
            "path_with_namespace": "acme/app",
            "default_branch": "main",
            "web_url": "https://gl.example.com/acme/app",
            "visibility": "public",
        },
    )
    delivery = deliver(client, _note_hook("rita", "/baton cancel"), "n3", "Note Hook")
    router.process(delivery.pk)
    assert replies.call_count == 1
    body = responses.calls[-1].request.body
    reply = body.decode() if isinstance(body, bytes) else str(body)
    assert "**`/baton help`**" in reply
    assert "**`/baton cancel`**" not in reply
