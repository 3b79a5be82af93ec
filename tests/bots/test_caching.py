"""What Baton remembers goes through Django's cache: each answer is reused within its time and
asked again after it (tested with short times on the local-memory cache)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.core.cache import caches
from django.test import override_settings

from bots import caching, forge_records, permissions
from bots.engine import planning
from bots.forges.github import GitHubForge
from chains.models import Forge, Identity, Repository

SHORT = 1  # second an answer is kept in these tests (the shortest a cache keeps one)


def _wait_out() -> None:
    time.sleep(SHORT + 0.05)


class Counter:
    def __init__(self, answer: Any) -> None:
        self.answer, self.calls = answer, 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.answer


def test_remembered_keeps_an_answer_and_none_too_until_it_expires() -> None:
    compute = Counter(None)
    key = caching.key("test", "a")
    for _ in range(3):
        assert caching.remembered(key, SHORT, compute) is None
    assert compute.calls == 1
    _wait_out()
    caching.remembered(key, SHORT, compute)
    assert compute.calls == 2


def test_zero_seconds_remembers_nothing() -> None:
    compute = Counter("x")
    caching.remembered(caching.key("test", "b"), 0, compute)
    caching.remembered(caching.key("test", "b"), 0, compute)
    assert compute.calls == 2


def test_hostile_parts_make_plain_keys() -> None:
    key = caching.key("forge", "a b\n\x00" + "x" * 1000)
    assert len(key) < 60 and key.isprintable() and " " not in key


def _forge(kind: str = "gitlab", slug: str = "gl") -> Forge:
    return Forge.objects.create(
        kind=kind,
        slug=slug,
        name=slug,
        api_url=f"https://{slug}.example.com",
        token="t",
        webhook_secret="s",
    )


@pytest.mark.django_db
def test_an_unlinked_account_is_looked_up_once_per_period(monkeypatch: pytest.MonkeyPatch) -> None:
    forge = _forge()
    client = type("Client", (), {"public_email": Counter(None)})()
    monkeypatch.setattr(permissions, "forge_for", lambda record: client)
    monkeypatch.setattr(permissions, "LOOKUP_AGAIN_AFTER", SHORT)
    for _ in range(3):
        assert permissions.link_by_email(forge, "mallory") is None
    assert client.public_email.calls == 1
    permissions.link_by_email(forge, "trudy")  # another account: its own period
    assert client.public_email.calls == 2
    _wait_out()
    permissions.link_by_email(forge, "mallory")
    assert client.public_email.calls == 3
    assert not Identity.objects.exists()


@pytest.mark.django_db
def test_a_downstream_config_is_read_once_per_ttl() -> None:
    forge = _forge()
    repository = Repository.objects.create(forge=forge, path="acme/api")
    client = type("Client", (), {"read_file": Counter("downstream: []\n")})()
    with override_settings(BATON_DOWNSTREAM_CONFIG_TTL=SHORT):
        for _ in range(3):
            planning._downstream_config(client, repository, "main")
        assert client.read_file.calls == 1
        planning._downstream_config(client, repository, "release/1.2")  # another ref
        assert client.read_file.calls == 2
        _wait_out()
        planning._downstream_config(client, repository, "main")
        assert client.read_file.calls == 3


def test_workflow_inputs_are_read_once_per_period_and_per_forge(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bots.forges import github

    monkeypatch.setattr(github, "INPUTS_CACHE_SECONDS", SHORT)
    one, other = (
        GitHubForge("https://a.test", "t1", timeout=1),
        GitHubForge("https://b.test", "t2", timeout=1),
    )
    reads = {forge: Counter(["UPSTREAM_REF"]) for forge in (one, other)}
    for forge, counter in reads.items():
        monkeypatch.setattr(forge, "_read_workflow_inputs", counter)
    for _ in range(3):
        assert one.workflow_inputs("acme/api", "ci.yml", "main") == ["UPSTREAM_REF"]
    other.workflow_inputs("acme/api", "ci.yml", "main")
    assert reads[one].calls == 1 and reads[other].calls == 1
    _wait_out()
    one.workflow_inputs("acme/api", "ci.yml", "main")
    assert reads[one].calls == 2


@pytest.mark.django_db
def test_the_webhook_forge_is_kept_per_process_and_forgotten_when_saved(
    monkeypatch: pytest.MonkeyPatch, django_assert_num_queries: Any
) -> None:
    monkeypatch.setattr(forge_records, "SECONDS", SHORT)
    forge = _forge()
    assert forge_records.by_slug("gl") == forge
    assert forge_records.by_id(forge.pk) == forge
    with django_assert_num_queries(0):
        assert forge_records.by_slug("gl") == forge
        assert getattr(forge_records.by_slug("gl"), "webhook_secret", None) == "s"
        assert getattr(forge_records.by_id(forge.pk), "webhook_secret", None) == "s"
    # Decrypted secrets stay in the process: never in the shared (possibly Redis) cache.
    assert caches["default"].get(caching.key("forge", "gl")) is None
    assert caches["default"].get(caching.key("forge-id", forge.pk)) is None
    forge.webhook_secret = "new"
    forge.save()
    assert getattr(forge_records.by_slug("gl"), "webhook_secret", None) == "new"
    assert getattr(forge_records.by_id(forge.pk), "webhook_secret", None) == "new"
    Forge.objects.filter(pk=forge.pk).update(slug="renamed")  # no signal: the cache runs out
    assert forge_records.by_slug("gl") is not None
    _wait_out()
    assert forge_records.by_slug("gl") is None


@pytest.mark.django_db
def test_a_shared_redis_cache_works_the_same(services: None) -> None:
    from django.conf import settings

    location = settings.CELERY_BROKER_URL  # the test's own Redis database
    redis_cache = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": location,
        "KEY_PREFIX": f"baton-test-{time.time_ns()}",
    }
    with override_settings(CACHES={**settings.CACHES, "default": redis_cache}):
        compute = Counter(["x"])
        key = caching.key("test", "redis")
        assert caching.remembered(key, SHORT, compute) == ["x"]
        assert caching.remembered(key, SHORT, compute) == ["x"]
        assert compute.calls == 1
        assert caching.first_time(key + "once", SHORT)
        assert not caching.first_time(key + "once", SHORT)
        _wait_out()
        assert caching.first_time(key + "once", SHORT)
        caches["default"].delete_many([key, key + "once"])
