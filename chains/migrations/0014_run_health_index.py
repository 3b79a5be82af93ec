# Written by hand: the migration writer cannot serialize datetime.UTC (the index's day is UTC's).

from datetime import UTC

import django.db.models.functions.datetime
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("chains", "0013_delivery_lease"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="run",
            index=models.Index(
                models.F("repository"),
                django.db.models.functions.datetime.TruncDate("finished_at", tzinfo=UTC),
                condition=models.Q(("is_child", False), ("status__in", ["failed", "success"])),
                include=(
                    "chain",
                    "status",
                    "finished_at",
                    "started_at",
                    "triggered_at",
                    "created_at",
                ),
                name="run_health",
            ),
        ),
    ]
