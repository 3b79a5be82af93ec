"""News from a pipeline webhook is applied to its run read under the run's row lock
(``RunQuerySet.locked``, a written-out ``SELECT … FOR UPDATE OF``): two webhooks of one run
never both save what they read, and the read is the ORM's, field by field."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction
from django.db.transaction import TransactionManagementError

from bots.engine.tracking import LOCKED
from chains.models import Chain, Repository, Run
from chains.status import Status
from tests import factories
from tests.locking import held_elsewhere


def _sent_run() -> Run:
    chain = factories.chain("acme/app", status=Status.RUNNING)
    run = factories.run(chain, "api", status=Status.PENDING, remote_id="4242")
    Run.objects.filter(pk=run.pk).update(dispatch=Run.Dispatch.SENT, hooked=True)
    return Run.objects.select_related("repository").get(pk=run.pk)


@pytest.mark.django_db
def test_the_locked_read_holds_what_the_orm_reads_and_nothing_more() -> None:
    orm = _sent_run()
    with transaction.atomic():
        run = Run.objects.locked(orm.pk, LOCKED)
    assert run is not None and run.pk == orm.pk
    for field in Run._meta.concrete_fields:
        if field.name in LOCKED:
            assert getattr(run, field.attname) == getattr(orm, field.attname), field.name
    assert (run.repository.pk, run.repository.path, run.repository.remote_id) == (
        orm.repository.pk,
        orm.repository.path,
        orm.repository.remote_id,
    )
    assert run.repository.forge_id == orm.repository.forge_id
    assert run.get_deferred_fields() == {  # the secrets among them
        f.attname for f in Run._meta.concrete_fields if f.name not in {"id", *LOCKED}
    }
    with transaction.atomic():
        assert Run.objects.locked(orm.pk + 1000, LOCKED) is None


@pytest.mark.django_db(transaction=True)
def test_a_run_is_locked_inside_a_transaction_only() -> None:
    run = _sent_run()
    with pytest.raises(TransactionManagementError):
        Run.objects.locked(run.pk, LOCKED)


@pytest.mark.django_db(transaction=True)
def test_the_run_stays_locked_until_the_readers_transaction_ends() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row locks: PostgreSQL (SQLite locks the whole database for a writer)")
    run = _sent_run()

    def lock_it() -> None:
        assert Run.objects.locked(run.pk, LOCKED) is not None

    with held_elsewhere(lock_it):
        with pytest.raises(DatabaseError), transaction.atomic():
            Run.objects.select_for_update(nowait=True).filter(pk=run.pk).first()
        # Only the run's row: its chain and repository stay free for others.
        with transaction.atomic():
            chain = Chain.objects.select_for_update(nowait=True).filter(pk=run.chain_id).first()
            repository = (
                Repository.objects.select_for_update(nowait=True)
                .filter(pk=run.repository_id)
                .first()
            )
            assert chain is not None and repository is not None
    with transaction.atomic():
        assert Run.objects.select_for_update(nowait=True).filter(pk=run.pk).first() is not None
