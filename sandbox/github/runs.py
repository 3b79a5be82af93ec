"""GitHub Actions workflow runs in simulated time: queued → in_progress → completed.

Runs follow the repository's script on the shared ``Scheduler`` exactly like GitLab pipelines do
(the script's ``created + pending`` seconds queued, ``running`` seconds in progress, then the next
scripted conclusion). Every change is published as a ``github.workflow_run`` event whose ``action``
is ``requested``, ``in_progress`` or ``completed`` (→ ``workflow_run`` webhooks). A run started by a
deployment (``on: deployment``) also posts one status on that deployment per change, as
``github-actions[bot]``: ``queued``, ``in_progress``, then ``success`` / ``failure`` / ``error``.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from sandbox.github import entities as ent
from sandbox.github.model import CONCLUSIONS, Deployment, GitHubRepo, WorkflowRun
from sandbox.github.state import GitHubState
from sandbox.github.workflows import WorkflowFile, render
from sandbox.jobs import set_job_fields
from sandbox.model import Script, User
from sandbox.model import next_token as new_token
from sandbox.model import now as clock
from sandbox.scheduler import Scheduler
from sandbox.state import Invalid

# GitLab's words are accepted too, so one script vocabulary works on both sides.
_ALIASES = {"failed": "failure", "canceled": "cancelled"}
ACTIONS_BOT = "github-actions[bot]"
# A deployment run's conclusion → the deployment status it posts (anything else: failure).
DEPLOYMENT_OUTCOMES = {"success": "success", "neutral": "success", "skipped": "success",
                       "cancelled": "error"}


def conclusion(value: Any) -> str:
    word = _ALIASES.get(str(value), str(value))
    if word not in CONCLUSIONS:
        raise Invalid(f"outcome must be one of {sorted(CONCLUSIONS)}, not {value!r}")
    return word


class WorkflowRunner:
    def __init__(self, github: GitHubState, scheduler: Scheduler) -> None:
        self.github = github
        self.state = github.state
        self.scheduler = scheduler
        self.runs: dict[int, WorkflowRun] = {}

    def reset(self) -> None:
        self.runs = {}

    # -- scripts -------------------------------------------------------------------------------

    @staticmethod
    def set_script(repo: GitHubRepo, spec: dict[str, Any]) -> Script:
        outcome = conclusion(spec.get("outcome") or "success")
        queue = [conclusion(v) for v in spec.get("queue") or []]
        script = Script(outcome=outcome, ref=spec.get("ref") or None, queue=deque(queue))
        for phase in ("created", "pending", "running"):
            if spec.get(phase) is not None:
                setattr(script, phase, float(spec[phase]))
        set_job_fields(script, spec)
        repo.scripts[script.ref] = script
        return script

    @staticmethod
    def script_for(repo: GitHubRepo, run: WorkflowRun) -> Script:
        for ref in (run.head_branch, run.path.rsplit("/", 1)[-1], None):
            if ref in repo.scripts:
                return repo.scripts[ref]
        return repo.scripts.setdefault(None, Script())

    # -- creation and control ------------------------------------------------------------------

    def start(self, repo: GitHubRepo, workflow: WorkflowFile, *, ref: str, event: str,
              actor: User, inputs: dict[str, Any] | None = None,
              client_payload: dict[str, Any] | None = None, event_type: str | None = None,
              deployment: Deployment | None = None) -> WorkflowRun:
        """``deployment``: the run is the deployment's (``event: deployment``), on its sha."""
        sha = deployment.sha if deployment else self.github.resolve(repo, ref)
        branch = ref.removeprefix("refs/heads/").removeprefix("refs/tags/")
        event_data: dict[str, Any] = {"inputs": inputs or {}}
        if event == "repository_dispatch":
            event_data = {"action": event_type, "client_payload": client_payload or {}}
        if deployment is not None:
            event_data = {"action": "created",
                          "deployment": ent.deployment(self.github, repo, deployment),
                          "repository": {"full_name": repo.full_name, "name": repo.name},
                          "sender": {"login": actor.username}}
        context = {
            "inputs": inputs or {},
            "github": {"event_name": event, "ref_name": branch, "ref": _full_ref(repo, ref),
                       "sha": sha, "actor": actor.username, "repository": repo.full_name,
                       "event": event_data},
        }
        repo.run_count += 1
        title = render(workflow.run_name, context) if workflow.run_name else workflow.name
        run = WorkflowRun(
            id=self.state.new_id("github_run"), repo_id=repo.id,
            workflow_id=self.github.workflow_id(repo, workflow.path), path=workflow.path,
            name=workflow.name, display_title=title, run_number=repo.run_count, event=event,
            head_branch=branch, head_sha=sha, actor=actor, triggering_actor=actor,
            check_suite_id=self.state.new_id("github_check_suite"), inputs=dict(inputs or {}),
            client_payload=client_payload,
            deployment_id=deployment.id if deployment else None,
        )
        self.runs[run.id] = run
        self._script_job(repo, run)
        run.outcome = self.script_for(repo, run).next_outcome()
        self._announce(repo, run, "requested")
        self._plan_next(repo, run)
        return run

    def for_repo(self, repo: GitHubRepo) -> list[WorkflowRun]:
        return [r for r in self.runs.values() if r.repo_id == repo.id]

    def get(self, repo: GitHubRepo, run_id: int | str) -> WorkflowRun | None:
        run = self.runs.get(int(run_id)) if str(run_id).isdigit() else None
        return run if run is not None and run.repo_id == repo.id else None

    def rerun(self, repo: GitHubRepo, run: WorkflowRun, actor: User, *, failed_only: bool = False
              ) -> str | None:
        """A new attempt of a completed run; the refusal message otherwise."""
        if run.status != "completed":
            return "This workflow is already running"
        if failed_only and run.conclusion not in ("failure", "cancelled", "timed_out"):
            return "This workflow run has no failed jobs to re-run"
        run.run_attempt += 1
        run.status, run.conclusion, run.triggering_actor = "queued", None, actor
        run.run_started_at = run.updated_at = clock()
        self._script_job(repo, run)
        run.outcome = self.script_for(repo, run).next_outcome()
        self._announce(repo, run, "requested")
        self._plan_next(repo, run)
        return None

    def cancel(self, repo: GitHubRepo, run: WorkflowRun) -> bool:
        if run.status == "completed":
            return False
        self._set(repo, run, "completed", "cancelled")
        return True

    def force(self, repo: GitHubRepo, run: WorkflowRun, status: str) -> WorkflowRun:
        """Move a run now: ``queued``, ``in_progress`` or a conclusion (→ completed)."""
        if status in ("queued", "in_progress"):
            self._set(repo, run, status, None)
        else:
            self._set(repo, run, "completed", conclusion(status))
        return run

    def _script_job(self, repo: GitHubRepo, run: WorkflowRun) -> None:
        """A new job for the run's attempt, as the script describes it (name, step, log)."""
        script = self.script_for(repo, run)
        run.job_id = self.state.new_id("github_job")
        run.job_name, run.step, run.log = script.job, script.step, script.log

    # -- the clock -----------------------------------------------------------------------------

    def _plan_next(self, repo: GitHubRepo, run: WorkflowRun) -> None:
        run.token = token = new_token()
        script = self.script_for(repo, run)
        if run.status == "queued":
            delay, status, result = script.created + script.pending, "in_progress", None
        elif run.status == "in_progress":
            delay, status, result = script.running, "completed", run.outcome
        else:
            return

        def step() -> None:
            with self.state.lock:
                if run.token != token or self.runs.get(run.id) is not run:
                    return
                self._set(repo, run, status, result)

        self.scheduler.call_later(delay, step)

    def _set(self, repo: GitHubRepo, run: WorkflowRun, status: str, result: str | None) -> None:
        run.status, run.conclusion, run.updated_at = status, result, clock()
        run.token = new_token()
        self._announce(repo, run, status if status != "queued" else "requested")
        self._plan_next(repo, run)

    def _announce(self, repo: GitHubRepo, run: WorkflowRun, action: str) -> None:
        self.github.emit("workflow_run", repo, run.triggering_actor or run.actor, run=run,
                         action=action)
        deployment = repo.deployments.get(run.deployment_id or 0)
        if deployment is None:
            return
        if run.status == "completed":
            state = DEPLOYMENT_OUTCOMES.get(run.conclusion or "", "failure")
        else:
            state = "queued" if run.status == "queued" else "in_progress"
        log_url = f"{ent.html_url(self.github, repo)}/actions/runs/{run.id}"
        self.github.add_deployment_status(
            repo, deployment, state, self.state.user(ACTIONS_BOT, name="github-actions"),
            description=f"{run.name} #{run.run_number}: {run.conclusion or run.status}"[:140],
            log_url=log_url, run=run)


def _full_ref(repo: GitHubRepo, ref: str) -> str:
    """``github.ref``: ``refs/heads/B``, ``refs/tags/T``, a ``refs/…`` as given, or ``""`` for a
    sha (as for a deployment of a commit)."""
    if ref.startswith("refs/"):
        return ref
    if ref in repo.git.branches:
        return f"refs/heads/{ref}"
    if ref in repo.git.tags:
        return f"refs/tags/{ref}"
    return ""
