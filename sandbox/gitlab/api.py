"""The GitLab REST v4 subset under ``/api/v4`` that Baton (through python-gitlab) uses."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import unquote

from sandbox.gitlab import entities as ent
from sandbox.gitlab.pipelines import PipelineRunner
from sandbox.model import FINISHED, Commit, MergeRequest, Pipeline, Project, now
from sandbox.oauth import OAuthServer, Token
from sandbox.state import Invalid, NotFound, SandboxState
from sandbox.web import ApiError, Request, Response, Router, as_int, paginate

PREFIX = "/api/v4"
NO_AUTH = {"trigger_pipeline"}


def _not_found(message: str) -> ApiError:
    return ApiError(404, {"message": message})


def _variables(raw: Any) -> list[dict[str, str]]:
    """``variables`` of create-pipeline: a list of {key, value, variable_type} (or a plain map)."""
    if raw in (None, "", []):
        return []
    if isinstance(raw, dict):
        raw = [{"key": k, "value": v} for k, v in raw.items()]
    if not isinstance(raw, list) or not all(isinstance(v, dict) and "key" in v for v in raw):
        raise ApiError(400, {"error": "variables is invalid"})
    return [
        {"key": str(v["key"]), "value": "" if v.get("value") is None else str(v["value"]),
         "variable_type": str(v.get("variable_type") or "env_var")}
        for v in raw
    ]


def _truthy(value: Any) -> bool:
    return str(value or "").strip().lower() in {"1", "true", "yes", "on"}


def _labels_match(labels: list[str], wanted: str) -> bool:
    """The ``labels`` filter of the MR list: ``None`` (no label), ``Any`` (some label), or
    comma-separated names that must all be present."""
    if wanted == "None":
        return not labels
    if wanted == "Any":
        return bool(labels)
    return all(name.strip() in labels for name in wanted.split(",") if name.strip())


def _parse_time(value: str) -> float:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise ApiError(400, {"error": f"{value} is not a valid ISO 8601 time"}) from None


class GitLabAPI:
    oauth: OAuthServer | None = None  # set by the Sandbox: tokens of "Sign in with GitLab"

    def __init__(self, state: SandboxState, runner: PipelineRunner) -> None:
        self.state = state
        self.runner = runner
        self.router = Router(PREFIX)
        self._routes()

    def _routes(self) -> None:
        add = self._add
        proj = "/projects/<project>"
        mr = proj + "/merge_requests/<iid>"
        pl = proj + "/pipelines/<pipeline_id>"
        add("GET", "/user", self.get_current_user)
        add("GET", "/groups", self.list_groups)
        add("GET", "/users", self.list_users)
        add("GET", "/users/<user_id>", self.get_user)
        add("GET", "/projects", self.list_projects)
        add("GET", proj, self.get_project)
        add("GET", proj + "/repository/files/<file_path>/raw", self.get_raw_file)
        add("GET", proj + "/repository/files/<file_path>", self.get_file)
        add("GET", proj + "/repository/branches", self.list_branches)
        add("GET", proj + "/repository/branches/<branch>", self.get_branch)
        add("GET", proj + "/repository/commits/<sha>", self.get_commit)
        add("GET", proj + "/repository/commits/<sha>/statuses", self.list_statuses)
        add("POST", proj + "/statuses/<sha>", self.create_status)
        add("GET", proj + "/merge_requests", self.list_mrs)
        add("GET", mr, self.get_mr)
        add("GET", mr + "/diffs", self.list_mr_diffs)
        add("GET", mr + "/changes", self.get_mr_changes)
        add("GET", mr + "/notes", self.list_notes)
        add("POST", mr + "/notes", self.create_note)
        add("GET", mr + "/notes/<note_id>", self.get_note)
        add("PUT", mr + "/notes/<note_id>", self.edit_note)
        add("GET", mr + "/pipelines", self.list_mr_pipelines)
        add("POST", mr + "/pipelines", self.create_mr_pipeline)
        add("POST", proj + "/pipeline", self.create_pipeline)
        add("POST", proj + "/trigger/pipeline", self.trigger_pipeline)
        add("POST", proj + "/ref/<ref>/trigger/pipeline", self.trigger_pipeline)
        add("GET", proj + "/triggers", self.list_triggers)
        add("POST", proj + "/triggers", self.create_trigger)
        add("GET", proj + "/pipelines", self.list_pipelines)
        add("GET", proj + "/pipelines/latest", self.latest_pipeline)
        add("GET", pl, self.get_pipeline)
        add("GET", pl + "/variables", self.pipeline_variables)
        add("POST", pl + "/retry", self.retry_pipeline)
        add("POST", pl + "/cancel", self.cancel_pipeline)
        add("GET", pl + "/jobs", self.pipeline_jobs)
        add("GET", pl + "/bridges", self.pipeline_bridges)
        add("GET", pl + "/trigger_jobs", self.pipeline_bridges)
        add("GET", proj + "/hooks", self.list_hooks)
        add("POST", proj + "/hooks", self.create_hook)
        add("GET", proj + "/hooks/<hook_id>", self.get_hook)
        add("PUT", proj + "/hooks/<hook_id>", self.edit_hook)
        add("DELETE", proj + "/hooks/<hook_id>", self.delete_hook)
        add("GET", proj + "/members/all/<user_id>", self.get_member)
        add("GET", proj + "/members/<user_id>", self.get_member)

    def _add(self, method: str, pattern: str, handler: Callable[..., Response]) -> None:
        needs_auth = handler.__name__ not in NO_AUTH

        def wrapped(request: Request, **kw: str) -> Response:
            if needs_auth and not (
                request.query.get("access_token")  # OAuth tokens may come as a parameter
                or request.header("private-token")
                or request.header("job-token")
                or request.header("authorization").startswith(("Bearer ", "Basic "))
            ):
                raise ApiError(401, {"message": "401 Unauthorized"})
            with self.state.lock:
                try:
                    return handler(request, **kw)
                except NotFound as exc:
                    raise _not_found(str(exc)) from None

        wrapped.__name__ = handler.__name__
        self.router.add(method, pattern, wrapped)

    def _project(self, ref: str) -> Project:
        return self.state.project(unquote(ref))

    def _mr(self, project: str, iid: str) -> tuple[Project, MergeRequest]:
        p = self._project(project)
        return p, self.state.merge_request(p, iid)

    # -- users ---------------------------------------------------------------------------------

    def _oauth_token(self, request: Request, *scopes: str) -> Token | None:
        """The OAuth token the request carries (None: a personal or job token); 401 for an
        unknown or expired OAuth token, 403 when it lacks every one of ``scopes``."""
        bearer = request.header("authorization")
        credential = str(request.query.get("access_token") or "") or (
            bearer[7:].strip() if bearer.startswith("Bearer ") else "")
        if self.oauth is None or not self.oauth.looks_like_oauth(credential, "gitlab"):
            return None
        token = self.oauth.token(credential, "gitlab")
        if token is None:
            raise ApiError(401, {"error": "invalid_token",
                                 "error_description": "Token is expired. You can either do "
                                 "re-authorization or token refresh."})
        if not any(s in token.scopes for s in scopes):
            raise ApiError(403, {"error": "insufficient_scope", "error_description": "The "
                                 "request requires higher privileges than provided by the "
                                 "access token.", "scope": " ".join(scopes)})
        return token

    def get_current_user(self, request: Request) -> Response:
        token = self._oauth_token(request, "read_user", "read_api", "api")
        found = token.user if token is not None else self.state.bot
        # The authenticated user's own record: e-mail and when it was confirmed.
        return Response.json({**ent.current_user(self.state, found),
                              "confirmed_at": "2024-01-01T00:00:00.000Z"})

    def list_groups(self, request: Request) -> Response:
        """Groups the caller is a member of, at ``min_access_level`` or above (every group it
        is a member of without it: the sandbox has no public groups to show besides)."""
        token = self._oauth_token(request, "read_api", "api")
        user = token.user if token is not None else self.state.bot
        minimum = as_int(request.query.get("min_access_level"), 0)
        groups = self.oauth.members.groups if self.oauth is not None else {}
        mine = [
            ent.group(self.state, path, index)
            for index, (path, members) in enumerate(sorted(groups.items()), start=1)
            if members.get(user.id, 0) >= max(minimum, 1)
        ]
        return paginate(request, mine)

    def list_users(self, request: Request) -> Response:
        users = sorted(self.state.users.values(), key=lambda u: u.id)
        if username := request.query.get("username"):
            users = [u for u in users if u.username == username]
        return paginate(request, [ent.user(self.state, u) for u in users])

    def get_user(self, request: Request, user_id: str) -> Response:
        if not user_id.isdigit():
            raise _not_found("404 User Not Found")
        found = self.state.get_user(int(user_id))
        # GitLab shows a user's public e-mail on the single-user endpoint: empty unless the user
        # chose one (PUT /_sandbox/users/<username>).
        return Response.json({**ent.user(self.state, found), "public_email": found.public_email})

    def get_member(self, request: Request, project: str, user_id: str) -> Response:
        p = self._project(project)
        level = p.members.get(int(user_id)) if user_id.isdigit() else None
        if level is None:
            raise _not_found("404 Not found")
        return Response.json(ent.member(self.state, self.state.get_user(int(user_id)), level))

    # -- projects and repository ---------------------------------------------------------------

    def list_projects(self, request: Request) -> Response:
        projects = sorted(self.state.projects.values(), key=lambda p: p.id, reverse=True)
        if search := request.query.get("search"):
            projects = [p for p in projects if search in p.path_with_namespace]
        return paginate(request, [ent.project(self.state, p) for p in projects])

    def get_project(self, request: Request, project: str) -> Response:
        return Response.json(ent.project(self.state, self._project(project)))

    def _file(
        self, request: Request, project: str, file_path: str, *, ref_required: bool
    ) -> tuple[Project, Commit, str, str]:
        p = self._project(project)
        ref = request.query.get("ref")
        if ref_required and not ref:
            raise ApiError(400, {"error": "ref is missing"})
        commit = self.state.get_commit(p, ref or "HEAD")
        path = unquote(file_path)
        if path not in commit.files:
            raise _not_found("404 File Not Found")
        return p, commit, path, ref or p.default_branch

    def get_raw_file(self, request: Request, project: str, file_path: str) -> Response:
        _, commit, path, _ = self._file(request, project, file_path, ref_required=False)
        return Response(200, commit.files[path].encode(), "text/plain; charset=utf-8")

    def get_file(self, request: Request, project: str, file_path: str) -> Response:
        p, commit, path, ref = self._file(request, project, file_path, ref_required=True)
        data = ent.file(p, commit, path, ref)
        headers = {"X-Gitlab-" + k.replace("_", "-").title(): str(data[k])
                   for k in ("blob_id", "commit_id", "file_name", "file_path", "ref", "size",
                             "encoding", "last_commit_id")}
        return Response.json(data, headers=headers)

    def list_branches(self, request: Request, project: str) -> Response:
        p = self._project(project)
        return paginate(request, [ent.branch(p, name, p.commits[sha])
                                  for name, sha in sorted(p.branches.items())])

    def get_branch(self, request: Request, project: str, branch: str) -> Response:
        p = self._project(project)
        name = unquote(branch)
        if name not in p.branches:
            raise _not_found("404 Branch Not Found")
        return Response.json(ent.branch(p, name, p.commits[p.branches[name]]))

    def get_commit(self, request: Request, project: str, sha: str) -> Response:
        p = self._project(project)
        return Response.json(ent.commit(p, self.state.get_commit(p, sha)))

    # -- commit statuses -----------------------------------------------------------------------

    def list_statuses(self, request: Request, project: str, sha: str) -> Response:
        p = self._project(project)
        full = self.state.resolve(p, sha)
        q = request.query
        statuses = [s for s in p.statuses if s.sha == full]
        for key in ("ref", "name"):
            if q.get(key):
                statuses = [s for s in statuses if getattr(s, key) == q[key]]
        if str(q.get("all", "")).lower() not in ("true", "1"):  # the latest per name and ref
            latest: dict[tuple[str, str | None], Any] = {}
            for s in statuses:
                if s.id > getattr(latest.get((s.name, s.ref)), "id", 0):
                    latest[(s.name, s.ref)] = s
            statuses = list(latest.values())
        statuses.sort(key=lambda s: s.id, reverse=q.get("sort") != "asc")
        return paginate(request, [ent.commit_status(self.state, s) for s in statuses])

    def create_status(self, request: Request, project: str, sha: str) -> Response:
        p = self._project(project)
        params = request.params
        name = params.get("name") or params.get("context") or "default"
        try:
            status = self.state.set_status(
                p, unquote(sha), str(params.get("state") or ""), str(name), self.state.bot,
                target_url=params.get("target_url"), description=params.get("description"),
                ref=params.get("ref"), coverage=params.get("coverage"),
                pipeline_id=params.get("pipeline_id"),
            )
        except Invalid as exc:
            # Parameter validation answers {"error"}; a refused transition {"message"}.
            key = "message" if str(exc).startswith("Cannot transition") else "error"
            raise ApiError(400, {key: str(exc)}) from None
        return Response.json(ent.commit_status(self.state, status), 201)

    # -- merge requests and notes --------------------------------------------------------------

    def _mr_json(self, p: Project, mr: MergeRequest) -> dict[str, Any]:
        mine = [pl for pl in self.state.pipelines.values()
                if pl.project_id in (p.id, mr.source_project_id) and pl.sha == mr.sha]
        return ent.merge_request(self.state, p, mr, max(mine, key=lambda x: x.id, default=None))

    def list_mrs(self, request: Request, project: str) -> Response:
        p = self._project(project)
        q = request.query
        mrs = sorted(p.merge_requests.values(), key=lambda m: m.id, reverse=q.get("sort") != "asc")
        if q.get("state") and q["state"] != "all":
            mrs = [m for m in mrs if m.state == q["state"]]
        for key in ("source_branch", "target_branch"):
            if q.get(key):
                mrs = [m for m in mrs if getattr(m, key) == q[key]]
        if q.get("author_username"):
            mrs = [m for m in mrs if m.author.username == q["author_username"]]
        if q.get("labels"):
            mrs = [m for m in mrs if _labels_match(m.labels, q["labels"])]
        return paginate(request, [self._mr_json(p, m) for m in mrs])

    def get_mr(self, request: Request, project: str, iid: str) -> Response:
        p, mr = self._mr(project, iid)
        return Response.json(self._mr_json(p, mr))

    def _mr_diffs(self, request: Request, p: Project, mr: MergeRequest) -> list[dict[str, Any]]:
        _, changes = self.state.changes(p, mr.target_branch, mr.sha, mr.base_sha)
        unidiff = _truthy(request.query.get("unidiff"))
        return [ent.mr_diff(c, unidiff=unidiff) for c in changes]

    def list_mr_diffs(self, request: Request, project: str, iid: str) -> Response:
        p, mr = self._mr(project, iid)
        return paginate(request, self._mr_diffs(request, p, mr))

    def get_mr_changes(self, request: Request, project: str, iid: str) -> Response:
        p, mr = self._mr(project, iid)
        return Response.json({**self._mr_json(p, mr), "changes": self._mr_diffs(request, p, mr),
                              "overflow": False})

    def list_notes(self, request: Request, project: str, iid: str) -> Response:
        _, mr = self._mr(project, iid)
        key = "updated_at" if request.query.get("order_by") == "updated_at" else "created_at"
        notes = sorted(mr.notes, key=lambda n: (getattr(n, key), n.id),
                       reverse=request.query.get("sort") != "asc")
        return paginate(request, [ent.note(self.state, n, mr) for n in notes])

    def get_note(self, request: Request, project: str, iid: str, note_id: str) -> Response:
        _, mr = self._mr(project, iid)
        return Response.json(ent.note(self.state, self.state.note(mr, note_id), mr))

    def create_note(self, request: Request, project: str, iid: str) -> Response:
        _, mr = self._mr(project, iid)
        body = request.params.get("body")
        if not body:
            raise ApiError(400, {"error": "body is missing"})
        note = self.state.add_note(mr, str(body), self.state.bot)
        return Response.json(ent.note(self.state, note, mr), 201)

    def edit_note(self, request: Request, project: str, iid: str, note_id: str) -> Response:
        _, mr = self._mr(project, iid)
        note = self.state.note(mr, note_id)
        body = request.params.get("body")
        if not body:
            raise ApiError(400, {"error": "body is missing"})
        self.state.edit_note(mr, note, str(body), self.state.bot)
        return Response.json(ent.note(self.state, note, mr))

    # -- pipelines -----------------------------------------------------------------------------

    def _pipeline_response(self, p: Project, pl: Pipeline, status: int = 200) -> Response:
        return Response.json(ent.pipeline(self.state, p, pl), status)

    def _create(self, p: Project, ref: str, status: int = 201, **kw: Any) -> Response:
        try:
            pl = self.runner.create(p, ref, **kw)
        except Invalid as exc:
            raise ApiError(400, {"message": {"base": [str(exc)]}}) from None
        return self._pipeline_response(p, pl, status)

    def create_pipeline(self, request: Request, project: str) -> Response:
        p = self._project(project)
        params = request.params
        ref = params.get("ref")
        if not ref:
            raise ApiError(400, {"error": "ref is missing"})
        return self._create(p, str(ref), source="api", user=self.state.bot,
                            variables=_variables(params.get("variables")))

    def create_mr_pipeline(self, request: Request, project: str, iid: str) -> Response:
        # GitLab runs it in the target project on refs/merge-requests/<iid>/head, fork MRs
        # included (a fork's commits are in the target's repository), without variables, and
        # answers 200 (lib/api/merge_requests.rb: `status :ok`).
        p, mr = self._mr(project, iid)
        return self._create(p, mr.head_ref, 200, source="merge_request_event",
                            user=self.state.bot, mr_iid=mr.iid)

    def list_mr_pipelines(self, request: Request, project: str, iid: str) -> Response:
        p, mr = self._mr(project, iid)
        mine = [pl for pl in self.runner.for_project(p) if pl.mr_iid == mr.iid]
        mine.sort(key=lambda pl: pl.id, reverse=True)
        return paginate(request, [ent.pipeline_basic(p, pl) for pl in mine])

    def trigger_pipeline(self, request: Request, project: str, ref: str | None = None
                         ) -> Response:
        if request.header("x-gitlab-event") == "Pipeline Hook":
            raise ApiError(403, {"message": "403 Forbidden"})
        p = self._project(project)
        params = request.params
        token = params.get("token")
        if not token or not isinstance(token, str):
            raise ApiError(404, {"message": "404 Not Found"})
        trigger = self.state.find_trigger(p, token)
        ref = unquote(ref) if ref else params.get("ref")
        if not ref:
            raise ApiError(400, {"error": "ref is missing"})
        raw = params.get("variables") or {}
        if not isinstance(raw, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in raw.items()
        ):
            raise ApiError(400, {"message": "variables needs to be a map of key-valued strings"})
        variables = [{"key": k, "value": v, "variable_type": "env_var"} for k, v in raw.items()]
        # GitLab adds the request's parameters, without the token, as a file variable
        # (app/services/ci/pipeline_trigger_service.rb, PAYLOAD_VARIABLE_KEY).
        # Shape as in gitlab.com/gitlab-org/gitlab/-/merge_requests/146242: other parameters,
        # then id, ref, variables.
        payload = {k: v for k, v in params.items() if k not in ("token", "ref", "variables", "id")}
        payload.update({"id": unquote(project), "ref": ref, "variables": raw})
        variables.append({"key": "TRIGGER_PAYLOAD", "value": json.dumps(payload),
                          "variable_type": "file"})
        trigger.last_used = now()
        return self._create(p, str(ref), source="trigger", user=trigger.owner,
                            variables=variables)

    def list_triggers(self, request: Request, project: str) -> Response:
        p = self._project(project)
        return paginate(request, [ent.trigger(self.state, t) for t in p.triggers.values()])

    def create_trigger(self, request: Request, project: str) -> Response:
        p = self._project(project)
        t = self.state.add_trigger(p, str(request.params.get("description") or ""))
        return Response.json(ent.trigger(self.state, t), 201)

    def list_pipelines(self, request: Request, project: str) -> Response:
        p = self._project(project)
        q = request.query
        pls = self.runner.for_project(p)
        scope = q.get("scope")
        if scope in ("running", "pending"):
            pls = [pl for pl in pls if pl.status == scope]
        elif scope == "finished":
            pls = [pl for pl in pls if pl.status in FINISHED]
        elif scope == "branches":
            pls = [pl for pl in pls if pl.ref in p.branches and not pl.tag]
        elif scope == "tags":
            pls = [pl for pl in pls if pl.tag]
        for key in ("status", "source", "ref", "sha"):
            if q.get(key):
                pls = [pl for pl in pls if getattr(pl, key) == q[key]]
        if q.get("username"):
            pls = [pl for pl in pls if pl.user.username == q["username"]]
        for key, attr, after in (("updated_after", "updated_at", True),
                                 ("updated_before", "updated_at", False),
                                 ("created_after", "created_at", True),
                                 ("created_before", "created_at", False)):
            if q.get(key):
                t = _parse_time(str(q[key]))
                pls = [pl for pl in pls if (getattr(pl, attr) > t) == after]
        order = q.get("order_by") or "id"
        if order not in ("id", "status", "ref", "updated_at", "user_id"):
            raise ApiError(400, {"error": "order_by does not have a valid value"})
        keyfn: Callable[[Pipeline], Any] = {
            "id": lambda pl: pl.id,
            "status": lambda pl: (pl.status, pl.id),
            "ref": lambda pl: (pl.ref, pl.id),
            "updated_at": lambda pl: (pl.updated_at, pl.id),
            "user_id": lambda pl: (pl.user.id, pl.id),
        }[order]
        pls.sort(key=keyfn, reverse=q.get("sort", "desc") != "asc")
        return paginate(request, [ent.pipeline_basic(p, pl) for pl in pls])

    def latest_pipeline(self, request: Request, project: str) -> Response:
        p = self._project(project)
        ref = request.query.get("ref") or p.default_branch
        mine = [pl for pl in self.runner.for_project(p) if pl.ref == ref]
        if not mine:
            raise _not_found("404 Not found")
        return self._pipeline_response(p, max(mine, key=lambda pl: pl.id))

    def _pipeline(self, project: str, pipeline_id: str) -> tuple[Project, Pipeline]:
        p = self._project(project)
        return p, self.runner.get(p, pipeline_id)

    def get_pipeline(self, request: Request, project: str, pipeline_id: str) -> Response:
        return self._pipeline_response(*self._pipeline(project, pipeline_id))

    def pipeline_variables(self, request: Request, project: str, pipeline_id: str) -> Response:
        _, pl = self._pipeline(project, pipeline_id)
        return paginate(request, [ent.variable(v) for v in pl.variables])

    def retry_pipeline(self, request: Request, project: str, pipeline_id: str) -> Response:
        p, pl = self._pipeline(project, pipeline_id)
        return self._pipeline_response(p, self.runner.retry(p, pl), 201)

    def cancel_pipeline(self, request: Request, project: str, pipeline_id: str) -> Response:
        p, pl = self._pipeline(project, pipeline_id)
        return self._pipeline_response(p, self.runner.cancel(p, pl), 200)

    def pipeline_jobs(self, request: Request, project: str, pipeline_id: str) -> Response:
        p, pl = self._pipeline(project, pipeline_id)
        scope = request.query.get("scope")
        scopes = [scope] if isinstance(scope, str) else list(scope or [])
        # Only the latest attempt of each job unless include_retried (newest first), as GitLab.
        every = [pl.job]
        if _truthy(request.query.get("include_retried")):
            every += reversed(pl.retried_jobs)
        jobs = [j for j in every if not scopes or j.status in scopes]
        return paginate(request, [ent.job(self.state, p, pl, j) for j in jobs])

    def pipeline_bridges(self, request: Request, project: str, pipeline_id: str) -> Response:
        self._pipeline(project, pipeline_id)
        return paginate(request, [])

    # -- hooks ---------------------------------------------------------------------------------

    def list_hooks(self, request: Request, project: str) -> Response:
        p = self._project(project)
        return paginate(request, [ent.hook(h) for h in p.hooks.values()])

    def create_hook(self, request: Request, project: str) -> Response:
        p = self._project(project)
        params = dict(request.params)
        url = params.pop("url", None)
        token = params.pop("token", "") or ""
        try:
            h = self.state.add_hook(p, str(url or ""), str(token), **params)
        except Invalid as exc:
            raise ApiError(400, {"error": str(exc)}) from None
        return Response.json(ent.hook(h), 201)

    def get_hook(self, request: Request, project: str, hook_id: str) -> Response:
        p = self._project(project)
        return Response.json(ent.hook(self.state.hook(p, hook_id)))

    def edit_hook(self, request: Request, project: str, hook_id: str) -> Response:
        p = self._project(project)
        h = self.state.hook(p, hook_id)
        self.state.update_hook(h, **request.params)
        return Response.json(ent.hook(h))

    def delete_hook(self, request: Request, project: str, hook_id: str) -> Response:
        p = self._project(project)
        h = self.state.hook(p, hook_id)
        del p.hooks[h.id]
        return Response.empty(204)
