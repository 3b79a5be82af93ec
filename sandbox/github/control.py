"""The GitHub part of the control API, under ``/_sandbox/github`` (JSON in and out, no auth).

Create repositories (workflows are files under ``.github/workflows/``), drive pull requests and
comments, script workflow runs, list deployments with their statuses, switch
``return_run_details`` support, register GitHub App installation tokens, script the primary rate
limit and redeliver webhooks. Documented in
``docs/sandbox.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sandbox.control import ControlAPI
from sandbox.github import apps as github_apps
from sandbox.github import entities as ent
from sandbox.github.model import GitHubRepo, PullRequest
from sandbox.state import NotFound, label_names
from sandbox.web import ApiError, Request, Response

if TYPE_CHECKING:
    from sandbox.app import Sandbox

PREFIX = "/github"


def _files(value: Any) -> dict[str, str | None]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ApiError(400, {"error": "files must be an object of path -> text"})
    return {str(k): (None if v is None else str(v)) for k, v in value.items()}


class GitHubControl:
    def __init__(self, app: Sandbox) -> None:
        self.app = app
        self.state = app.state
        self.github = app.github
        self.runner = app.github_runner

    def register(self, control: ControlAPI) -> None:
        repo = "/repos/<owner>/<name>"
        pull = repo + "/pulls/<number>"
        routes: list[tuple[str, str, Callable[..., Response]]] = [
            ("GET", "", self.info),
            ("PUT", "/settings", self.settings),
            ("GET", "/rate_limit", self.get_rate_limit),
            ("PUT", "/rate_limit", self.put_rate_limit),
            ("POST", "/app_tokens", self.add_app_token),
            ("GET", "/apps", self.list_apps),
            ("POST", "/apps", self.register_app),
            ("POST", "/apps/<app_id>/installations", self.install_app),
            ("POST", "/deliveries/<guid>/redeliver", self.redeliver),
            ("GET", "/repos", self.list_repos),
            ("POST", "/repos", self.create_repo),
            ("GET", repo, self.get_repo),
            ("POST", repo + "/commits", self.commit),
            ("POST", repo + "/tags", self.tag),
            ("PUT", repo + "/collaborators", self.collaborators),
            ("POST", repo + "/hooks", self.add_hook),
            ("GET", repo + "/script", self.get_script),
            ("PUT", repo + "/script", self.put_script),
            ("GET", repo + "/runs", self.runs),
            ("POST", repo + "/runs/<run_id>/finish", self.finish_run),
            ("GET", repo + "/deployments", self.deployments),
            ("POST", repo + "/pulls", self.open_pull),
            ("GET", pull, self.get_pull),
            ("POST", pull + "/push", self.push),
            ("POST", pull + "/close", self.close),
            ("POST", pull + "/reopen", self.reopen),
            ("POST", pull + "/merge", self.merge),
            ("POST", pull + "/edit", self.edit),
            ("POST", pull + "/comments", self.comment),
            ("POST", repo + "/comments/<comment_id>/edit", self.edit_comment),
        ]
        for method, pattern, handler in routes:
            control.router.add(method, PREFIX + pattern, control._wrap(handler))

    # -- helpers -------------------------------------------------------------------------------

    def _repo(self, owner: str, name: str) -> GitHubRepo:
        return self.github.repo(owner, name)

    def _pull(self, owner: str, name: str, number: str) -> tuple[GitHubRepo, PullRequest]:
        repo = self._repo(owner, name)
        return repo, self.github.pull(repo, number)

    def _repo_json(self, repo: GitHubRepo) -> dict[str, Any]:
        return {
            "id": repo.id, "full_name": repo.full_name, "url": ent.repo_url(self.github, repo),
            "html_url": ent.html_url(self.github, repo), "default_branch": repo.default_branch,
            "head_sha": repo.git.head_sha, "branches": dict(repo.git.branches),
            "tags": dict(repo.git.tags),
            "workflows": [ent.workflow(self.github, repo, wf)
                          for wf in self.github.workflows(repo)],
            "hooks": [ent.hook(self.github, repo, h) for h in repo.hooks.values()],
            "collaborators": dict(repo.collaborators),
        }

    def _pull_json(self, repo: GitHubRepo, pr: PullRequest) -> dict[str, Any]:
        return ent.pull_request(self.github, repo, pr)

    def _add_hook(self, repo: GitHubRepo, spec: dict[str, Any]) -> dict[str, Any]:
        h = self.github.add_hook(repo, str(spec.get("url") or ""),
                                 secret=str(spec.get("secret") or ""),
                                 content_type=str(spec.get("content_type") or "json"),
                                 events=spec.get("events") or ["*"],
                                 active=spec.get("active", True) is not False)
        return ent.hook(self.github, repo, h)

    # -- global --------------------------------------------------------------------------------

    def _settings_json(self) -> dict[str, Any]:
        return {"api": ent.api(self.github), "repos": len(self.github.repos),
                "runs": len(self.runner.runs),
                "return_run_details": self.github.return_run_details}

    def info(self, request: Request) -> Response:
        return Response.json(self._settings_json())

    def settings(self, request: Request) -> Response:
        body = request.json_body()
        if "return_run_details" in body:
            self.github.return_run_details = bool(body["return_run_details"])
        return Response.json(self._settings_json())

    def get_rate_limit(self, request: Request) -> Response:
        return Response.json(self.app.github_limits.as_json())

    def put_rate_limit(self, request: Request) -> Response:
        return Response.json(self.app.github_limits.configure(request.json_body()))

    def register_app(self, request: Request) -> Response:
        body = request.json_body()
        app, private_key = self.github.app_registry.register(
            slug=str(body.get("slug") or "baton"), app_id=body.get("id"),
            public_key=body.get("public_key"), name=body.get("name"), owner=body.get("owner"),
            permissions=body.get("permissions"), events=body.get("events"))
        data = github_apps.app_json(self.github, app)
        data.update(public_key=app.public_key, bot_login=app.bot.username)
        if private_key:
            data["private_key"] = private_key  # made here: shown once, never kept
        return Response.json(data, 201)

    def list_apps(self, request: Request) -> Response:
        return Response.json([
            {**github_apps.app_json(self.github, app),
             "installations": [github_apps.installation_json(self.github, i)
                               for i in self.github.installations.values()
                               if i.app_id == app.id]}
            for app in self.github.apps.values()])

    def install_app(self, request: Request, app_id: str) -> Response:
        body = request.json_body()
        repositories = body.get("repositories")
        if repositories is not None and not isinstance(repositories, list):
            raise ApiError(400, {"error": "repositories must be a list of owner/name"})
        inst = self.github.app_registry.install(
            int(app_id), str(body.get("account") or ""), repositories, body.get("id"))
        return Response.json(github_apps.installation_json(self.github, inst), 201)

    def add_app_token(self, request: Request) -> Response:
        body = request.json_body()
        app = self.github.add_app_token(body.get("token"), body.get("installation_id"),
                                        body.get("app_slug") or "baton")
        return Response.json({"token": app.token, "installation_id": app.installation_id,
                              "app_id": app.app_id, "app_slug": app.app_slug,
                              "bot_login": app.bot.username}, 201)

    def redeliver(self, request: Request, guid: str) -> Response:
        delivery = self.app.github_hooks.redeliver(guid)
        if delivery is None:
            raise NotFound("no such delivery")
        return Response.json({"delivery": guid, "event": delivery.event, "url": delivery.url},
                             202)

    # -- repositories --------------------------------------------------------------------------

    def list_repos(self, request: Request) -> Response:
        return Response.json([self._repo_json(r) for r in self.github.repos.values()])

    def create_repo(self, request: Request) -> Response:
        body = request.json_body()
        repo = self.github.create_repo(
            str(body.get("full_name") or body.get("path") or ""),
            default_branch=body.get("default_branch") or "main",
            files={k: v for k, v in _files(body.get("files")).items() if v is not None} or None,
            description=body.get("description") or "",
        )
        for login, role in (body.get("collaborators") or {}).items():
            self.github.set_collaborator(repo, login, role)
        for spec in body.get("hooks") or []:
            self._add_hook(repo, spec)
        return Response.json(self._repo_json(repo), 201)

    def get_repo(self, request: Request, owner: str, name: str) -> Response:
        return Response.json(self._repo_json(self._repo(owner, name)))

    def commit(self, request: Request, owner: str, name: str) -> Response:
        repo = self._repo(owner, name)
        body = request.json_body()
        branch = body.get("branch") or repo.default_branch
        c = self.github.commit(repo, branch, _files(body.get("files")),
                               body.get("message") or "Update files",
                               self.state.user(body.get("author")))
        return Response.json({"sha": c.sha, "branch": branch}, 201)

    def tag(self, request: Request, owner: str, name: str) -> Response:
        repo = self._repo(owner, name)
        body = request.json_body()
        sha = self.github.create_tag(repo, str(body["name"]), body.get("ref"),
                                     self.state.user(body.get("author")))
        return Response.json({"name": body["name"], "sha": sha}, 201)

    def collaborators(self, request: Request, owner: str, name: str) -> Response:
        repo = self._repo(owner, name)
        body = request.json_body()
        for login, role in (body.get("collaborators", body) or {}).items():
            self.github.set_collaborator(repo, login, role)
        return Response.json(dict(repo.collaborators))

    def add_hook(self, request: Request, owner: str, name: str) -> Response:
        return Response.json(self._add_hook(self._repo(owner, name), request.json_body()), 201)

    # -- runs ----------------------------------------------------------------------------------

    def get_script(self, request: Request, owner: str, name: str) -> Response:
        return Response.json([s.as_json() for s in self._repo(owner, name).scripts.values()])

    def put_script(self, request: Request, owner: str, name: str) -> Response:
        repo = self._repo(owner, name)
        return Response.json(self.runner.set_script(repo, request.json_body()).as_json())

    def _run_json(self, repo: GitHubRepo, run: Any) -> dict[str, Any]:
        data = ent.workflow_run(self.github, repo, run)
        d = repo.deployments.get(run.deployment_id or 0)
        data.update(inputs=run.inputs, client_payload=run.client_payload,
                    deployment_id=run.deployment_id,
                    deployment_payload=d.payload if d is not None else None)
        return data

    def runs(self, request: Request, owner: str, name: str) -> Response:
        repo = self._repo(owner, name)
        runs = sorted(self.runner.for_repo(repo), key=lambda r: r.id)
        return Response.json([self._run_json(repo, r) for r in runs])

    def finish_run(self, request: Request, owner: str, name: str, run_id: str) -> Response:
        repo = self._repo(owner, name)
        run = self.runner.get(repo, run_id)
        if run is None:
            raise NotFound("no such run")
        body = request.json_body()
        self.runner.force(repo, run, str(body.get("conclusion") or body.get("status")
                                         or "success"))
        return Response.json(self._run_json(repo, run))

    def deployments(self, request: Request, owner: str, name: str) -> Response:
        repo = self._repo(owner, name)
        out = []
        for d in sorted(repo.deployments.values(), key=lambda x: x.id):
            data = ent.deployment(self.github, repo, d)
            data["statuses"] = [{**ent.deployment_status(self.github, repo, d, s),
                                 "run_id": s.run_id} for s in d.statuses]
            data["run_ids"] = sorted(r.id for r in self.runner.for_repo(repo)
                                     if r.deployment_id == d.id)
            out.append(data)
        return Response.json(out)

    # -- pull requests -------------------------------------------------------------------------

    def open_pull(self, request: Request, owner: str, name: str) -> Response:
        repo = self._repo(owner, name)
        body = request.json_body()
        author = self.state.user(body.get("author") or "alice")
        head = str(body["head"])
        files = _files(body.get("files"))
        labels = label_names(body.get("labels"))  # checked before anything is committed
        if files or head not in repo.git.branches:
            self.github.commit(repo, head, files, body.get("message") or "Add changes", author)
        pr = self.github.open_pull(repo, head=head, base=body.get("base"),
                                   title=body.get("title") or "", body=body.get("body") or "",
                                   author=author, draft=bool(body.get("draft")),
                                   labels=labels)
        return Response.json(self._pull_json(repo, pr), 201)

    def get_pull(self, request: Request, owner: str, name: str, number: str) -> Response:
        return Response.json(self._pull_json(*self._pull(owner, name, number)))

    def push(self, request: Request, owner: str, name: str, number: str) -> Response:
        repo, pr = self._pull(owner, name, number)
        body = request.json_body()
        before = pr.head_sha
        author = self.state.user(body.get("author") or pr.author.username)
        c = self.github.push_to_pull(repo, pr, _files(body.get("files")),
                                     body.get("message") or "Update", author)
        return Response.json({"sha": c.sha, "before": before}, 201)

    def _transition(self, request: Request, owner: str, name: str, number: str, action: str
                    ) -> Response:
        repo, pr = self._pull(owner, name, number)
        body = request.json_body()
        actor = self.state.user(body.get("author") or pr.author.username)
        self.github.set_pull_state(repo, pr, action, actor)
        return Response.json(self._pull_json(repo, pr))

    def close(self, request: Request, owner: str, name: str, number: str) -> Response:
        return self._transition(request, owner, name, number, "close")

    def reopen(self, request: Request, owner: str, name: str, number: str) -> Response:
        return self._transition(request, owner, name, number, "reopen")

    def merge(self, request: Request, owner: str, name: str, number: str) -> Response:
        return self._transition(request, owner, name, number, "merge")

    def edit(self, request: Request, owner: str, name: str, number: str) -> Response:
        repo, pr = self._pull(owner, name, number)
        body = request.json_body()
        actor = self.state.user(body.get("author") or pr.author.username)
        self.github.edit_pull(repo, pr, actor, **{k: body.get(k) for k in (
            "title", "body", "base", "labels", "add_labels", "remove_labels")})
        return Response.json(self._pull_json(repo, pr))

    def comment(self, request: Request, owner: str, name: str, number: str) -> Response:
        repo, pr = self._pull(owner, name, number)
        body = request.json_body()
        c = self.github.add_comment(repo, pr, str(body.get("body") or ""),
                                    self.state.user(body.get("author") or "alice"))
        return Response.json(ent.issue_comment(self.github, repo, c), 201)

    def edit_comment(self, request: Request, owner: str, name: str, comment_id: str
                     ) -> Response:
        repo = self._repo(owner, name)
        pr, c = self.github.comment(repo, comment_id)
        body = request.json_body()
        self.github.edit_comment(repo, pr, c, str(body.get("body") or ""),
                                 self.state.user(body.get("author") or c.author.username))
        return Response.json(ent.issue_comment(self.github, repo, c))
