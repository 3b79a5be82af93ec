"""Deployments routes of the ``/api/v3`` subset: create (which starts the ``on: deployment``
workflows of the deployed commit), list, get, delete, and deployment statuses (create, list, get).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from sandbox.github import entities as ent
from sandbox.github.http import error, paginate, validation_failed
from sandbox.github.model import Deployment, GitHubRepo
from sandbox.state import Invalid, NotFound
from sandbox.web import ApiError, Request, Response

if TYPE_CHECKING:
    from sandbox.github.api import GitHubAPI


def _invalid(prop: str, what: str) -> ApiError:
    return error(422, f"Invalid request.\n\nFor 'properties/{prop}', {what}.")


def _payload(value: Any) -> dict[str, Any] | str:
    """An object, or a string (``""`` → ``{}``; a JSON object text → that object; other text is
    kept as it is, as GitHub does)."""
    if value is None or value == "":
        return {}
    if isinstance(value, dict):
        return value
    if not isinstance(value, str):
        raise _invalid("payload", f"{json.dumps(value)} is not an object or a string")
    try:
        parsed = json.loads(value)
    except ValueError:
        return value
    return parsed if isinstance(parsed, dict) else value


def _opt_bool(body: dict[str, Any], key: str) -> bool | None:
    value = body.get(key)
    if value is not None and not isinstance(value, bool):
        raise _invalid(key, f"{json.dumps(value)} is not a boolean")
    return value


def _opt_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise _invalid(key, f"{json.dumps(value)} is not a string")
    return value


class DeploymentRoutes:
    def __init__(self, api: GitHubAPI) -> None:
        self.api = api
        self.github = api.github
        self.runner = api.runner
        d = "/repos/<owner>/<name>/deployments"
        api.add("GET", d, self.list_deployments)
        api.add("POST", d, self.create_deployment)
        api.add("GET", d + "/<deployment_id>", self.get_deployment)
        api.add("DELETE", d + "/<deployment_id>", self.delete_deployment)
        api.add("GET", d + "/<deployment_id>/statuses", self.list_statuses)
        api.add("POST", d + "/<deployment_id>/statuses", self.create_status)
        api.add("GET", d + "/<deployment_id>/statuses/<status_id>", self.get_status)

    def _deployment(self, owner: str, name: str, deployment_id: str
                    ) -> tuple[GitHubRepo, Deployment]:
        repo = self.api.repo(owner, name)
        return repo, self.github.deployment(repo, deployment_id)

    # -- deployments ---------------------------------------------------------------------------

    def create_deployment(self, request: Request, owner: str, name: str) -> Response:
        repo = self.api.repo(owner, name)
        body = request.json_body()
        if not isinstance(body, dict):
            raise error(422, "Invalid request.\n\nFor 'links/0/schema', not an object.")
        ref = body.get("ref")
        if not ref or not isinstance(ref, str):
            raise error(422, 'Invalid request.\n\n"ref" wasn\'t supplied.')
        required = body.get("required_contexts")
        if required is not None and (not isinstance(required, list)
                                     or not all(isinstance(c, str) for c in required)):
            raise _invalid("required_contexts", f"{json.dumps(required)} is not an array of "
                                                "strings")
        payload = _payload(body.get("payload"))
        _opt_bool(body, "auto_merge")  # accepted; the ref is never merged
        task = _opt_str(body, "task") or "deploy"
        environment = _opt_str(body, "environment") or "production"
        description = _opt_str(body, "description") if "description" in body else ""
        transient = _opt_bool(body, "transient_environment") or False
        production = _opt_bool(body, "production_environment")
        try:
            sha = self.github.resolve(repo, ref)
        except NotFound:
            raise error(422, f"No ref found for: {ref}") from None
        failing = self.github.failing_contexts(repo, sha, required)
        if failing:
            raise error(409, f"Conflict: Commit status checks failed for {ref}.", errors=[
                {"contexts": failing, "resource": "Deployment", "field": "required_contexts",
                 "code": "invalid"}])
        actor = self.api.actor(request)
        d = self.github.create_deployment(
            repo, ref, actor, task=task, payload=payload, environment=environment,
            description=description, transient_environment=transient,
            production_environment=production)
        for wf in self.github.workflows(repo, sha):
            if wf.valid and wf.on_deployment:
                self.runner.start(repo, wf, ref=ref, event="deployment", actor=actor,
                                  deployment=d)
        return Response.json(ent.deployment(self.github, repo, d), 201)

    def list_deployments(self, request: Request, owner: str, name: str) -> Response:
        repo = self.api.repo(owner, name)
        q = request.query
        found = sorted(repo.deployments.values(), key=lambda d: d.id, reverse=True)
        for key in ("sha", "ref", "task", "environment"):
            if q.get(key):
                found = [d for d in found if getattr(d, key) == q[key]]
        return paginate(request, [ent.deployment(self.github, repo, d) for d in found])

    def get_deployment(self, request: Request, owner: str, name: str, deployment_id: str
                       ) -> Response:
        repo, d = self._deployment(owner, name, deployment_id)
        return Response.json(ent.deployment(self.github, repo, d))

    def delete_deployment(self, request: Request, owner: str, name: str, deployment_id: str
                          ) -> Response:
        repo, d = self._deployment(owner, name, deployment_id)
        try:
            self.github.delete_deployment(repo, d)
        except Invalid as exc:
            raise error(422, str(exc)) from None
        return Response.empty(204)

    # -- statuses ------------------------------------------------------------------------------

    def create_status(self, request: Request, owner: str, name: str, deployment_id: str
                      ) -> Response:
        repo, d = self._deployment(owner, name, deployment_id)
        body = request.json_body()
        if not isinstance(body, dict):
            raise error(422, "Invalid request.\n\nFor 'links/0/schema', not an object.")
        state = body.get("state")
        if not state or not isinstance(state, str):
            raise error(422, 'Invalid request.\n\n"state" wasn\'t supplied.')
        fields = {k: _opt_str(body, k) for k in ("log_url", "target_url", "description",
                                                  "environment", "environment_url")}
        try:
            s = self.github.add_deployment_status(
                repo, d, state, self.api.actor(request), description=fields["description"],
                log_url=fields["log_url"] or fields["target_url"],
                environment=fields["environment"], environment_url=fields["environment_url"],
                auto_inactive=_opt_bool(body, "auto_inactive") is not False)
        except Invalid as exc:
            field = "state" if "state" in str(exc) else "description"
            raise validation_failed(str(exc), "DeploymentStatus", field) from None
        return Response.json(ent.deployment_status(self.github, repo, d, s), 201)

    def list_statuses(self, request: Request, owner: str, name: str, deployment_id: str
                      ) -> Response:
        repo, d = self._deployment(owner, name, deployment_id)
        return paginate(request, [ent.deployment_status(self.github, repo, d, s)
                                  for s in reversed(d.statuses)])

    def get_status(self, request: Request, owner: str, name: str, deployment_id: str,
                   status_id: str) -> Response:
        repo, d = self._deployment(owner, name, deployment_id)
        for s in d.statuses:
            if str(s.id) == status_id:
                return Response.json(ent.deployment_status(self.github, repo, d, s))
        raise NotFound("Not Found")
