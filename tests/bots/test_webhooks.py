"""`POST /hooks/<slug>/`: verify, record once, enqueue after commit, answer 202 — for GitLab
(`X-Gitlab-Token`) and GitHub (`X-Hub-Signature-256`) alike, posted with `post_webhook`."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from django.test import Client

from chains.models import Delivery, Forge
from tests.conftest import load_fixture, post_webhook

pytestmark = pytest.mark.django_db

# forge kind -> (a change-opened fixture, an authentic event Baton does not handle)
EVENTS = {
    "gitlab": ("merge_request__open", "job__build"),
    "github": ("pull_request__opened", "check_suite__completed"),
}
SIGNATURE = {"gitlab": "X-Gitlab-Token", "github": "X-Hub-Signature-256"}


@pytest.fixture(autouse=True)
def forget_forges() -> None:
    from django.core.cache import caches

    caches["local"].clear()  # each test has its own database rows


@pytest.fixture(params=["gitlab", "github"])
def hooked(request: pytest.FixtureRequest) -> Forge:
    """A forge of each kind with its webhook secret."""
    kind = request.param
    return Forge.objects.create(
        kind=kind,
        slug="gh" if kind == "github" else "gl",
        name=kind,
        api_url="http://127.0.0.1:1",
        token=f"{kind}-secret-token",
        webhook_secret="hook-secret",
    )


def test_accepts_and_enqueues_after_commit(
    client: Client, hooked: Forge, django_capture_on_commit_callbacks: Any
) -> None:
    opened, _ = EVENTS[hooked.kind]
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = post_webhook(client, hooked, opened, key="k-1")
    assert response.status_code == 202, response.content
    assert response.json()["status"] == "accepted"
    delivery = Delivery.objects.get()
    assert (delivery.dedupe_key, delivery.outcome) == ("k-1", "queued")
    assert delivery.event in ("Merge Request Hook", "pull_request")
    assert len(callbacks) == 1


# forge kind -> a pipeline's news (the tracking queue's)
PIPELINE_NEWS = {"gitlab": "pipeline__success", "github": "workflow_run__completed"}


def test_pipeline_news_goes_to_its_own_queue_and_everything_else_to_the_default_one(
    client: Client, hooked: Forge, django_capture_on_commit_callbacks: Any, services: None
) -> None:
    """A fan-out's pipelines report three or four times each: a new change must not wait in the
    same queue behind them (config/settings.py BATON_TRACKING_QUEUE). Read from the broker
    itself: each delivery's message, in the queue it was published to."""
    from django.conf import settings

    from config.celery import app

    opened, _ = EVENTS[hooked.kind]
    names = (settings.CELERY_TASK_DEFAULT_QUEUE, settings.BATON_TRACKING_QUEUE)
    with app.connection_for_write() as connection:
        channel: Any = connection.default_channel  # kombu's Redis channel
        redis = channel.client
        redis.delete(*names)
        try:
            with django_capture_on_commit_callbacks(execute=True):  # the enqueue, after commit
                post_webhook(client, hooked, opened, key="change")
                post_webhook(client, hooked, PIPELINE_NEWS[hooked.kind], key="pipeline")
            queued = {name: [_task_of(m) for m in redis.lrange(name, 0, -1)] for name in names}
        finally:
            redis.delete(*names)
    where = {
        Delivery.objects.get(pk=args[0]).dedupe_key: (name, task)
        for name, messages in queued.items()
        for task, args in messages
    }
    process = "bots.tasks.process_delivery"
    assert where == {
        "change": (settings.CELERY_TASK_DEFAULT_QUEUE, process),
        "pipeline": (settings.BATON_TRACKING_QUEUE, process),
    }
    assert settings.BATON_TRACKING_QUEUE != settings.CELERY_TASK_DEFAULT_QUEUE
    declared = {queue.name for queue in settings.CELERY_TASK_QUEUES}
    assert declared == {settings.CELERY_TASK_DEFAULT_QUEUE, settings.BATON_TRACKING_QUEUE}


def _task_of(message: bytes) -> tuple[str, list[Any]]:
    """A Celery message in kombu's Redis envelope: its task's name and positional arguments."""
    envelope = json.loads(message)
    args, _kwargs, _embed = json.loads(base64.b64decode(envelope["body"]))
    return envelope["headers"]["task"], args


