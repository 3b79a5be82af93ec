"""Run.has_masked_variables: which runs hold masked variables (their field is encrypted, so the
database cannot tell), for the scrubbing of pipeline webhooks. Existing runs are read once."""

from typing import Any

from django.db import migrations, models


def mark_runs_with_masked_variables(apps: Any, schema_editor: Any) -> None:
    Run = apps.get_model("chains", "Run")
    marked = [
        pk
        for pk, masked in Run.objects.values_list("pk", "masked_variables").iterator(
            chunk_size=2000
        )
        if masked
    ]
    for start in range(0, len(marked), 1000):
        Run.objects.filter(pk__in=marked[start : start + 1000]).update(has_masked_variables=True)


class Migration(migrations.Migration):
    dependencies = [
        ("chains", "0013_delivery_lease"),
    ]

    operations = [
        migrations.AddField(
            model_name="run",
            name="has_masked_variables",
            field=models.BooleanField(default=False, editable=False),
        ),
        migrations.RunPython(mark_runs_with_masked_variables, migrations.RunPython.noop),
    ]
