"""Automatic retries of flaky downstreams, once a failed run's reasons are known
(bots/engine/failures.py hands them here with the run still locked): when the target's `retry:`
names one of them and attempts are left (chains/retrying.py), the run starts again as a new
attempt, by the same path as a person's retry, audited as "baton (automatic retry)"."""

from __future__ import annotations

import logging

from bots import services
from chains import retrying
from chains.models import Run

log = logging.getLogger(__name__)


def retry_if_flaky(run: Run, reasons: list[str]) -> None:
    if why := retrying.retry_reason(run, reasons):
        services.retry_run(run, actor=services.AUTOMATIC_RETRY, automatic=why)
        log.info("run %s: retried automatically (%s), attempt %s", run.pk, why, run.attempt + 1)
