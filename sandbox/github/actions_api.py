"""GitHub Actions routes of the ``/api/v3`` subset: workflows, workflow and repository dispatch,
workflow runs (list, get, rerun, rerun failed jobs, cancel, force-cancel)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sandbox.github import entities as ent
from sandbox.github.http import error, not_found, paginate
from sandbox.github.model import GitHubRepo, WorkflowRun
from sandbox.github.workflows import check_inputs, parse
from sandbox.state import NotFound
from sandbox.web import Request, Response

if TYPE_CHECKING:
    from sandbox.github.api import GitHubAPI

MAX_CLIENT_PAYLOAD_KEYS = 10


class ActionsRoutes:
    def __init__(self, api: GitHubAPI) -> None:
        self.api = api
        self.github = api.github
        self.runner = api.runner
        r = "/repos/<owner>/<name>"
        run = r + "/actions/runs/<run_id>"
        api.add("GET", r + "/actions/workflows", self.list_workflows)
        api.add("GET", r + "/actions/workflows/<workflow>", self.get_workflow)
        api.add("GET", r + "/actions/workflows/<workflow>/runs", self.list_workflow_runs)
        api.add("POST", r + "/actions/workflows/<workflow>/dispatches", self.dispatch_workflow)
        api.add("POST", r + "/dispatches", self.dispatch_repository)
        api.add("GET", r + "/actions/runs", self.list_runs)
        api.add("GET", run, self.get_run)
        api.add("GET", run + "/jobs", self.list_jobs)
        api.add("POST", run + "/rerun", self.rerun)
        api.add("POST", run + "/rerun-failed-jobs", self.rerun_failed_jobs)
        api.add("POST", run + "/cancel", self.cancel)
        api.add("POST", run + "/force-cancel", self.cancel)

    # -- workflows -----------------------------------------------------------------------------

    def list_workflows(self, request: Request, owner: str, name: str) -> Response:
        repo = self.api.repo(owner, name)
        flows = [ent.workflow(self.github, repo, wf) for wf in self.github.workflows(repo)]
        return paginate(request, flows, wrap="workflows")

    def get_workflow(self, request: Request, owner: str, name: str, workflow: str) -> Response:
        repo = self.api.repo(owner, name)
        return Response.json(ent.workflow(self.github, repo,
                                          self.github.workflow(repo, workflow)))

    def dispatch_workflow(self, request: Request, owner: str, name: str, workflow: str
                          ) -> Response:
        repo = self.api.repo(owner, name)
        wf = self.github.workflow(repo, workflow)
        body = request.json_body()
        if not isinstance(body, dict):
            raise error(422, "Invalid request.\n\nFor 'links/0/schema', not an object.")
        if "return_run_details" in body and not self.github.return_run_details:
            raise error(422, 'Invalid request.\n\n"return_run_details" is not a permitted key.')
        ref = body.get("ref")
        if not ref or not isinstance(ref, str):
            raise error(422, 'Invalid request.\n\n"ref" wasn\'t supplied.')
        inputs = body.get("inputs") or {}
        if not isinstance(inputs, dict):
            raise error(422, "Invalid request.\n\nFor 'properties/inputs', is not an object.")
        try:
            commit = self.github.commit_at(repo, ref)
        except NotFound:
            raise error(422, f"No ref found for: {ref}") from None
        if wf.path not in commit.files:
            raise error(404, f"Not Found: workflow {wf.file_name} does not exist at {ref}")
        at_ref = parse(wf.path, commit.files[wf.path])
        if not at_ref.dispatchable:
            raise error(422, "Workflow does not have 'workflow_dispatch' trigger")
        try:
            values = check_inputs(at_ref, inputs)
        except ValueError as exc:
            raise error(422, str(exc)) from None
        run = self.runner.start(repo, at_ref, ref=ref, event="workflow_dispatch",
                                actor=self.api.actor(request), inputs=values)
        if body.get("return_run_details") is True:
            data = ent.workflow_run(self.github, repo, run)
            return Response.json({"workflow_run_id": run.id, "run_url": data["url"],
                                  "html_url": data["html_url"]})
        return Response.empty(204)

    def dispatch_repository(self, request: Request, owner: str, name: str) -> Response:
        repo = self.api.repo(owner, name)
        body = request.json_body()
        event_type = body.get("event_type") if isinstance(body, dict) else None
        if not isinstance(event_type, str) or not 1 <= len(event_type) <= 100:
            raise error(422, "Invalid request.\n\nFor 'properties/event_type', "
                             f"{event_type!r} is not a string of 1 to 100 characters.")
        payload = body.get("client_payload") or {}
        if not isinstance(payload, dict):
            raise error(422, "Invalid request.\n\nFor 'properties/client_payload', "
                             "is not an object.")
        if len(payload) > MAX_CLIENT_PAYLOAD_KEYS:
            raise error(422, f"Invalid request.\n\nNo more than {MAX_CLIENT_PAYLOAD_KEYS} "
                             f"properties are allowed; {len(payload)} were supplied.")
        actor = self.api.actor(request)
        self.github.emit("repository_dispatch", repo, actor, event_type=event_type,
                         client_payload=payload)
        for wf in self.github.workflows(repo):
            if wf.accepts_repository_dispatch(event_type):
                self.runner.start(repo, wf, ref=repo.default_branch, event="repository_dispatch",
                                  actor=actor, client_payload=payload, event_type=event_type)
        return Response.empty(204)

    # -- runs ----------------------------------------------------------------------------------

    def _list(self, request: Request, repo: GitHubRepo, runs: list[WorkflowRun]) -> Response:
        q = request.query
        tests: list[Callable[[WorkflowRun], bool]] = []
        if q.get("branch"):
            tests.append(lambda r: r.head_branch == q["branch"])
        if q.get("event"):
            tests.append(lambda r: r.event == q["event"])
        if q.get("head_sha"):
            tests.append(lambda r: r.head_sha == q["head_sha"])
        if q.get("actor"):
            tests.append(lambda r: r.actor.username == q["actor"])
        if q.get("check_suite_id"):
            tests.append(lambda r: str(r.check_suite_id) == q["check_suite_id"])
        if q.get("status"):
            tests.append(lambda r: q["status"] in (r.status, r.conclusion))
        if q.get("created"):
            created = created_filter(q["created"])
            tests.append(lambda r: created(r.created_at))
        runs = sorted((r for r in runs if all(t(r) for t in tests)), key=lambda r: r.id,
                      reverse=True)
        data = [ent.workflow_run(self.github, repo, r) for r in runs]
        if str(q.get("exclude_pull_requests", "")).lower() in ("1", "true"):
            for d in data:
                d["pull_requests"] = []
        return paginate(request, data, wrap="workflow_runs")

    def list_runs(self, request: Request, owner: str, name: str) -> Response:
        repo = self.api.repo(owner, name)
        return self._list(request, repo, self.runner.for_repo(repo))

    def list_workflow_runs(self, request: Request, owner: str, name: str, workflow: str
                           ) -> Response:
        repo = self.api.repo(owner, name)
        wf = self.github.workflow(repo, workflow)
        wid = self.github.workflow_id(repo, wf.path)
        return self._list(request, repo,
                          [r for r in self.runner.for_repo(repo) if r.workflow_id == wid])

    def _run(self, owner: str, name: str, run_id: str) -> tuple[GitHubRepo, WorkflowRun]:
        repo = self.api.repo(owner, name)
        run = self.runner.get(repo, run_id)
        if run is None:
            raise not_found()
        return repo, run

    def get_run(self, request: Request, owner: str, name: str, run_id: str) -> Response:
        repo, run = self._run(owner, name, run_id)
        data = ent.workflow_run(self.github, repo, run)
        if str(request.query.get("exclude_pull_requests", "")).lower() in ("1", "true"):
            data["pull_requests"] = []
        return Response.json(data)

    def list_jobs(self, request: Request, owner: str, name: str, run_id: str) -> Response:
        """The jobs of the run's latest attempt (``filter=latest``, the default) or of every
        attempt (``filter=all``; earlier attempts' jobs are not kept here)."""
        repo, run = self._run(owner, name, run_id)
        if request.query.get("filter", "latest") not in ("latest", "all"):
            raise error(422, "Invalid request.\n\nfilter must be one of latest, all.")
        return paginate(request, ent.workflow_jobs(self.github, repo, run), wrap="jobs")

    def _rerun(self, request: Request, owner: str, name: str, run_id: str, failed_only: bool
               ) -> Response:
        repo, run = self._run(owner, name, run_id)
        refusal = self.runner.rerun(repo, run, self.api.actor(request), failed_only=failed_only)
        if refusal:
            raise error(403, refusal)
        return Response.json({}, 201)

    def rerun(self, request: Request, owner: str, name: str, run_id: str) -> Response:
        return self._rerun(request, owner, name, run_id, failed_only=False)

    def rerun_failed_jobs(self, request: Request, owner: str, name: str, run_id: str
                          ) -> Response:
        return self._rerun(request, owner, name, run_id, failed_only=True)

    def cancel(self, request: Request, owner: str, name: str, run_id: str) -> Response:
        repo, run = self._run(owner, name, run_id)
        if not self.runner.cancel(repo, run):
            raise error(409, "Cannot cancel a workflow run that is completed.")
        return Response.json({}, 202)


def _parse_bound(text: str, end: bool) -> float:
    """A date or date-time in search syntax → epoch seconds (a bare date's end is the day's end)."""
    text = text.strip()
    try:
        if len(text) == 10:
            day = datetime.fromisoformat(text).replace(tzinfo=UTC)
            return (day + timedelta(days=1) if end else day).timestamp() - (1e-6 if end else 0)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise error(422, f"Invalid created filter: {text}") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def created_filter(spec: str) -> Callable[[float], bool]:
    """``>=D``, ``>D``, ``<=D``, ``<D``, ``D..D`` (``*`` open), or ``D`` (that day / instant)."""
    spec = spec.strip()
    if ".." in spec:
        lo, hi = spec.split("..", 1)
        low = None if lo.strip() in ("", "*") else _parse_bound(lo, False)
        high = None if hi.strip() in ("", "*") else _parse_bound(hi, True)
        return lambda t: (low is None or t >= low) and (high is None or t <= high)
    ops: dict[str, Callable[[float, float], bool]] = {
        ">=": lambda t, b: t >= b, "<=": lambda t, b: t <= b,
        ">": lambda t, b: t > b, "<": lambda t, b: t < b,
    }
    for op, test in ops.items():
        if spec.startswith(op):
            bound = _parse_bound(spec[len(op):], op in ("<=", ">"))
            return lambda t: test(t, bound)
    low, high = _parse_bound(spec, False), _parse_bound(spec, True)
    return lambda t: low <= t <= high if len(spec) == 10 else int(t) == int(low)
