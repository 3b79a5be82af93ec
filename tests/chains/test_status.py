from __future__ import annotations

import pytest

from bots.forges.gitlab import COMMIT_STATE, PIPELINE_STATUS, pipeline_status
from chains.status import Status, fold, upstream_view

S = Status


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([], S.SUCCESS),
        ([S.SUCCESS, S.SUCCESS], S.SUCCESS),
        ([S.SUCCESS, S.RUNNING], S.RUNNING),
        ([S.FAILED, S.RUNNING], S.RUNNING),
        ([S.FAILED, S.SUCCESS], S.FAILED),
        ([S.CANCELED, S.SUCCESS], S.CANCELED),
        ([S.FAILED, S.CANCELED], S.FAILED),
        ([S.QUEUED, S.SUCCESS], S.PENDING),
        ([S.SKIPPED], S.SKIPPED),
        ([S.SKIPPED, S.SUCCESS], S.SUCCESS),
        ([S.MANUAL], S.RUNNING),
    ],
)
def test_fold(statuses: list[Status], expected: Status) -> None:
    assert fold(statuses) == expected


@pytest.mark.parametrize(
    ("status", "strategy", "sent", "expected"),
    [
        (S.RUNNING, "depend", True, S.RUNNING),
        (S.FAILED, "depend", True, S.FAILED),
        (S.QUEUED, "async", False, S.PENDING),
        (S.RUNNING, "async", True, S.SUCCESS),
        (S.FAILED, "async", True, S.SUCCESS),
        (S.FAILED, "async", False, S.FAILED),
    ],
)
def test_upstream_view(status: Status, strategy: str, sent: bool, expected: Status) -> None:
    assert upstream_view(status, strategy=strategy, sent=sent) == expected


def test_every_gitlab_pipeline_status_is_mapped() -> None:
    documented = {
        "created",
        "waiting_for_resource",
        "preparing",
        "pending",
        "running",
        "success",
        "failed",
        "canceled",
        "skipped",
        "manual",
        "scheduled",
    }
    assert documented <= set(PIPELINE_STATUS)
    assert pipeline_status("something-new") == S.PENDING


def test_every_status_has_a_commit_state() -> None:
    assert set(COMMIT_STATE) == set(Status)
    assert set(COMMIT_STATE.values()) <= {
        "pending",
        "running",
        "success",
        "failed",
        "canceled",
        "skipped",
    }
