"""The GitLab web pages the API links to: a pipeline (``web_url``) and a job (``web_url``), as
plain HTML with the job's log tail (sandbox/jobs.py). Nothing else of GitLab's UI is imitated."""

from __future__ import annotations

import re
from urllib.parse import unquote

from sandbox.jobs import log_tail, page
from sandbox.model import Pipeline, Project
from sandbox.state import NotFound, SandboxState
from sandbox.web import Request, Response

_PAGE = re.compile(r"^/(?P<project>[^-][^?#]*?)/-/(?P<kind>pipelines|jobs)/(?P<id>[0-9]{1,18})/?$")


class GitLabPages:
    def __init__(self, state: SandboxState) -> None:
        self.state = state

    def handle(self, request: Request) -> Response | None:
        """The page at ``request.path``, or None when it is not a GitLab page."""
        m = _PAGE.match(request.path)
        if m is None or request.method not in ("GET", "HEAD"):
            return None
        with self.state.lock:
            try:
                p = self.state.project(unquote(m["project"]))
            except NotFound:
                return None
            number = int(m["id"])
            for pl in self.state.pipelines.values():
                if pl.project_id != p.id:
                    continue
                if m["kind"] == "pipelines" and pl.id == number:
                    return self._pipeline(p, pl)
                if m["kind"] == "jobs" and pl.job.id == number:
                    return self._job(p, pl)
        return None

    @staticmethod
    def _pipeline(p: Project, pl: Pipeline) -> Response:
        job = pl.job
        return page(
            f"Pipeline #{pl.id} · {p.path_with_namespace}",
            [("status", pl.status), ("ref", pl.ref), ("sha", pl.sha), ("source", pl.source)],
            links=[(f"{job.name} ({job.stage}): {job.status}", f"{p.web_url}/-/jobs/{job.id}")],
        )

    @staticmethod
    def _job(p: Project, pl: Pipeline) -> Response:
        job = pl.job
        reason = job.failure_reason if job.status == "failed" else None
        facts = [("status", job.status), ("stage", job.stage), ("pipeline", f"#{pl.id}")]
        if reason:
            facts.append(("failure reason", reason))
        return page(
            f"{job.name} · job #{job.id} · {p.path_with_namespace}",
            facts,
            log=log_tail(job.log, job.status, reason),
            links=[(f"pipeline #{pl.id}", f"{p.web_url}/-/pipelines/{pl.id}")],
        )
