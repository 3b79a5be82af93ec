"""The sandbox's own control API under ``/_sandbox`` (JSON in and out, no auth).

Set up projects, commits, merge requests and comments; script pipelines; inject faults; read back
the API requests received and the webhooks sent. Documented in ``docs/sandbox.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from sandbox.gitlab import entities as ent
from sandbox.model import MergeRequest, Project
from sandbox.state import Invalid, NotFound, label_names
from sandbox.web import ApiError, Request, Response, Router, as_int

if TYPE_CHECKING:
    from sandbox.app import Sandbox

PREFIX = "/_sandbox"
ALL_EVENTS = {"push_events": True, "merge_requests_events": True, "note_events": True,
              "pipeline_events": True, "job_events": True, "tag_push_events": True}


CI_CONFIG_PATH = ".gitlab-ci.yml"
DEFAULT_CI_CONFIG = "test:\n  script: echo sandbox\n"


def _files(value: Any) -> dict[str, str | None]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ApiError(400, {"error": "files must be an object of path -> text"})
    return {str(k): (None if v is None else str(v)) for k, v in value.items()}


class ControlAPI:
    def __init__(self, app: Sandbox) -> None:
        self.app = app
        self.state = app.state
        self.router = Router(PREFIX)
        proj = "/projects/<project>"
        mr = proj + "/merge_requests/<iid>"
        routes: list[tuple[str, str, Callable[..., Response]]] = [
            ("GET", "", self.info),
            ("POST", "/reset", self.reset),
            ("PUT", "/users/<username>", self.put_user),
            ("GET", "/projects", self.list_projects),
            ("POST", "/projects", self.create_project),
            ("GET", proj, self.get_project),
            ("POST", proj + "/commits", self.commit),
            ("POST", proj + "/tags", self.tag),
            ("PUT", proj + "/members", self.members),
            ("POST", proj + "/hooks", self.add_hook),
            ("POST", proj + "/hooks/<hook_id>/enable", self.enable_hook),
            ("POST", proj + "/triggers", self.add_trigger),
            ("GET", proj + "/script", self.get_script),
            ("PUT", proj + "/script", self.put_script),
            ("GET", proj + "/pipelines", self.pipelines),
            ("POST", proj + "/pipelines/<pipeline_id>/finish", self.finish_pipeline),
            ("POST", proj + "/merge_requests", self.open_mr),
            ("GET", mr, self.get_mr),
            ("POST", mr + "/push", self.push_mr),
            ("POST", mr + "/close", self.close_mr),
            ("POST", mr + "/reopen", self.reopen_mr),
            ("POST", mr + "/merge", self.merge_mr),
            ("POST", mr + "/edit", self.edit_mr),
            ("POST", mr + "/comments", self.comment),
            ("GET", "/faults", self.list_faults),
            ("POST", "/faults", self.add_fault),
            ("DELETE", "/faults", self.clear_faults),
            ("DELETE", "/faults/<fault_id>", self.delete_fault),
            ("GET", "/requests", self.list_requests),
            ("DELETE", "/requests", self.clear_requests),
            ("GET", "/webhooks", self.list_webhooks),
            ("DELETE", "/webhooks", self.clear_webhooks),
        ]
        for method, pattern, handler in routes:
            self.router.add(method, pattern, self._wrap(handler))

    def _wrap(self, handler: Callable[..., Response]) -> Callable[..., Response]:
        def wrapped(request: Request, **kw: str) -> Response:
            with self.state.lock:
                try:
                    return handler(request, **kw)
                except NotFound as exc:
                    raise ApiError(404, {"error": str(exc)}) from None
                except (Invalid, ValueError, TypeError, KeyError) as exc:
                    raise ApiError(400, {"error": str(exc)}) from None

        return wrapped

    # -- helpers -------------------------------------------------------------------------------

    def _project(self, ref: str) -> Project:
        return self.state.project(unquote(ref))

    def _mr(self, project: str, iid: str) -> tuple[Project, MergeRequest]:
        p = self._project(project)
        return p, self.state.merge_request(p, iid)

    def _mr_json(self, p: Project, mr: MergeRequest) -> dict[str, Any]:
        mine = [pl for pl in self.state.pipelines.values()
                if pl.project_id in (p.id, mr.source_project_id) and pl.sha == mr.sha]
        return ent.merge_request(self.state, p, mr, max(mine, key=lambda x: x.id, default=None))

    def _project_json(self, p: Project) -> dict[str, Any]:
        return {
            "id": p.id,
            "path_with_namespace": p.path_with_namespace,
            "web_url": p.web_url,
            "default_branch": p.default_branch,
            "head_sha": p.head_sha,
            "branches": dict(p.branches),
            "tags": dict(p.tags),
            "hooks": [ent.hook(h) for h in p.hooks.values()],
            "triggers": [t.token for t in p.triggers.values()],
            "members": {self.state.users[uid].username: level for uid, level in p.members.items()},
        }

    # -- global --------------------------------------------------------------------------------

    def info(self, request: Request) -> Response:
        return Response.json({
            "base_url": self.state.base_url,
            "gitlab_api": f"{self.state.base_url}/api/v4",
            "github_api": f"{self.state.base_url}/api/v3",
            "time_scale": self.app.scheduler.time_scale,
            "projects": len(self.state.projects),
            "pipelines": len(self.state.pipelines),
        })

    def reset(self, request: Request) -> Response:
        self.app.reset()
        return Response.json({"reset": True})

    # -- projects ------------------------------------------------------------------------------

    def put_user(self, request: Request, username: str) -> Response:
        """Create or change a user (both forges): ``name``, ``public_email``."""
        body = request.json_body()
        u = self.state.user(unquote(username))
        if body.get("name") is not None:
            u.name = str(body["name"])
        if body.get("public_email") is not None:
            u.public_email = str(body["public_email"])
        return Response.json({"id": u.id, "username": u.username, "name": u.name,
                              "public_email": u.public_email})

    def list_projects(self, request: Request) -> Response:
        return Response.json([self._project_json(p) for p in self.state.projects.values()])

    def create_project(self, request: Request) -> Response:
        body = request.json_body()
        files = {k: v for k, v in _files(body.get("files")).items() if v is not None}
        if body.get("ci_config", True) is not False:  # GitLab runs no pipeline without one
            files.setdefault(CI_CONFIG_PATH, DEFAULT_CI_CONFIG)
        p = self.state.create_project(
            str(body.get("path") or ""),
            default_branch=body.get("default_branch") or "main",
            files=files or None,
            description=body.get("description") or "",
        )
        for hook in body.get("hooks") or []:
            flags = {**ALL_EVENTS, **{k: v for k, v in hook.items() if k.endswith("_events")}}
            self.state.add_hook(p, hook["url"], hook.get("token") or "", **flags)
        for username, level in (body.get("members") or {}).items():
            self.state.set_member(p, username, int(level))
        return Response.json(self._project_json(p), 201)

    def get_project(self, request: Request, project: str) -> Response:
        return Response.json(self._project_json(self._project(project)))

    def commit(self, request: Request, project: str) -> Response:
        p = self._project(project)
        body = request.json_body()
        c = self.state.commit(
            p, body.get("branch") or p.default_branch, _files(body.get("files")),
            body.get("message") or "Update files", self.state.user(body.get("author")),
        )
        return Response.json({"sha": c.sha, "branch": body.get("branch") or p.default_branch},
                             201)

    def tag(self, request: Request, project: str) -> Response:
        p = self._project(project)
        body = request.json_body()
        sha = self.state.create_tag(p, str(body["name"]), body.get("ref") or p.default_branch,
                                    self.state.user(body.get("author")))
        return Response.json({"name": body["name"], "sha": sha}, 201)

    def members(self, request: Request, project: str) -> Response:
        p = self._project(project)
        body = request.json_body()
        for username, level in (body.get("members", body) or {}).items():
            self.state.set_member(p, username, int(level or 0))
        return Response.json(self._project_json(p)["members"])

    def add_hook(self, request: Request, project: str) -> Response:
        p = self._project(project)
        body = request.json_body()
        flags = {**ALL_EVENTS, **{k: v for k, v in body.items() if k.endswith("_events")}}
        h = self.state.add_hook(p, str(body.get("url") or ""), body.get("token") or "", **flags)
        return Response.json(ent.hook(h), 201)

    def enable_hook(self, request: Request, project: str, hook_id: str) -> Response:
        """Re-enable an auto-disabled hook (GitLab: a successful test request does this)."""
        hook = self.state.hook(self._project(project), hook_id)
        hook.recent_failures, hook.disabled_until, hook.permanently_disabled = 0, None, False
        return Response.json(ent.hook(hook))

    def add_trigger(self, request: Request, project: str) -> Response:
        p = self._project(project)
        body = request.json_body()
        t = self.state.add_trigger(p, body.get("description") or "sandbox trigger")
        return Response.json(ent.trigger(self.state, t), 201)

    # -- pipelines -----------------------------------------------------------------------------

    def get_script(self, request: Request, project: str) -> Response:
        p = self._project(project)
        return Response.json([s.as_json() for s in p.scripts.values()])

    def put_script(self, request: Request, project: str) -> Response:
        p = self._project(project)
        return Response.json(self.app.runner.set_script(p, request.json_body()).as_json())

    def pipelines(self, request: Request, project: str) -> Response:
        p = self._project(project)
        out = []
        for pl in sorted(self.app.runner.for_project(p), key=lambda x: x.id):
            data = ent.pipeline(self.state, p, pl)
            data["variables"] = [ent.variable(v) for v in pl.variables]
            data["merge_request_iid"] = pl.mr_iid
            out.append(data)
        return Response.json(out)

    def finish_pipeline(self, request: Request, project: str, pipeline_id: str) -> Response:
        p = self._project(project)
        pl = self.app.runner.get(p, pipeline_id)
        status = request.json_body().get("status") or "success"
        self.app.runner.force(p, pl, status)
        return Response.json(ent.pipeline(self.state, p, pl))

    # -- merge requests ------------------------------------------------------------------------

    def open_mr(self, request: Request, project: str) -> Response:
        p = self._project(project)
        body = request.json_body()
        author = self.state.user(body.get("author") or "alice")
        source = self._project(body["source_project"]) if body.get("source_project") else p
        branch = str(body["source_branch"])
        files = _files(body.get("files"))
        labels = label_names(body.get("labels"))  # checked before anything is committed
        if files or branch not in source.branches:
            self.state.commit(source, branch, files, body.get("message") or "Add changes", author)
        mr = self.state.open_merge_request(
            p, source_branch=branch, target_branch=body.get("target_branch"),
            title=body.get("title") or "", description=body.get("description") or "",
            author=author, source_project=source, labels=labels,
        )
        return Response.json(self._mr_json(p, mr), 201)

    def get_mr(self, request: Request, project: str, iid: str) -> Response:
        return Response.json(self._mr_json(*self._mr(project, iid)))

    def push_mr(self, request: Request, project: str, iid: str) -> Response:
        _, mr = self._mr(project, iid)
        body = request.json_body()
        oldrev = mr.sha
        author = self.state.user(body.get("author") or mr.author.username)
        c = self.state.push_to_merge_request(
            mr, _files(body.get("files")), body.get("message") or "Update", author
        )
        return Response.json({"sha": c.sha, "oldrev": oldrev}, 201)

    def _transition(self, request: Request, project: str, iid: str, action: str) -> Response:
        p, mr = self._mr(project, iid)
        body = request.json_body()
        actor = self.state.user(body.get("author") or body.get("actor") or mr.author.username)
        self.state.set_merge_request_state(mr, action, actor)
        return Response.json(self._mr_json(p, mr))

    def close_mr(self, request: Request, project: str, iid: str) -> Response:
        return self._transition(request, project, iid, "close")

    def reopen_mr(self, request: Request, project: str, iid: str) -> Response:
        return self._transition(request, project, iid, "reopen")

    def merge_mr(self, request: Request, project: str, iid: str) -> Response:
        return self._transition(request, project, iid, "merge")

    def edit_mr(self, request: Request, project: str, iid: str) -> Response:
        p, mr = self._mr(project, iid)
        body = request.json_body()
        actor = self.state.user(body.get("author") or mr.author.username)
        fields = {k: body[k] for k in ("title", "description", "target_branch") if k in body}
        self.state.edit_merge_request(mr, actor, labels=body.get("labels"),
                                      add_labels=body.get("add_labels"),
                                      remove_labels=body.get("remove_labels"), **fields)
        return Response.json(self._mr_json(p, mr))

    def comment(self, request: Request, project: str, iid: str) -> Response:
        _, mr = self._mr(project, iid)
        body = request.json_body()
        author = self.state.user(body.get("author") or "alice")
        note = self.state.add_note(mr, str(body.get("body") or ""), author)
        return Response.json(ent.note(self.state, note, mr), 201)

    # -- faults, requests, webhooks ------------------------------------------------------------

    def list_faults(self, request: Request) -> Response:
        return Response.json([f.as_json() for f in self.app.faults.all()])

    def add_fault(self, request: Request) -> Response:
        return Response.json(self.app.faults.add(request.json_body()).as_json(), 201)

    def clear_faults(self, request: Request) -> Response:
        self.app.faults.remove()
        return Response.empty()

    def delete_fault(self, request: Request, fault_id: str) -> Response:
        if not self.app.faults.remove(as_int(fault_id, -1)):
            raise ApiError(404, {"error": "no such fault"})
        return Response.empty()

    def list_requests(self, request: Request) -> Response:
        q = request.query
        items = self.app.requests.select(as_int(q.get("since"), 0),
                                         method=(q.get("method") or "").upper() or None)
        if q.get("path"):
            items = [r for r in items if q["path"] in r["path"]]
        return Response.json(items)

    def clear_requests(self, request: Request) -> Response:
        self.app.requests.clear()
        return Response.empty()

    def list_webhooks(self, request: Request) -> Response:
        q = request.query
        items = self.app.webhooks.select(as_int(q.get("since"), 0), event=q.get("event") or None)
        if q.get("url"):
            items = [r for r in items if q["url"] in r["url"]]
        return Response.json(items)

    def clear_webhooks(self, request: Request) -> Response:
        self.app.webhooks.clear()
        return Response.empty()
