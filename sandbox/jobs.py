"""What a scripted job says when it fails, on both forges, and the web pages that show it.

A script (``PUT /_sandbox/projects/<p>/script``, ``PUT /_sandbox/github/repos/<o>/<r>/script``)
may name its job (``job``, ``stage``), say why it fails (``failure_reason``: one of GitLab's
words, used by GitLab jobs), which step fails (``step``, GitHub) and what its log ends with
(``log``). The forges' ``web_url`` / ``html_url`` of pipelines, jobs and workflow runs lead to a
plain HTML page (``page``) with that log tail; every piece of text on it is HTML-escaped.
"""

from __future__ import annotations

from html import escape
from typing import Any

from sandbox.model import Script
from sandbox.state import Invalid
from sandbox.web import Response

# GitLab's CommitStatus failure_reason enum (GL app/models/concerns/enums/ci/commit_status.rb),
# as the Jobs API and Pipeline Hooks show it (docs.gitlab.com/api/jobs/).
FAILURE_REASONS = frozenset(
    {
        "unknown_failure",
        "script_failure",
        "api_failure",
        "stuck_or_timeout_failure",
        "runner_system_failure",
        "missing_dependency_failure",
        "runner_unsupported",
        "stale_schedule",
        "job_execution_timeout",
        "archived_failure",
        "unmet_prerequisites",
        "scheduler_failure",
        "data_integrity_failure",
        "forward_deployment_failure",
        "user_blocked",
        "project_deleted",
        "ci_quota_exceeded",
        "pipeline_loop_detected",
        "no_matching_runner",
        "trace_size_exceeded",
        "builds_disabled",
        "environment_creation_failure",
        "deployment_rejected",
        "failed_outdated_deployment_job",
        "protected_environment_failure",
        "insufficient_bridge_permissions",
        "downstream_bridge_project_not_found",
        "invalid_bridge_trigger",
        "upstream_bridge_project_not_found",
        "insufficient_upstream_permissions",
        "bridge_pipeline_is_child_pipeline",
        "downstream_pipeline_creation_failed",
        "secrets_provider_not_found",
        "reached_max_descendant_pipelines_depth",
        "ip_restriction_failure",
        "reached_max_pipeline_hierarchy_size",
    }
)
MAX_NAME = 255  # GitLab's job name limit
MAX_LOG = 64 * 1024  # the tail a page shows
HTML_TYPE = "text/html; charset=utf-8"


def set_job_fields(script: Script, spec: dict[str, Any]) -> None:
    """Read the job fields of a script body into ``script`` (Invalid on a bad one)."""
    for key in ("job", "stage", "step"):
        value = spec.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME:
            raise Invalid(f"{key} must be a non-empty string of at most {MAX_NAME} characters")
        setattr(script, key, value)
    reason = spec.get("failure_reason")
    if reason is not None:
        if reason not in FAILURE_REASONS:
            raise Invalid(f"failure_reason must be one of GitLab's, not {reason!r}")
        script.failure_reason = reason
    log = spec.get("log")
    if log is not None:
        if not isinstance(log, str) or len(log) > MAX_LOG:
            raise Invalid(f"log must be a string of at most {MAX_LOG} characters")
        script.log = log


def log_tail(script_log: str, status: str, reason: str | None = None) -> str:
    """The log a job shows: the script's, else a few lines that fit its end."""
    if script_log:
        return script_log
    lines = ["Running with sandbox-runner", "$ ./run-tests"]
    if status in ("failed", "failure", "timed_out"):
        lines.append(f"ERROR: Job failed: {reason or 'exit code 1'}")
    elif status in ("success",):
        lines.append("Job succeeded")
    elif status in ("canceled", "cancelled"):
        lines.append("ERROR: Job was canceled")
    return "\n".join(lines) + "\n"


def page(
    title: str,
    facts: list[tuple[str, str]],
    *,
    log: str | None = None,
    links: list[tuple[str, str]] | None = None,
) -> Response:
    """A plain HTML page: a title, facts, links (label, href) and a log tail, all escaped."""
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title></head><body>",
        f"<h1>{escape(title)}</h1>",
        "<dl>",
    ]
    for name, value in facts:
        parts.append(f"<dt>{escape(name)}</dt><dd>{escape(value)}</dd>")
    parts.append("</dl>")
    if links:
        parts.append("<ul>")
        parts += [f'<li><a href="{escape(href)}">{escape(label)}</a></li>' for label, href in links]
        parts.append("</ul>")
    if log is not None:
        parts.append(f'<pre class="job-log">{escape(log[-MAX_LOG:])}</pre>')
    parts.append("</body></html>")
    return Response(200, "\n".join(parts).encode(), HTML_TYPE)
