"""Small things a newcomer hit on the existing pages (issue 13, part 8)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from chains.models import RunAttempt
from tests import factories as f

pytestmark = pytest.mark.django_db


def _row(html: str, key: str) -> str:
    return html.split(f'data-key="{key}"')[1].split("</tr>")[0]


def test_a_retried_run_shows_its_current_attempts_duration_and_each_earlier_ones_own(
    viewer_client: Client,
) -> None:
    now = timezone.now()
    first_start = now - timedelta(minutes=4, seconds=5)
    first_end = now - timedelta(seconds=9)
    chain = f.chain(status="success")
    # The forge re-ran the same pipeline: it reports the first attempt's start again.
    run = f.run(
        chain, "api", status="success", attempt=2, started_at=first_start, finished_at=now
    )
    RunAttempt.objects.create(
        run=run, number=1, status="failed", started_at=first_start, finished_at=first_end
    )
    row = _row(viewer_client.get(f"/chains/{chain.pk}/").content.decode(), "api")
    assert '<span class="duration">9 s</span>' in row
    assert '<span class="attempt-duration">3 min 56 s</span>' in row
    assert "4 min 05 s" not in row
