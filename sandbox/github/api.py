"""The GitHub REST v3 subset under ``/api/v3`` (GitHub Enterprise style) that Baton, through
PyGithub, uses: repositories, contents, pull requests (and their files), issue comments, commit
statuses, check runs, collaborator permission, hooks, ``/user`` and ``/rate_limit``. GitHub
Actions (workflows, dispatch, runs) are in ``github_actions_api``, deployments in
``github_deployments_api``.

Every answer carries ``x-ratelimit-*`` headers; GETs carry an ``ETag`` and answer a matching
``If-None-Match`` with ``304`` (not counted against the limit).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from sandbox.faults import Fault
from sandbox.github import entities as ent
from sandbox.github.actions_api import ActionsRoutes
from sandbox.github.apps import AppRoutes
from sandbox.github.deployments_api import DeploymentRoutes
from sandbox.github.http import (
    error,
    etag_of,
    matches_etag,
    not_found,
    paginate,
    token_of,
    validation_failed,
)
from sandbox.github.model import GitHubRepo, gh_time
from sandbox.github.ratelimit import RateLimits, fault_response, primary_exceeded
from sandbox.github.runs import WorkflowRunner
from sandbox.github.state import GitHubState
from sandbox.model import User, now
from sandbox.oauth import OAuthServer, Token
from sandbox.state import Invalid, NotFound
from sandbox.web import JSON_TYPE, ApiError, Request, Response, Router

PREFIX = ent.API_PREFIX
FREE_PATHS = (PREFIX + "/rate_limit",)  # neither authenticated nor counted
GITHUB_JSON_TYPE = "application/json; charset=utf-8"
CHECK_STATUSES = ("queued", "in_progress", "completed", "waiting", "requested", "pending")


class GitHubAPI:
    oauth: OAuthServer | None = None  # set by the Sandbox: tokens of "Sign in with GitHub"

    def __init__(self, github: GitHubState, runner: WorkflowRunner, limits: RateLimits) -> None:
        self.github = github
        self.state = github.state
        self.runner = runner
        self.limits = limits
        self.router = Router(PREFIX)
        self._routes()
        ActionsRoutes(self)
        DeploymentRoutes(self)
        AppRoutes(self)

    # -- plumbing ------------------------------------------------------------------------------

    def add(self, method: str, pattern: str, handler: Callable[..., Response]) -> None:
        def wrapped(request: Request, **kw: str) -> Response:
            with self.state.lock:
                try:
                    return handler(request, **{k: unquote(v) for k, v in kw.items()})
                except NotFound:
                    raise not_found() from None
                except Invalid as exc:
                    raise validation_failed(str(exc)) from None

        self.router.add(method, pattern, wrapped)

    def dispatch(self, request: Request) -> Response:
        """Authenticate, check the primary rate limit, route, add ETag / 304 and rate headers."""
        token = token_of(request)
        free = request.path.rstrip("/") in FREE_PATHS
        if not token and not free:
            return self._finish(error(401, "Requires authentication").response(), token, False)
        if not free and self.limits.peek(token).remaining <= 0:
            bucket = self.limits.peek(token)
            response = primary_exceeded(bucket, self.limits.status, self.actor(request).id)
            response.log = {"forge": "github", "rate_limited": True,
                            "rate_limit_counted": False, "not_modified": False}
            return response
        try:
            if request.path.endswith("/") and request.path != self.router.prefix + "/":
                raise not_found()  # GitHub routes no trailing slash
            if not free:
                with self.state.lock:  # expired/unknown ghs_ tokens, JWTs, installation scope
                    self.github.app_registry.check(request, request.path)
            response = self.router.dispatch(request)
        except ApiError as exc:
            if isinstance(exc.body, dict) and "error" in exc.body:  # the router's own 404/405
                exc = not_found()  # GitHub answers an unknown method on a known path with 404
            response = exc.response()
        not_modified = False
        if request.method in ("GET", "HEAD") and response.status == 200:
            etag = etag_of(response.body)
            response.headers.setdefault("ETag", etag)
            if matches_etag(request, etag):
                response = Response(304, b"", response.content_type, {"ETag": etag})
                not_modified = True
        counted = not free and not not_modified
        if counted:
            self.limits.take(token)
        return self._finish(response, token, counted, not_modified)

    def _finish(self, response: Response, token: str, counted: bool,
                not_modified: bool = False) -> Response:
        if response.content_type == JSON_TYPE:
            response.content_type = GITHUB_JSON_TYPE
        response.headers.update(self.limits.peek(token).headers())
        response.headers.setdefault("X-GitHub-Media-Type", "github.v3; format=json")
        response.headers.setdefault("x-github-api-version-selected", "2022-11-28")
        response.headers.setdefault("X-GitHub-Request-Id", f"{time.time_ns() & 0xFFFFFFFF:08X}")
        response.log = {"forge": "github", "rate_limit_counted": counted,
                        "not_modified": not_modified, **response.log}
        return response

    def fault_response(self, fault: Fault, request: Request) -> Response:
        response = fault_response(fault, self.limits.peek(token_of(request)))
        response.log = {"forge": "github", "rate_limit_counted": False, "not_modified": False}
        return response

    def actor(self, request: Request) -> User:
        app = self.github.app_tokens.get(token_of(request))
        if app:
            return app.bot
        token = self.oauth_token(request)
        return token.user if token is not None else self.state.bot

    def oauth_token(self, request: Request, *scopes: str) -> Token | None:
        """The OAuth token the request carries (None: another kind of token); 401 for an
        unknown one; 403 (or 404, ``hide``) when it has none of ``scopes``."""
        credential = token_of(request)
        if self.oauth is None or not self.oauth.looks_like_oauth(credential, "github"):
            return None
        token = self.oauth.token(credential, "github")
        if token is None:
            raise error(401, "Bad credentials")
        if scopes and not any(s in token.scopes for s in scopes):
            raise error(403, "Resource not accessible by integration",
                        ) if "read:org" in scopes else not_found()
        return token

    def list_my_emails(self, request: Request) -> Response:
        """``GET /user/emails``: needs the ``user:email`` (or ``user``) scope, else 404."""
        token = self.oauth_token(request, "user:email", "user")
        u = token.user if token is not None else self.state.bot
        return paginate(request, [{"email": u.email, "primary": True, "verified": True,
                                   "visibility": "private"}])

    def list_my_teams(self, request: Request) -> Response:
        """``GET /user/teams``: the teams the user belongs to, with their organization; needs
        ``read:org`` (or ``user``, ``repo``)."""
        token = self.oauth_token(request, "read:org", "user", "repo")
        u = token.user if token is not None else self.state.bot
        teams = self.oauth.members.teams if self.oauth is not None else {}
        mine = []
        for org_index, (org, by_slug) in enumerate(sorted(teams.items()), start=1):
            for team_index, (slug, ids) in enumerate(sorted(by_slug.items()), start=1):
                if u.id in ids:
                    mine.append(ent.team(self.github, org, org_index, slug,
                                         org_index * 1000 + team_index))
        return paginate(request, mine)

    def repo(self, owner: str, name: str) -> GitHubRepo:
        return self.github.repo(owner, name)

    # -- routes --------------------------------------------------------------------------------

    def _routes(self) -> None:
        add, r = self.add, "/repos/<owner>/<name>"
        add("GET", "/user", self.get_user)
        add("GET", "/user/emails", self.list_my_emails)
        add("GET", "/user/teams", self.list_my_teams)
        add("GET", "/users/<login>", self.get_named_user)
        add("GET", "/rate_limit", self.rate_limit)
        add("GET", r, self.get_repo)
        add("GET", r + "/contents/<path:path>", self.get_contents)
        add("GET", r + "/commits/<ref>", self.get_commit)
        add("GET", r + "/commits/<ref>/status", self.combined_status)
        add("GET", r + "/commits/<ref>/statuses", self.list_statuses)
        add("GET", r + "/statuses/<ref>", self.list_statuses)
        add("POST", r + "/statuses/<sha>", self.create_status)
        add("GET", r + "/commits/<ref>/check-runs", self.list_check_runs)
        add("POST", r + "/check-runs", self.create_check_run)
        add("GET", r + "/check-runs/<check_run_id>", self.get_check_run)
        add("PATCH", r + "/check-runs/<check_run_id>", self.update_check_run)
        add("GET", r + "/pulls", self.list_pulls)
        add("GET", r + "/pulls/<number>", self.get_pull)
        add("GET", r + "/pulls/<number>/files", self.list_pull_files)
        add("GET", r + "/issues/comments/<comment_id>", self.get_comment)
        add("PATCH", r + "/issues/comments/<comment_id>", self.edit_comment)
        add("GET", r + "/issues/<number>", self.get_issue)
        add("GET", r + "/issues/<number>/comments", self.list_comments)
        add("POST", r + "/issues/<number>/comments", self.create_comment)
        add("GET", r + "/collaborators/<login>/permission", self.collaborator_permission)
        add("GET", r + "/hooks", self.list_hooks)
        add("POST", r + "/hooks", self.create_hook)
        add("GET", r + "/hooks/<hook_id>", self.get_hook)
        add("PATCH", r + "/hooks/<hook_id>", self.edit_hook)
        add("DELETE", r + "/hooks/<hook_id>", self.delete_hook)
        add("POST", r + "/hooks/<hook_id>/pings", self.ping_hook)

    # -- users and limits ----------------------------------------------------------------------

    def get_user(self, request: Request) -> Response:
        if token_of(request) in self.github.app_tokens:
            raise error(403, "Resource not accessible by integration")
        return Response.json(ent.private_user(self.github, self.actor(request)))

    def get_named_user(self, request: Request, login: str) -> Response:
        for u in self.state.users.values():
            if u.username.lower() == login.lower():
                return Response.json(ent.public_user(self.github, u))
        raise not_found()

    def rate_limit(self, request: Request) -> Response:
        core = self.limits.peek(token_of(request)).as_json()
        reset = core["reset"]
        other = {"limit": 30, "remaining": 30, "used": 0, "reset": reset}
        resources = {"core": core, "search": other, "graphql": {**core},
                     "integration_manifest": {**other, "limit": 5000, "remaining": 5000},
                     "code_search": {**other, "limit": 10, "remaining": 10}}
        return Response.json({"resources": resources, "rate": core})

    # -- repository and contents ---------------------------------------------------------------

    def get_repo(self, request: Request, owner: str, name: str) -> Response:
        return Response.json(ent.repository(self.github, self.repo(owner, name)))

    def get_contents(self, request: Request, owner: str, name: str, path: str) -> Response:
        repo = self.repo(owner, name)
        ref = request.query.get("ref") or repo.default_branch
        files = self.github.commit_at(repo, ref).files
        path = path.strip("/")
        if path in files:
            return Response.json(ent.content_file(self.github, repo, path, files[path], ref))
        prefix = f"{path}/" if path else ""
        children: dict[str, str] = {}
        for f in sorted(files):
            if f.startswith(prefix):
                head, _, rest = f[len(prefix):].partition("/")
                children.setdefault(prefix + head, "dir" if rest else "file")
        if not children:
            raise not_found()
        return Response.json([
            ent.content_entry(self.github, repo, p, ref, kind,
                              ent.blob_sha(files[p]) if kind == "file" else ent.node_id("t", p),
                              len(files[p].encode()) if kind == "file" else 0)
            for p, kind in children.items()])

    def get_commit(self, request: Request, owner: str, name: str, ref: str) -> Response:
        repo = self.repo(owner, name)
        try:
            commit = self.github.commit_at(repo, ref)
        except NotFound:
            raise error(422, f"No commit found for SHA: {ref}") from None
        return Response.json(ent.commit(self.github, repo, commit))

    # -- commit statuses -----------------------------------------------------------------------

    def create_status(self, request: Request, owner: str, name: str, sha: str) -> Response:
        repo = self.repo(owner, name)
        body = request.json_body()
        try:
            s = self.github.add_status(
                repo, sha, str(body.get("state") or ""), self.actor(request),
                context=body.get("context"), description=body.get("description"),
                target_url=body.get("target_url"))
        except NotFound:
            raise error(422, f"No commit found for SHA: {sha}") from None
        return Response.json(ent.status(self.github, repo, s), 201)

    def list_statuses(self, request: Request, owner: str, name: str, ref: str) -> Response:
        repo = self.repo(owner, name)
        statuses = self.github.statuses_for(repo, ref)
        return paginate(request, [ent.status(self.github, repo, s) for s in statuses])

    def combined_status(self, request: Request, owner: str, name: str, ref: str) -> Response:
        repo = self.repo(owner, name)
        sha = self.github.resolve(repo, ref)
        statuses = self.github.statuses_for(repo, sha)
        return Response.json(ent.combined_status(self.github, repo, sha, statuses))

    # -- check runs (GitHub App installation tokens only) --------------------------------------

    def _app_json(self, request: Request) -> dict[str, Any]:
        app = self.github.app_tokens.get(token_of(request))
        if app is None:
            raise error(403, "You must authenticate via a GitHub App.")
        return ent.app(self.github, app.app_id, app.app_slug, self.state.bot)

    def _apply_check_fields(self, cr: Any, body: dict[str, Any]) -> None:
        for key in ("name", "details_url", "external_id"):
            if body.get(key) is not None:
                setattr(cr, key, str(body[key]))
        if body.get("output") is not None:
            if not isinstance(body["output"], dict):
                raise validation_failed("output must be an object", "CheckRun", "output")
            cr.output.update(body["output"])
        status = body.get("status")
        if status is not None and status not in CHECK_STATUSES:
            raise validation_failed(f"status {status} is not valid", "CheckRun", "status")
        if body.get("conclusion") is not None:
            cr.conclusion, status = str(body["conclusion"]), "completed"
        if status == "completed" and cr.conclusion is None:
            raise validation_failed("conclusion is required when status is completed",
                                    "CheckRun", "conclusion")
        if status is not None:
            cr.status = status
        if cr.status == "in_progress" and cr.started_at is None:
            cr.started_at = now()
        if cr.status == "completed":
            cr.started_at = cr.started_at or now()
            cr.completed_at = cr.completed_at or now()

    def create_check_run(self, request: Request, owner: str, name: str) -> Response:
        app_json = self._app_json(request)
        repo = self.repo(owner, name)
        body = request.json_body()
        if not body.get("name") or not body.get("head_sha"):
            raise validation_failed("name and head_sha are required", "CheckRun")
        try:
            cr = self.github.new_check_run(repo, str(body["name"]), str(body["head_sha"]))
        except NotFound:
            raise validation_failed("No commit found for SHA", "CheckRun", "head_sha") from None
        self._apply_check_fields(cr, body)
        return Response.json(ent.check_run(self.github, repo, cr, app_json), 201)

    def update_check_run(self, request: Request, owner: str, name: str, check_run_id: str
                         ) -> Response:
        app_json = self._app_json(request)
        repo = self.repo(owner, name)
        cr = self.github.check_run(repo, check_run_id)
        self._apply_check_fields(cr, request.json_body())
        return Response.json(ent.check_run(self.github, repo, cr, app_json))

    def get_check_run(self, request: Request, owner: str, name: str, check_run_id: str
                      ) -> Response:
        repo = self.repo(owner, name)
        cr = self.github.check_run(repo, check_run_id)
        return Response.json(ent.check_run(self.github, repo, cr, self._any_app()))

    def list_check_runs(self, request: Request, owner: str, name: str, ref: str) -> Response:
        repo = self.repo(owner, name)
        sha = self.github.resolve(repo, ref)
        runs = sorted((c for c in repo.check_runs.values() if c.head_sha == sha),
                      key=lambda c: c.id, reverse=True)
        q = request.query
        if q.get("check_name"):
            runs = [c for c in runs if c.name == q["check_name"]]
        if q.get("status"):
            runs = [c for c in runs if c.status == q["status"]]
        app_json = self._any_app()
        return paginate(request, [ent.check_run(self.github, repo, c, app_json) for c in runs],
                        wrap="check_runs")

    def _any_app(self) -> dict[str, Any]:
        app = next(iter(self.github.app_tokens.values()), None)
        if app is None:
            return ent.app(self.github, 0, "sandbox", self.state.bot)
        return ent.app(self.github, app.app_id, app.app_slug, self.state.bot)

    # -- pull requests and issue comments ------------------------------------------------------

    def list_pulls(self, request: Request, owner: str, name: str) -> Response:
        repo = self.repo(owner, name)
        q = request.query
        state = q.get("state") or "open"
        pulls = [p for p in repo.pulls.values() if state == "all" or p.state == state]
        if q.get("head"):
            branch = q["head"].split(":", 1)[-1]
            pulls = [p for p in pulls if p.head_branch == branch]
        if q.get("base"):
            pulls = [p for p in pulls if p.base_branch == q["base"]]
        pulls.sort(key=lambda p: p.updated_at if q.get("sort") == "updated" else p.created_at,
                   reverse=q.get("direction", "desc") != "asc")
        return paginate(request, [ent.pull_request(self.github, repo, p) for p in pulls])

    def get_pull(self, request: Request, owner: str, name: str, number: str) -> Response:
        repo = self.repo(owner, name)
        return Response.json(ent.pull_request(self.github, repo, self.github.pull(repo, number)))

    def list_pull_files(self, request: Request, owner: str, name: str, number: str) -> Response:
        repo = self.repo(owner, name)
        pr = self.github.pull(repo, number)
        _, changes = self.github.changes(repo, pr)
        return paginate(request, [ent.diff_entry(self.github, repo, pr.head_sha, c)
                                  for c in changes])

    def get_issue(self, request: Request, owner: str, name: str, number: str) -> Response:
        repo = self.repo(owner, name)
        return Response.json(ent.issue(self.github, repo, self.github.pull(repo, number)))

    def list_comments(self, request: Request, owner: str, name: str, number: str) -> Response:
        repo = self.repo(owner, name)
        comments = list(self.github.pull(repo, number).comments)
        if since := request.query.get("since"):
            comments = [c for c in comments if (gh_time(c.updated_at) or "") >= since]
        return paginate(request, [ent.issue_comment(self.github, repo, c) for c in comments])

    def create_comment(self, request: Request, owner: str, name: str, number: str) -> Response:
        repo = self.repo(owner, name)
        pr = self.github.pull(repo, number)
        body = request.json_body().get("body")
        try:
            c = self.github.add_comment(repo, pr, "" if body is None else str(body),
                                        self.actor(request))
        except Invalid as exc:
            raise validation_failed(str(exc), "IssueComment") from None
        data = ent.issue_comment(self.github, repo, c)
        return Response.json(data, 201, {"Location": data["url"]})

    def get_comment(self, request: Request, owner: str, name: str, comment_id: str) -> Response:
        repo = self.repo(owner, name)
        _, c = self.github.comment(repo, comment_id)
        return Response.json(ent.issue_comment(self.github, repo, c))

    def edit_comment(self, request: Request, owner: str, name: str, comment_id: str) -> Response:
        repo = self.repo(owner, name)
        pr, c = self.github.comment(repo, comment_id)
        body = request.json_body().get("body")
        try:
            self.github.edit_comment(repo, pr, c, "" if body is None else str(body),
                                     self.actor(request))
        except Invalid as exc:
            raise validation_failed(str(exc), "IssueComment") from None
        return Response.json(ent.issue_comment(self.github, repo, c))

    # -- people --------------------------------------------------------------------------------

    def collaborator_permission(self, request: Request, owner: str, name: str, login: str
                                ) -> Response:
        repo = self.repo(owner, name)
        for u in self.state.users.values():
            if u.username.lower() == login.lower():
                return Response.json(ent.collaborator_permission(self.github, repo, u))
        raise not_found()

    # -- hooks ---------------------------------------------------------------------------------

    def list_hooks(self, request: Request, owner: str, name: str) -> Response:
        repo = self.repo(owner, name)
        return paginate(request, [ent.hook(self.github, repo, h) for h in repo.hooks.values()])

    def create_hook(self, request: Request, owner: str, name: str) -> Response:
        repo = self.repo(owner, name)
        body = request.json_body()
        config = body.get("config") or {}
        if not isinstance(config, dict) or not config.get("url"):
            raise validation_failed("Config must contain url", "Hook", "config")
        try:
            h = self.github.add_hook(
                repo, str(config["url"]), secret=str(config.get("secret") or ""),
                content_type=str(config.get("content_type") or "form"),
                events=body.get("events"), active=body.get("active", True) is not False)
        except Invalid as exc:
            raise validation_failed(str(exc), "Hook", "config") from None
        return Response.json(ent.hook(self.github, repo, h), 201)

    def get_hook(self, request: Request, owner: str, name: str, hook_id: str) -> Response:
        repo = self.repo(owner, name)
        return Response.json(ent.hook(self.github, repo, self.github.hook(repo, hook_id)))

    def edit_hook(self, request: Request, owner: str, name: str, hook_id: str) -> Response:
        repo = self.repo(owner, name)
        h = self.github.hook(repo, hook_id)
        body = request.json_body()
        try:
            self.github.edit_hook(h, body.get("config"), body.get("events"),
                                  body.get("add_events"), body.get("remove_events"),
                                  body.get("active"))
        except Invalid as exc:
            raise validation_failed(str(exc), "Hook", "config") from None
        return Response.json(ent.hook(self.github, repo, h))

    def delete_hook(self, request: Request, owner: str, name: str, hook_id: str) -> Response:
        repo = self.repo(owner, name)
        del repo.hooks[self.github.hook(repo, hook_id).id]
        return Response.empty(204)

    def ping_hook(self, request: Request, owner: str, name: str, hook_id: str) -> Response:
        repo = self.repo(owner, name)
        h = self.github.hook(repo, hook_id)
        self.github.emit("ping", repo, self.actor(request), hook=h)
        return Response.empty(204)