def test_a_repeat_is_a_no_op(
    client: Client, hooked: Forge, django_capture_on_commit_callbacks: Any
) -> None:
    opened, _ = EVENTS[hooked.kind]
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        statuses = [post_webhook(client, hooked, opened, key="k-2").status_code for _ in range(3)]
    assert statuses == [202, 202, 202]
    assert Delivery.objects.count() == 1
    assert len(callbacks) == 1


def test_overrides_reach_the_stored_payload(client: Client, hooked: Forge) -> None:
    opened, _ = EVENTS[hooked.kind]
    field = "object_attributes__title" if hooked.kind == "gitlab" else "pull_request__title"
    overrides: dict[str, Any] = {field: "Overridden"}
    assert post_webhook(client, hooked, opened, **overrides).status_code == 202
    outer, inner = field.split("__")
    assert Delivery.objects.get().payload[outer][inner] == "Overridden"


@pytest.mark.parametrize("secret", ["", "wrong", "hook-secret2"])
def test_a_bad_signature_or_token_is_401_and_stores_nothing(
    client: Client, hooked: Forge, secret: str
) -> None:
    opened, _ = EVENTS[hooked.kind]
    response = post_webhook(client, hooked, opened, secret=secret)
    assert response.status_code == 401
    assert "hook-secret" not in response.content.decode()
    assert Delivery.objects.count() == 0


def test_a_missing_signature_or_token_is_401(client: Client, hooked: Forge) -> None:
    opened, _ = EVENTS[hooked.kind]
    response = post_webhook(client, hooked, opened, headers={SIGNATURE[hooked.kind]: None})
    assert response.status_code == 401
    assert Delivery.objects.count() == 0


@pytest.mark.parametrize("hooked", ["github"], indirect=True)  # GitLab's token signs nothing
def test_a_signature_of_another_body_is_401(client: Client, hooked: Forge) -> None:
    """The signature covers the exact bytes: a payload changed on the way is refused."""
    opened, _ = EVENTS[hooked.kind]
    good = post_webhook(client, hooked, opened, key="k-sig")
    assert good.status_code == 202
    signature = good.wsgi_request.headers["X-Hub-Signature-256"]
    tampered = json.dumps({**load_fixture("github", opened), "action": "closed"}).encode()
    response = post_webhook(
        client, hooked, opened, body=tampered, headers={"X-Hub-Signature-256": signature}
    )
    assert response.status_code == 401
    assert Delivery.objects.count() == 1


def test_not_json_is_400(client: Client, hooked: Forge) -> None:
    opened, _ = EVENTS[hooked.kind]
    response = post_webhook(client, hooked, opened, body=b"{not json")
    assert response.status_code == 400
    assert Delivery.objects.count() == 0


def test_an_unhandled_authentic_event_gets_2xx(
    client: Client, hooked: Forge, django_capture_on_commit_callbacks: Any
) -> None:
    _, unhandled = EVENTS[hooked.kind]
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = post_webhook(client, hooked, unhandled)
    assert response.status_code == 202
    assert response.json()["status"] == "ignored"
    assert Delivery.objects.get().outcome == "ignored"
    assert callbacks == []


def test_unknown_forge_is_404(client: Client) -> None:
    unsaved = Forge(kind="gitlab", slug="nope", webhook_secret="x")
    assert post_webhook(client, unsaved, "merge_request__open").status_code == 404


def test_get_is_refused(client: Client, hooked: Forge) -> None:
    assert client.get(f"/hooks/{hooked.slug}/").status_code == 405


@pytest.fixture
def forge() -> Forge:
    return Forge.objects.create(
        kind="gitlab",
        slug="gl",
        name="GitLab",
        api_url="http://127.0.0.1:1",
        token="glpat-secret-token",
        webhook_secret="hook-secret",
    )


def test_falls_back_to_the_event_uuid(client: Client, forge: Forge) -> None:
    no_key: dict[str, str | None] = {"Idempotency-Key": None, "X-Gitlab-Event-UUID": "uuid-9"}
    post_webhook(client, forge, "merge_request__open", headers=no_key)
    post_webhook(client, forge, "merge_request__open", headers=no_key)
    assert list(Delivery.objects.values_list("dedupe_key", flat=True)) == ["uuid-9"]


def test_secrets_are_encrypted_at_rest(forge: Forge) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT token, webhook_secret FROM chains_forge")
        token, secret = cursor.fetchone()
    assert "glpat-secret-token" not in token
    assert "hook-secret" not in secret
    assert Forge.objects.get().token == "glpat-secret-token"
