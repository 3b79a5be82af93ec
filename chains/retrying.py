"""Automatic retries of flaky downstreams: a target's ``retry: {max, when}`` (GitLab's job
``retry:``, Buildkite's ``retry: automatic:``), decided once the failed jobs are known.

``when`` names the forge's own failure reasons (what ``Run.failed_jobs`` keeps: GitLab's job
``failure_reason``, GitHub's job ``conclusion``). A few reasons mean the same on both forges and
match each other (``EQUIVALENT``), so one `.baton.yml` works for targets on either forge.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from chains.status import Status

MAX_RETRIES = 3
ALWAYS = "always"

# GitLab's job failure_reason values (doc/ci/yaml/index.md#retrywhen,
# lib/gitlab/ci/status/build/failed.rb) and GitHub's job conclusions that fail a run
# (docs.github.com/en/rest/actions/workflow-jobs).
GITLAB_REASONS = (
    "unknown_failure",
    "script_failure",
    "api_failure",
    "stuck_or_timeout_failure",
    "runner_system_failure",
    "runner_unsupported",
    "stale_schedule",
    "job_execution_timeout",
    "archived_failure",
    "unmet_prerequisites",
    "scheduler_failure",
    "data_integrity_failure",
)
GITHUB_REASONS = ("failure", "timed_out", "startup_failure", "action_required")
REASONS = (ALWAYS, *GITLAB_REASONS, *GITHUB_REASONS)

# Same meaning on both forges: a `when` word matches the other forge's word too.
EQUIVALENT: dict[str, frozenset[str]] = {
    "stuck_or_timeout_failure": frozenset({"timed_out", "job_execution_timeout"}),
    "job_execution_timeout": frozenset({"timed_out", "stuck_or_timeout_failure"}),
    "timed_out": frozenset({"stuck_or_timeout_failure", "job_execution_timeout"}),
    "script_failure": frozenset({"failure"}),
    "failure": frozenset({"script_failure"}),
}


@dataclass(frozen=True)
class RetryPolicy:
    max: int = 0
    when: tuple[str, ...] = (ALWAYS,)


NO_RETRY = RetryPolicy()


def matching(when: Iterable[str], reasons: Iterable[str]) -> str:
    """The first failure reason ``when`` covers ("" when none does)."""
    wanted = set(when) or {ALWAYS}
    for reason in reasons:
        if ALWAYS in wanted or reason in wanted or EQUIVALENT.get(reason, frozenset()) & wanted:
            return reason
    return ""


def retry_reason(run: Any, reasons: list[str]) -> str:
    """Why ``run`` should be retried automatically now ("" when it should not): it failed (never
    canceled), its attempts are not used up, its chain is not superseded, and one of its failed
    jobs' reasons is one ``retry: when`` names."""
    if run.status != Status.FAILED or run.retry_max <= 0 or run.cancel_requested:
        return ""
    if run.attempt >= run.retry_max + 1:
        return ""
    chain = run.chain
    if chain.superseded_by_id is not None:
        return ""
    return matching(run.retry_when or (), reasons or ["unknown"])


def attempt_words(run: Any) -> str:
    """``attempt 2 of 3, automatic retry: runner_system_failure`` (or ``attempt 2``)."""
    if run.retry_max:
        words = f"attempt {run.attempt} of {run.retry_max + 1}"
    else:
        words = f"attempt {run.attempt}"
    if run.retried_for:
        words += f", automatic retry: {run.retried_for}"
    return words


def flakiness(runs: Any) -> dict[int, int]:
    """Per target project (repository id): how many runs failed and then passed on a retry of the
    same commit — a run is retried in place, so its sha never changes between attempts."""
    rows = (
        runs.filter(status=Status.SUCCESS, attempt__gt=1)
        .filter(Q(attempts__status=Status.FAILED))
        .values("repository_id")
        .annotate(flaky=Count("id", distinct=True))
    )
    return {row["repository_id"]: row["flaky"] for row in rows}


def with_flakiness(repositories: QuerySet[Any]) -> QuerySet[Any]:
    """Repositories, each with ``flaky_runs`` (see ``flakiness``), in the same one query."""
    from chains.models import Run

    flaky = (
        Run.objects.filter(
            repository=OuterRef("pk"),
            status=Status.SUCCESS,
            attempt__gt=1,
            attempts__status=Status.FAILED,
        )
        .order_by()
        .values("repository")
        .annotate(n=Count("id", distinct=True))
        .values("n")
    )
    return repositories.annotate(
        flaky_runs=Coalesce(Subquery(flaky, output_field=IntegerField()), 0)
    )
