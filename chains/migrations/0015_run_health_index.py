"""The index ``run_health``, on PostgreSQL only: the downstream health (chains/history.py
``finished_runs``, ``visible_daily``) reads a window's finished runs from it alone (an index-only
scan), in the order its aggregate groups them: by target, then by the UTC day the run finished.
It covers exactly ``finished_runs``'s filter (succeeded or failed, not a child pipeline) and
includes every column the aggregate reads. The day is written as the ORM writes
``TruncDate("finished_at", tzinfo=UTC)``, so that the planner matches the two. SQLite (``make
run``'s embedded default) takes neither non-key columns nor this expression: no index there, the
model does not declare it."""

from django.db import migrations

CREATE = """
CREATE INDEX IF NOT EXISTS run_health ON chains_run
    (repository_id, ((finished_at AT TIME ZONE 'UTC')::date))
    INCLUDE (chain_id, status, finished_at, started_at, triggered_at, created_at)
    WHERE NOT is_child AND status IN ('failed', 'success')"""
DROP = "DROP INDEX IF EXISTS run_health"


def create(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def drop(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [
        ("chains", "0014_run_has_masked_variables"),
    ]

    operations = [migrations.RunPython(create, drop)]
