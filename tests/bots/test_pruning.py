"""Periodic pruning (bots/pruning.py): what is old enough goes, in batches; the rest stays."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client import REGISTRY

from bots import pruning
from chains.models import AuditEvent, Chain, Delivery, Forge, Repository, Run

pytestmark = pytest.mark.django_db

DAY = timedelta(days=1)
SECOND = timedelta(seconds=1)


@pytest.fixture
def forge() -> Forge:
    return Forge.objects.create(
        kind="gitlab", slug="gl", name="GitLab", api_url="http://x:1", token="t", webhook_secret="s"
    )


@pytest.fixture
def repo(forge: Forge) -> Repository:
    return Repository.objects.create(forge=forge, path="acme/app")


def delivery(forge: Forge, key: str, age: timedelta, *, processed: bool = True) -> Delivery:
    delivery_id, _ = Delivery.objects.record(forge, "Push Hook", key, {"k": key}, handled=True)
    assert delivery_id is not None
    at = timezone.now() - age
    Delivery.objects.filter(pk=delivery_id).update(
        received_at=at, processed_at=at if processed else None
    )
    return Delivery.objects.get(pk=delivery_id)


def chain(repo: Repository, age: timedelta | None, status: str = "success") -> Chain:
    made = Chain.objects.create(
        forge=repo.forge,
        repository=repo,
        head_sha="a" * 40,
        upstream_ref="main",
        status=status,
        finished_at=None if age is None else timezone.now() - age,
    )
    Run.objects.create(chain=made, repository=repo, key="api", variables={"TOKEN_LIKE": "x"})
    return made


def audit(age: timedelta, chain: Chain | None = None) -> AuditEvent:
    event = AuditEvent.objects.create(actor="baton", surface="system", action="x", chain=chain)
    AuditEvent.objects.filter(pk=event.pk).update(at=timezone.now() - age)
    return event


def test_each_kind_goes_after_its_own_age_and_not_a_second_before(
    forge: Forge, repo: Repository, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.BATON_KEEP_DELIVERIES_DAYS = 30
    settings.BATON_KEEP_CHAINS_DAYS = 90
    settings.BATON_KEEP_AUDIT_DAYS = 365
    now = timezone.now()
    old_delivery = delivery(forge, "old", 30 * DAY + SECOND)
    young_delivery = delivery(forge, "young", 30 * DAY - timedelta(minutes=1))
    waiting = delivery(forge, "waiting", 400 * DAY, processed=False)  # never handled yet
    old_chain = chain(repo, 90 * DAY + SECOND)
    young_chain = chain(repo, 90 * DAY - timedelta(minutes=1))
    moving = chain(repo, None, status="running")
    Chain.objects.filter(pk=moving.pk).update(created_at=now - 400 * DAY)
    mirroring = chain(repo, 200 * DAY)
    Chain.objects.filter(pk=mirroring.pk).update(mirror_requested_at=now)
    old_audit = audit(365 * DAY + SECOND, chain=young_chain)
    young_audit = audit(365 * DAY - timedelta(minutes=1), chain=old_chain)
    before = REGISTRY.get_sample_value("baton_pruned_total", {"kind": "chains"}) or 0

    removed = pruning.prune(now=now)

    assert removed == {"deliveries": 1, "chains": 1, "audit_events": 1}
    assert set(Delivery.objects.values_list("pk", flat=True)) == {young_delivery.pk, waiting.pk}
    assert not Delivery.objects.filter(pk=old_delivery.pk).exists()
    assert set(Chain.objects.values_list("pk", flat=True)) == {
        young_chain.pk,
        moving.pk,
        mirroring.pk,
    }
    assert not Run.objects.filter(chain_id=old_chain.pk).exists()  # its payloads went with it
    assert set(AuditEvent.objects.values_list("pk", flat=True)) == {young_audit.pk}
    assert AuditEvent.objects.get(pk=young_audit.pk).chain is None  # kept longer than its chain
    assert not AuditEvent.objects.filter(pk=old_audit.pk).exists()
    assert REGISTRY.get_sample_value("baton_pruned_total", {"kind": "chains"}) == before + 1
    assert pruning.prune(now=now) == {"deliveries": 0, "chains": 0, "audit_events": 0}


def test_in_batches_until_done(forge: Forge, settings) -> None:  # type: ignore[no-untyped-def]
    settings.BATON_KEEP_DELIVERIES_DAYS = 1
    for n in range(7):
        delivery(forge, f"d{n}", 2 * DAY)
    keep = delivery(forge, "keep", timedelta(hours=1))
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        removed = pruning.prune(batch=3)
    assert removed["deliveries"] == 7
    deletes = [q for q in queries if q["sql"].startswith('DELETE FROM "chains_delivery"')]
    assert len(deletes) == 3  # 3 + 3 + 1
    assert list(Delivery.objects.values_list("pk", flat=True)) == [keep.pk]


def test_a_run_stops_after_its_time_and_the_next_goes_on(forge: Forge, settings) -> None:  # type: ignore[no-untyped-def]
    settings.BATON_KEEP_DELIVERIES_DAYS = 1
    for n in range(4):
        delivery(forge, f"d{n}", 2 * DAY)
    assert pruning.prune(batch=2, max_seconds=0)["deliveries"] == 0
    assert pruning.prune(batch=2)["deliveries"] == 4


def test_zero_keeps_for_ever(forge: Forge, settings) -> None:  # type: ignore[no-untyped-def]
    settings.BATON_KEEP_DELIVERIES_DAYS = 0
    delivery(forge, "ancient", 5000 * DAY)
    assert pruning.prune()["deliveries"] == 0
    assert Delivery.objects.count() == 1


def test_the_task_is_scheduled_and_registered(settings) -> None:  # type: ignore[no-untyped-def]
    from config.celery import app

    assert settings.CELERY_BEAT_SCHEDULE["prune"]["task"] == "bots.pruning.prune"
    assert "bots.pruning.prune" in app.tasks
    assert pruning.prune_task.delay is not None
