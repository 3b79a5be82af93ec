"""The permission matrix: every endpoint and action for every persona, through chains.policy."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from chains.models import AuditEvent, Run
from chains.status import Status
from tests.api.conftest import PERSONAS, People, World

API = "/api/v1"


def ids(response_data: dict[str, object]) -> set[int]:
    results = response_data["results"]
    assert isinstance(results, list)
    return {item["id"] for item in results}


# --- reading ------------------------------------------------------------------------------------


READ_STATUS = {
    # what:           anonymous, viewer, operator, admin, outsider
    "app chain": (401, 200, 200, 200, 404),
    "secret chain": (401, 404, 404, 200, 404),
    "app run": (401, 200, 200, 200, 404),
    "vault run in app chain": (401, 200, 200, 200, 404),
    "secret run": (401, 404, 404, 200, 404),
    "acme repository": (401, 200, 200, 200, 404),
    "secret repository": (401, 404, 404, 200, 404),
}

READ_URL: dict[str, Callable[[World], str]] = {
    "app chain": lambda w: f"{API}/chains/{w.app.pk}/",
    "secret chain": lambda w: f"{API}/chains/{w.secret.pk}/",
    "app run": lambda w: f"{API}/runs/{w.lib.pk}/",
    "vault run in app chain": lambda w: f"{API}/runs/{w.vault.pk}/",
    "secret run": lambda w: f"{API}/runs/{w.secret_run.pk}/",
    "acme repository": lambda w: f"{API}/repositories/{w.app.repository_id}/",
    "secret repository": lambda w: f"{API}/repositories/{w.secret.repository_id}/",
}


@pytest.mark.parametrize("what", sorted(READ_STATUS))
@pytest.mark.parametrize("persona", PERSONAS)
def test_read_one(world: World, people: People, persona: str, what: str) -> None:
    expected = READ_STATUS[what][PERSONAS.index(persona)]
    response = people[persona].get(READ_URL[what](world))
    assert response.status_code == expected, response.content
    if expected == 401:
        assert response["WWW-Authenticate"] == "Token"
        assert response.json() == {"detail": "Authentication credentials were not provided."}


@pytest.mark.parametrize("persona", PERSONAS)
def test_lists_show_only_what_the_policy_lets_one_view(
    world: World, people: People, persona: str
) -> None:
    client = people[persona]
    chains = client.get(f"{API}/chains/")
    runs = client.get(f"{API}/runs/")
    repositories = client.get(f"{API}/repositories/")
    if persona == "anonymous":
        assert {chains.status_code, runs.status_code, repositories.status_code} == {401}
        return
    acme_chains = {world.app.pk, world.mixed.pk}
    acme_runs = {r.pk for r in Run.objects.filter(chain__in=acme_chains)}
    expected = {
        "viewer": (acme_chains, acme_runs),
        "operator": (acme_chains, acme_runs),
        "admin": (acme_chains | {world.secret.pk}, acme_runs | {world.secret_run.pk}),
        "outsider": (set(), set()),
    }[persona]
    assert ids(chains.json()) == expected[0]
    assert ids(runs.json()) == expected[1]
    paths = {item["path"] for item in repositories.json()["results"]}
    if persona == "admin":
        assert "secret/vault" in paths and "acme/app" in paths
    elif persona == "outsider":
        assert paths == set()
    else:
        assert paths == {
            "acme/app",
            "acme/build",
            "acme/deploy",
            "acme/lib",
            "acme/docs",
            "acme/web",
        }


def test_the_api_root_needs_a_sign_in_too(world: World, people: People) -> None:
    assert people["anonymous"].get(f"{API}/").status_code == 401
    root = people["viewer"].get(f"{API}/").json()
    assert set(root) == {"chains", "runs", "repositories"}


# --- acting -------------------------------------------------------------------------------------

# action: (url, anonymous, viewer, operator, admin, outsider, audit action)
ACTIONS: dict[str, tuple[Callable[[World], str], tuple[int, ...], str]] = {
    "retry run": (
        lambda w: f"{API}/runs/{w.lib.pk}/retry/",
        (401, 403, 202, 202, 404),
        "run.retry",
    ),
    "retry subtree": (
        lambda w: f"{API}/runs/{w.build.pk}/retry-subtree/",
        (401, 403, 202, 202, 404),
        "run.retry_subtree",
    ),
    "cancel run": (
        lambda w: f"{API}/runs/{w.docs.pk}/cancel/",
        (401, 403, 202, 202, 404),
        "run.cancel",
    ),
    "cancel chain": (
        lambda w: f"{API}/chains/{w.app.pk}/cancel/",
        (401, 403, 202, 202, 404),
        "run.cancel",
    ),
    "retry failed": (
        lambda w: f"{API}/chains/{w.app.pk}/retry-failed/",
        (401, 403, 202, 202, 404),
        "run.retry",
    ),
    "rerun chain": (
        lambda w: f"{API}/chains/{w.app.pk}/rerun/",
        (401, 403, 202, 202, 404),
        "chain.rerun",
    ),
    "retry a run of a secret chain": (
        lambda w: f"{API}/runs/{w.secret_run.pk}/retry/",
        (401, 404, 404, 202, 404),
        "run.retry",
    ),
    "rerun a secret chain": (
        lambda w: f"{API}/chains/{w.secret.pk}/rerun/",
        (401, 404, 404, 202, 404),
        "chain.rerun",
    ),
}

REASONS = {
    # The policy's words (chains.policy.decide), the same on every surface: the first project
    # the verb touches that the person may not act on.
    "retry run": "vic may not retry acme/lib: no grant gives vic retry on acme/lib",
    "retry subtree": "vic may not retry acme/build: no grant gives vic retry on acme/build",
    "cancel run": "vic may not cancel acme/docs: no grant gives vic cancel on acme/docs",
    "cancel chain": "vic may not cancel acme/docs: no grant gives vic cancel on acme/docs",
    "retry failed": "vic may not retry acme/lib: no grant gives vic retry on acme/lib",
    "rerun chain": "vic may not trigger acme/app: no grant gives vic trigger on acme/app",
}


@pytest.mark.parametrize("what", sorted(ACTIONS))
@pytest.mark.parametrize("persona", PERSONAS)
def test_act(
    world: World,
    people: People,
    persona: str,
    what: str,
    django_capture_on_commit_callbacks: Callable[..., object],
) -> None:
    url, statuses, audited = ACTIONS[what]
    expected = statuses[PERSONAS.index(persona)]
    with django_capture_on_commit_callbacks(execute=False) as callbacks:  # type: ignore[attr-defined]
        response = people[persona].post(url(world))
    assert response.status_code == expected, response.content
    events = AuditEvent.objects.filter(surface="api")
    if expected != 202:
        assert not events.exists()
        assert not callbacks  # nothing would be sent to a forge
        if expected == 403:
            assert response.json() == {"detail": REASONS[what]}
        return
    # Accepted: the answer is the object as it is now, the deed is in the audit log, and the
    # work goes to Celery after commit (captured here, so nothing is sent).
    body = response.json()
    assert body["id"] == int(url(world).split("/")[-3])
    assert callbacks
    event = events.first()
    assert event is not None
    assert event.action == audited
    assert event.user == people.users[persona]
    assert event.actor == people.users[persona].get_username()  # type: ignore[union-attr]
    assert event.remote_addr == "127.0.0.1"


def test_retry_answers_the_new_attempt(
    world: World, people: People, django_capture_on_commit_callbacks: Callable[..., object]
) -> None:
    with django_capture_on_commit_callbacks(execute=False):  # type: ignore[attr-defined]
        body = people["operator"].post(f"{API}/runs/{world.lib.pk}/retry/").json()
    assert body["attempt"] == 3
    assert body["status"] == Status.PENDING
    assert [a["number"] for a in body["attempts"]] == [1, 2]


def test_cancel_chain_answers_the_chain_with_its_runs(
    world: World, people: People, django_capture_on_commit_callbacks: Callable[..., object]
) -> None:
    with django_capture_on_commit_callbacks(execute=False):  # type: ignore[attr-defined]
        body = people["operator"].post(f"{API}/chains/{world.app.pk}/cancel/").json()
    docs = next(r for r in body["runs"] if r["key"] == "docs")
    assert docs["cancel_requested"] is True
    assert AuditEvent.objects.get(surface="api").run_id == world.docs.pk


def test_a_chain_action_needs_the_right_on_every_run_it_touches(
    world: World, people: People, django_capture_on_commit_callbacks: Callable[..., object]
) -> None:
    """retry-failed on the mixed chain would retry the run in secret/vault: the operator may
    retry acme/* only, and the refusal does not name the private project."""
    with django_capture_on_commit_callbacks(execute=False):  # type: ignore[attr-defined]
        response = people["operator"].post(f"{API}/chains/{world.mixed.pk}/retry-failed/")
    assert response.status_code == 403
    assert response.json() == {"detail": "opal may not retry a private project this touches"}
    assert not AuditEvent.objects.exists()


# --- refusals -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "detail"),
    [
        (
            lambda w: f"{API}/runs/{w.docs.pk}/retry/",
            "docs is running; only failed or canceled runs can be retried",
        ),
        (
            lambda w: f"{API}/runs/{w.lib.pk}/cancel/",
            "lib was not canceled: it has already finished or a cancel is under way.",
        ),
        (
            lambda w: f"{API}/chains/{w.mixed.pk}/cancel/",
            "Nothing to cancel: no run of this chain is still active.",
        ),
    ],
    ids=["retry running", "cancel finished", "cancel idle chain"],
)
def test_refused_actions_answer_409_with_the_reason(
    world: World,
    people: People,
    url: Callable[[World], str],
    detail: str,
    django_capture_on_commit_callbacks: Callable[..., object],
) -> None:
    with django_capture_on_commit_callbacks(execute=False):  # type: ignore[attr-defined]
        response = people["admin"].post(url(world))
    assert response.status_code == 409, response.content
    assert response.json() == {"detail": detail}
    assert not AuditEvent.objects.exists()


def test_retry_subtree_refused_while_a_run_below_is_active(
    world: World, people: People, django_capture_on_commit_callbacks: Callable[..., object]
) -> None:
    Run.objects.filter(pk=world.deploy.pk).update(status=Status.RUNNING)
    with django_capture_on_commit_callbacks(execute=False):  # type: ignore[attr-defined]
        response = people["operator"].post(f"{API}/runs/{world.build.pk}/retry-subtree/")
    assert response.status_code == 409
    assert response.json() == {"detail": "deploy is still running; cancel it first"}


def test_retry_failed_with_nothing_failed_is_409(world: World, people: People) -> None:
    Run.objects.filter(pk=world.lib.pk).update(status=Status.SUCCESS)
    response = people["operator"].post(f"{API}/chains/{world.app.pk}/retry-failed/")
    assert response.status_code == 409
    assert response.json() == {"detail": "no run of this chain has failed"}


def test_rerun_of_a_chain_no_change_started_is_409(world: World, people: People) -> None:
    from tests import factories as f

    push = f.chain("acme/app", number=None)
    response = people["operator"].post(f"{API}/chains/{push.pk}/rerun/")
    assert response.status_code == 409
    assert response.json() == {"detail": "only chains started by a change can be re-run"}


def test_reads_are_not_actions(world: World, people: People) -> None:
    client = people["admin"]
    assert client.get(f"{API}/runs/{world.lib.pk}/retry/").status_code == 405
    assert client.delete(f"{API}/chains/{world.app.pk}/").status_code == 405
    assert client.post(f"{API}/chains/", {}).status_code == 405
    assert client.patch(f"{API}/runs/{world.lib.pk}/", {"status": "success"}).status_code == 405
