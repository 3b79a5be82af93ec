"""``save_each``: the fields of many rows saved as a save per row with ``update_fields`` would
save them, in one statement run for every row (a fan-out's claim and record, the rate
budgets' slots)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import DatabaseError, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bots.engine.tracking import RECORDED
from chains.models import RateBudget, Run, save_each
from chains.status import Status
from tests import factories

pytestmark = pytest.mark.django_db


def _two_runs() -> list[Run]:
    chain = factories.chain("acme/app", status=Status.RUNNING)
    return [factories.run(chain, key, status=Status.QUEUED) for key in ("api", "docs")]


def test_each_row_gets_its_own_values_of_the_fields_named_and_nothing_else() -> None:
    runs = _two_runs()
    when = timezone.now() - timedelta(minutes=3)
    for i, run in enumerate(runs):
        run.remote_id = f"77{i}"
        run.web_url = f"https://forge.test/p/{i}"
        run.undelivered = [f"VAR_{i}"]
        run.dispatch = Run.Dispatch.SENT
        run.status = Status.PENDING
        run.triggered_at = when + timedelta(seconds=i)
        run.lease_until = None
        run.label = "not saved"  # not among the fields
    before = {run.pk: run.updated_at for run in Run.objects.all()}
    Run.objects.save_each(runs, RECORDED)
    for i, stored in enumerate(Run.objects.order_by("pk")):
        assert (stored.remote_id, stored.web_url, stored.undelivered) == (
            f"77{i}",
            f"https://forge.test/p/{i}",
            [f"VAR_{i}"],
        )
        assert (stored.dispatch, stored.status) == (Run.Dispatch.SENT, Status.PENDING)
        assert stored.triggered_at == when + timedelta(seconds=i)
        assert stored.label != "not saved"
        assert stored.updated_at > before[stored.pk]  # the dashboard's cursor moves, as on save


def test_the_rows_are_written_by_one_statement() -> None:
    runs = _two_runs()
    for run in runs:
        run.error = "x"
    with CaptureQueriesContext(connection) as queries:
        Run.objects.save_each(runs, ["error"])
    assert len(queries.captured_queries) == 1
    assert queries.captured_queries[0]["sql"].startswith("2 times: UPDATE")


def test_a_row_gone_meanwhile_is_an_error_as_on_save() -> None:
    runs = _two_runs()
    Run.objects.filter(pk=runs[1].pk).delete()
    with pytest.raises(DatabaseError, match="1 of 2 rows"):
        Run.objects.save_each(runs, ["error"])


def test_masked_variables_are_saved_by_the_run_itself() -> None:
    with pytest.raises(ValueError, match="masked_variables"):
        Run.objects.save_each(_two_runs(), ["masked_variables"])


def test_json_of_other_models_round_trips() -> None:
    rows = [RateBudget.objects.create(key=f"k{i}") for i in range(3)]
    for i, row in enumerate(rows):
        row.slots = [1.5 * i, 2.25]
        row.blocked_until = 9.0  # not among the fields
    save_each(rows, ["slots"])
    assert [(r.slots, r.blocked_until) for r in RateBudget.objects.order_by("key")] == [
        ([0.0, 2.25], 0.0),
        ([1.5, 2.25], 0.0),
        ([3.0, 2.25], 0.0),
    ]
