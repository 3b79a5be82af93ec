"""Who a chain runs for. On GitLab the Merge Request Hook's `user` is whoever acted, not the
author: closing and reopening someone's merge request ran their `.baton.yml` with the actor's
grants. And a webhook's word on the author and the project was trusted as it came.

A chain now runs for the change's author as the forge's API has it; someone else acting needs
their own grants as well; the project id must be the one Baton knows for the path."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest
import responses
from django.test import Client

from bots import router
from chains.models import Chain, Repository
from tests.security.change_fakes import (
    API,
    PEOPLE,
    deliver,
    fake_change,
    gitlab_forge,
    mr_hook,
    person,
)

PROD = "downstream:\n  - {key: prod, project: acme/prod}\n"


@pytest.fixture
def forge(db: None) -> Any:
    forge = gitlab_forge()
    person(forge, "rita", "acme/*")  # a release manager: may trigger acme/prod
    person(forge, "mallory", "acme/app")  # may trigger her own project only
    return forge


def _process(client: Client, payload: dict[str, Any], key: str = "k1") -> Chain | None:
    delivery = deliver(client, payload, key, "Merge Request Hook")
    router.process(delivery.pk)
    return Chain.objects.filter(delivery=delivery).first()


@responses.activate
def test_reopening_someone_elses_change_runs_it_for_its_author(forge: Any, client: Client) -> None:
    fake_change("mallory", config=PROD)
    # rita reopens mallory's merge request: the hook's `user` is rita.
    chain = _process(client, mr_hook("reopen", actor="rita", author_id=PEOPLE["mallory"]))
    assert chain is not None
    assert (chain.author, chain.runs_for, chain.actor) == ("mallory", "mallory", "rita")
    run = chain.runs.get()
    assert run.status == "failed"
    assert run.error.startswith("mallory may not trigger acme/prod")
    assert chain.reason == "reopened by rita"


@responses.activate
def test_an_actor_without_the_grant_is_needed_too(forge: Any, client: Client) -> None:
    fake_change("rita", config=PROD)
    chain = _process(client, mr_hook("reopen", actor="mallory", author_id=PEOPLE["rita"]))
    assert chain is not None
    assert (chain.author, chain.actor) == ("rita", "mallory")
    assert chain.runs.get().error.startswith("mallory may not trigger acme/prod")


@responses.activate
def test_the_author_acting_alone_runs_with_their_grants(forge: Any, client: Client) -> None:
    fake_change("rita", config=PROD)
    chain = _process(client, mr_hook("open", actor="rita", author_id=PEOPLE["rita"]))
    assert chain is not None
    assert (chain.author, chain.actor) == ("rita", "rita")
    assert chain.runs.get().status == "queued"


@responses.activate
def test_the_chain_page_says_for_whom_and_started_by_whom(
    forge: Any, client: Client, admin_client: Client
) -> None:
    fake_change("mallory", config=PROD)
    chain = _process(client, mr_hook("reopen", actor="rita", author_id=PEOPLE["mallory"]))
    assert chain is not None
    page = admin_client.get(f"/chains/{chain.pk}/").content.decode()
    assert "for mallory, started by rita" in page


@responses.activate
def test_a_payload_claiming_another_author_is_overruled_by_the_forge(
    forge: Any, client: Client
) -> None:
    # Someone holding only the webhook secret says rita opened (and wrote) mallory's change.
    fake_change("mallory", config=PROD)
    chain = _process(client, mr_hook("open", actor="rita", author_id=PEOPLE["rita"]))
    assert chain is not None
    assert chain.author == "mallory"
    assert chain.runs.get().error.startswith("mallory may not trigger acme/prod")


@responses.activate
def test_a_change_the_forge_does_not_know_starts_nothing(forge: Any, client: Client) -> None:
    responses.get(f"{API}/projects/acme%2Fapp/merge_requests/7", status=404, json={})
    assert _process(client, mr_hook("open", actor="rita", author_id=PEOPLE["rita"])) is None
    assert not Chain.objects.exists()


@responses.activate
def test_a_fork_is_a_fork_when_the_forge_says_so(forge: Any, client: Client) -> None:
    fake_change("rita", config=PROD, fork=True)
    chain = _process(client, mr_hook("open", actor="rita", author_id=PEOPLE["rita"]))
    assert chain is not None and chain.from_fork
    # A fork's change is planned from the target branch's file, not from its own head.
    [read] = [c for c in responses.calls if "/repository/files/" in str(c.request.url)]
    assert "ref=main" in str(read.request.url)


@responses.activate
def test_a_project_id_that_does_not_match_the_record_starts_nothing(
    forge: Any, client: Client
) -> None:
    Repository.objects.create(forge=forge, path="acme/app", remote_id="42")
    responses.get(
        f"{API}/projects/acme%2Fapp",
        json={
            "id": 42,
            "path_with_namespace": "acme/app",
            "default_branch": "main",
            "web_url": "https://gl.example.com/acme/app",
            "visibility": "private",
        },
    )
    fake_change("rita", config=PROD)
    payload = mr_hook("open", actor="rita", author_id=PEOPLE["rita"], project_id=99)
    assert _process(client, payload) is None
    assert Repository.objects.get(path="acme/app").remote_id == "42"
    assert not [c for c in responses.calls if "merge_requests" in str(c.request.url)]


@responses.activate
def test_a_project_made_again_under_the_same_path_is_accepted(forge: Any, client: Client) -> None:
    Repository.objects.create(forge=forge, path="acme/app", remote_id="41")
    responses.get(
        f"{API}/projects/acme%2Fapp",
        json={
            "id": 42,
            "path_with_namespace": "acme/app",
            "default_branch": "main",
            "web_url": "https://gl.example.com/acme/app",
            "visibility": "private",
        },
    )
    fake_change("rita", config=PROD)
    assert _process(client, mr_hook("open", actor="rita", author_id=PEOPLE["rita"])) is not None
    assert Repository.objects.get(path="acme/app").remote_id == "42"


@responses.activate
def test_a_comment_run_on_someone_elses_change_needs_both(forge: Any) -> None:
    from bots import tasks

    fake_change("mallory", config=PROD)
    with mock.patch.object(tasks.start_for_comment, "retry"):
        tasks.start_for_comment(forge.pk, "acme/app", 7, "rita", None)
    chain = Chain.objects.get()
    assert (chain.author, chain.actor, chain.reason) == ("mallory", "rita", "re-run by rita")
    assert chain.runs.get().error.startswith("mallory may not trigger acme/prod")
    # The comment path read the change once; the engine did not read it again.
    assert len([c for c in responses.calls if str(c.request.url).endswith("merge_requests/7")]) == 1


@responses.activate
def test_a_replayed_event_about_an_earlier_commit_starts_nothing(
    forge: Any, client: Client
) -> None:
    # The change has moved on to another commit; an old "open" event is sent again.
    fake_change("rita", config=PROD, sha="d" * 40)
    assert _process(client, mr_hook("open", actor="rita", author_id=PEOPLE["rita"])) is None
    assert not Chain.objects.exists()


@responses.activate
def test_a_replayed_event_of_a_closed_change_starts_nothing(forge: Any, client: Client) -> None:
    fake_change("rita", config=PROD, state="closed")
    assert _process(client, mr_hook("reopen", actor="rita", author_id=PEOPLE["rita"])) is None
    assert not Chain.objects.exists()


@responses.activate
def test_a_rerun_from_the_dashboard_needs_the_baton_users_grants_too(forge: Any) -> None:
    from django.contrib.auth.models import User

    from bots import tasks

    fake_change("rita", config=PROD)
    old = Chain.objects.create(
        forge=forge,
        repository=Repository.objects.create(forge=forge, path="acme/app"),
        change_number=7,
        head_sha="b" * 40,
        upstream_ref="refs/merge-requests/7/head",
        author="rita",
    )
    stan = User.objects.create_user("stan", password="pw")  # a Baton user, no forge account
    tasks.rerun_chain(old.pk, "stan", stan.pk)
    chain = Chain.objects.exclude(pk=old.pk).get()
    assert (chain.author, chain.actor, chain.runs_for_user) == ("rita", "stan", stan)
    assert chain.runs.get().error == (
        "stan may not trigger acme/prod: no grant gives stan trigger on acme/prod"
    )
