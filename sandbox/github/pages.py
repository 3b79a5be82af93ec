"""The GitHub web pages the API links to: a workflow run (``html_url``) and its job
(``html_url``, ``…/actions/runs/<run>/job/<job>``), as plain HTML with the job's log tail
(sandbox/jobs.py). Nothing else of GitHub's UI is imitated."""

from __future__ import annotations

import re

from sandbox.github import entities as ent
from sandbox.github.model import GitHubRepo, WorkflowRun
from sandbox.github.runs import WorkflowRunner
from sandbox.github.state import GitHubState
from sandbox.jobs import log_tail, page
from sandbox.state import NotFound
from sandbox.web import Request, Response

_PAGE = re.compile(
    r"^/(?P<owner>[^/]+)/(?P<name>[^/]+)/actions/runs/(?P<run>[0-9]{1,18})"
    r"(?:/job/(?P<job>[0-9]{1,18}))?/?$"
)


class GitHubPages:
    def __init__(self, github: GitHubState, runner: WorkflowRunner) -> None:
        self.github = github
        self.runner = runner

    def handle(self, request: Request) -> Response | None:
        """The page at ``request.path``, or None when it is not a GitHub page."""
        m = _PAGE.match(request.path)
        if m is None or request.method not in ("GET", "HEAD"):
            return None
        with self.github.state.lock:
            try:
                repo = self.github.repo(m["owner"], m["name"])
            except NotFound:
                return None
            run = self.runner.get(repo, m["run"])
            if run is None:
                return None
            if m["job"] is None:
                return self._run(repo, run)
            if int(m["job"]) != run.job_id:
                return None
            return self._job(repo, run)

    def _run(self, repo: GitHubRepo, run: WorkflowRun) -> Response:
        jobs = ent.workflow_jobs(self.github, repo, run)
        return page(
            f"{run.display_title} · {run.name} #{run.run_number} · {repo.full_name}",
            [
                ("status", run.status),
                ("conclusion", run.conclusion or ""),
                ("attempt", str(run.run_attempt)),
                ("branch", run.head_branch),
                ("event", run.event),
            ],
            links=[(f"{j['name']}: {j['conclusion'] or j['status']}", j["html_url"]) for j in jobs],
        )

    def _job(self, repo: GitHubRepo, run: WorkflowRun) -> Response:
        jobs = ent.workflow_jobs(self.github, repo, run)
        job = jobs[0] if jobs else None
        conclusion = run.conclusion or ""
        facts = [("status", run.status), ("conclusion", conclusion)]
        failed = [
            s["name"]
            for s in (job or {}).get("steps", [])
            if s["conclusion"] not in (None, "success", "skipped")
        ]
        if failed:
            facts.append(("failed step", failed[0]))
        run_url = f"{ent.html_url(self.github, repo)}/actions/runs/{run.id}"
        return page(
            f"{run.job_name} · {run.name} #{run.run_number} · {repo.full_name}",
            facts,
            log=log_tail(run.log, conclusion or run.status, conclusion or None),
            links=[(f"{run.name} #{run.run_number}", run_url)],
        )
