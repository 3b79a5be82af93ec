"""Pipelines in simulated time: created → pending → running → scripted outcome.

Each step is planned on the shared ``Scheduler`` with a fresh token; cancel, retry, force-finish and
reset give the pipeline a new token, so steps planned earlier find themselves stale and do nothing.
Every status change is published as a ``pipeline`` event (→ Pipeline Hook).
"""

from __future__ import annotations

from collections import deque
from typing import Any

from sandbox.jobs import set_job_fields
from sandbox.model import ACTIVE, FINISHED, PIPELINE_STATUSES, Job, Pipeline, Project, Script, User
from sandbox.model import next_token as new_token
from sandbox.model import now as clock
from sandbox.scheduler import Scheduler
from sandbox.state import Invalid, NotFound, SandboxState

OUTCOMES = frozenset({"success", "failed", "canceled", "skipped"})
_NEXT = {"created": "pending", "pending": "running"}


CI_CONFIG_PATH = ".gitlab-ci.yml"  # no file at the ref: GitLab creates no pipeline


class PipelineRunner:
    def __init__(self, state: SandboxState, scheduler: Scheduler) -> None:
        self.state = state
        self.scheduler = scheduler

    # -- scripts -------------------------------------------------------------------------------

    def set_script(self, project: Project, spec: dict[str, Any]) -> Script:
        outcome = spec.get("outcome") or "success"
        queue = list(spec.get("queue") or [])
        for value in [outcome, *queue]:
            if value not in OUTCOMES:
                raise Invalid(f"outcome must be one of {sorted(OUTCOMES)}, not {value!r}")
        script = Script(outcome=outcome, ref=spec.get("ref") or None, queue=deque(queue))
        for phase in ("created", "pending", "running"):
            if spec.get(phase) is not None:
                setattr(script, phase, float(spec[phase]))
        set_job_fields(script, spec)
        project.scripts[script.ref] = script
        return script

    @staticmethod
    def script_for(project: Project, pipeline: Pipeline) -> Script:
        refs: list[str | None] = [pipeline.ref]
        if pipeline.mr_iid is not None and pipeline.mr_iid in project.merge_requests:
            refs.append(project.merge_requests[pipeline.mr_iid].source_branch)
        for ref in [*refs, None]:
            if ref in project.scripts:
                return project.scripts[ref]
        return project.scripts.setdefault(None, Script())

    # -- creation and control ------------------------------------------------------------------

    def create(
        self,
        project: Project,
        ref: str,
        *,
        source: str,
        user: User,
        variables: list[dict[str, str]] | None = None,
        mr_iid: int | None = None,
    ) -> Pipeline:
        try:
            sha = self.state.resolve(project, ref)
        except NotFound:
            raise Invalid("Reference not found") from None
        if CI_CONFIG_PATH not in project.commits[sha].files:
            raise Invalid("Missing CI config file")
        if mr_iid is None:
            ref = ref.removeprefix("refs/heads/")
        tag = ref.removeprefix("refs/tags/") in project.tags and ref not in project.branches
        project.pipeline_count += 1
        pipeline = Pipeline(
            id=self.state.new_id("pipeline"),
            iid=project.pipeline_count,
            project_id=project.id,
            sha=sha,
            ref=ref.removeprefix("refs/tags/"),
            source=source,
            user=user,
            job=Job(self.state.new_id("job")),
            variables=[dict(v) for v in variables or []],
            mr_iid=mr_iid,
            tag=tag,
        )
        self.state.pipelines[pipeline.id] = pipeline
        self._script_job(project, pipeline)
        pipeline.outcome = self.script_for(project, pipeline).next_outcome()
        self._announce(project, pipeline)
        self._plan_next(project, pipeline)
        return pipeline

    def get(self, project: Project, pipeline_id: int | str) -> Pipeline:
        p = self.state.pipelines.get(int(pipeline_id)) if str(pipeline_id).isdigit() else None
        if p is None or p.project_id != project.id:
            raise NotFound("404 Not found")
        return p

    def for_project(self, project: Project) -> list[Pipeline]:
        return [p for p in self.state.pipelines.values() if p.project_id == project.id]

    def retry(self, project: Project, pipeline: Pipeline) -> Pipeline:
        if pipeline.status not in {"failed", "canceled"}:
            return pipeline  # "no failed or canceled jobs: no effect"
        pipeline.outcome = self.script_for(project, pipeline).next_outcome()
        pipeline.started_at = pipeline.finished_at = None
        pipeline.retried_jobs = (*pipeline.retried_jobs, pipeline.job)  # listed on request
        pipeline.job = Job(self.state.new_id("job"))
        self._script_job(project, pipeline)
        self._set(project, pipeline, "pending")
        return pipeline

    def cancel(self, project: Project, pipeline: Pipeline) -> Pipeline:
        if pipeline.status in ACTIVE:
            self._set(project, pipeline, "canceled")
        return pipeline

    def force(self, project: Project, pipeline: Pipeline, status: str) -> Pipeline:
        if status not in PIPELINE_STATUSES:
            raise Invalid(f"unknown status {status!r}")
        if status in _NEXT or status == "running":
            pipeline.finished_at = None
        self._set(project, pipeline, status)
        return pipeline

    def _script_job(self, project: Project, pipeline: Pipeline) -> None:
        """The pipeline's job as its script describes it (name, stage, why it fails, log)."""
        script = self.script_for(project, pipeline)
        job = pipeline.job
        job.name, job.stage = script.job, script.stage
        job.failure_reason, job.log = script.failure_reason, script.log

    # -- the clock -----------------------------------------------------------------------------

    def _plan_next(self, project: Project, pipeline: Pipeline) -> None:
        pipeline.token = token = new_token()
        script = self.script_for(project, pipeline)
        if pipeline.status == "created":
            delay, target = script.created, "pending"
        elif pipeline.status == "pending":
            delay, target = script.pending, "running"
        elif pipeline.status == "running":
            delay, target = script.running, pipeline.outcome
        else:
            return

        def step() -> None:
            with self.state.lock:
                if pipeline.token != token or self.state.pipelines.get(pipeline.id) is not pipeline:
                    return
                self._set(project, pipeline, target)

        self.scheduler.call_later(delay, step)

    def _set(self, project: Project, pipeline: Pipeline, status: str) -> None:
        t = clock()
        pipeline.status = pipeline.job.status = status
        pipeline.updated_at = t
        if status == "running" and pipeline.started_at is None:
            pipeline.started_at = pipeline.job.started_at = t
        if status in FINISHED:
            pipeline.finished_at = pipeline.job.finished_at = t
        else:
            pipeline.finished_at = pipeline.job.finished_at = None
        pipeline.token = new_token()
        self._announce(project, pipeline)
        self._plan_next(project, pipeline)

    def _announce(self, project: Project, pipeline: Pipeline) -> None:
        self.state.emit("pipeline", project, pipeline.user, pipeline=pipeline)
