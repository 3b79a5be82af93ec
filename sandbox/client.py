"""A small client for the sandbox control API (``/_sandbox``), for tests, the demo seeder and
benchmarks. One method per endpoint; every method returns the decoded JSON answer."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import requests


class SandboxError(RuntimeError):
    pass


def _p(project: str | int) -> str:
    return quote(str(project), safe="")


def _r(full_name: str) -> str:
    """``owner/name`` → ``/github/repos/owner/name``."""
    owner, _, name = full_name.partition("/")
    return f"/github/repos/{quote(owner, safe='')}/{quote(name, safe='')}"


class SandboxClient:
    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        self.session.trust_env = False

    def _call(self, verb: str, path: str, body: Any = None,
              params: dict[str, Any] | None = None) -> Any:
        response = self.session.request(
            verb, f"{self.base_url}/_sandbox{path}", json=body,
            params={k: v for k, v in (params or {}).items() if v is not None},
            timeout=self.timeout,
        )
        if response.status_code >= 400:
            raise SandboxError(f"{verb} {path}: {response.status_code} {response.text}")
        return response.json() if response.content else None

    # -- global --------------------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        return self._call("GET", "")

    def reset(self) -> None:
        self._call("POST", "/reset")

    # -- projects ------------------------------------------------------------------------------

    def create_project(
        self,
        path: str,
        *,
        default_branch: str = "main",
        files: dict[str, str] | None = None,
        hooks: list[dict[str, Any]] | None = None,
        members: dict[str, int] | None = None,
        description: str = "",
        ci_config: bool = True,
    ) -> dict[str, Any]:
        return self._call("POST", "/projects", {
            "path": path, "default_branch": default_branch, "files": files, "hooks": hooks,
            "members": members, "description": description, "ci_config": ci_config,
        })

    def set_user(self, username: str, *, name: str | None = None,
                 public_email: str | None = None) -> dict[str, Any]:
        return self._call("PUT", f"/users/{_p(username)}",
                          {"name": name, "public_email": public_email})

    def projects(self) -> list[dict[str, Any]]:
        return self._call("GET", "/projects")

    def project(self, project: str | int) -> dict[str, Any]:
        return self._call("GET", f"/projects/{_p(project)}")

    def commit(self, project: str | int, files: dict[str, str | None], *, branch: str | None = None,
               message: str = "Update files", author: str | None = None) -> str:
        body = {"branch": branch, "files": files, "message": message, "author": author}
        return self._call("POST", f"/projects/{_p(project)}/commits", body)["sha"]

    def tag(self, project: str | int, name: str, ref: str | None = None,
            author: str | None = None) -> str:
        """Create a tag (a Tag Push Hook goes to hooks with ``tag_push_events``)."""
        body = {"name": name, "ref": ref, "author": author}
        return self._call("POST", f"/projects/{_p(project)}/tags", body)["sha"]

    def set_members(self, project: str | int, members: dict[str, int]) -> dict[str, int]:
        return self._call("PUT", f"/projects/{_p(project)}/members", {"members": members})

    def add_hook(self, project: str | int, url: str, token: str = "", **events: bool
                 ) -> dict[str, Any]:
        return self._call("POST", f"/projects/{_p(project)}/hooks",
                          {"url": url, "token": token, **events})

    def enable_hook(self, project: str | int, hook_id: int) -> dict[str, Any]:
        return self._call("POST", f"/projects/{_p(project)}/hooks/{hook_id}/enable", {})

    def create_trigger(self, project: str | int, description: str = "") -> str:
        body = {"description": description}
        return self._call("POST", f"/projects/{_p(project)}/triggers", body)["token"]

    # -- pipelines -----------------------------------------------------------------------------

    def set_script(
        self,
        project: str | int,
        outcome: str = "success",
        *,
        pending: float | None = None,
        running: float | None = None,
        created: float | None = None,
        ref: str | None = None,
        queue: list[str] | None = None,
        **job: str,
    ) -> dict[str, Any]:
        """``job``: what a failing job says — ``job``, ``stage``, ``failure_reason`` (one of
        GitLab's), ``step`` (GitHub), ``log`` (its page's log tail); see sandbox/jobs.py."""
        body = {"outcome": outcome, "pending": pending, "running": running, "created": created,
                "ref": ref, "queue": queue, **job}
        return self._call("PUT", f"/projects/{_p(project)}/script", body)

    def pipelines(self, project: str | int) -> list[dict[str, Any]]:
        return self._call("GET", f"/projects/{_p(project)}/pipelines")

    def finish_pipeline(self, project: str | int, pipeline_id: int, status: str = "success"
                        ) -> dict[str, Any]:
        return self._call("POST", f"/projects/{_p(project)}/pipelines/{pipeline_id}/finish",
                          {"status": status})

    def wait_for_pipeline(self, project: str | int, pipeline_id: int,
                          statuses: tuple[str, ...] = ("success", "failed", "canceled", "skipped"),
                          timeout: float = 10.0) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            for p in self.pipelines(project):
                if p["id"] == pipeline_id and p["status"] in statuses:
                    return p
            return None

        return wait_until(found, timeout, f"pipeline {pipeline_id} to reach {statuses}")

    # -- merge requests ------------------------------------------------------------------------

    def open_merge_request(
        self,
        project: str | int,
        source_branch: str,
        *,
        target_branch: str | None = None,
        title: str = "",
        author: str = "alice",
        files: dict[str, str | None] | None = None,
        description: str = "",
        source_project: str | int | None = None,
        labels: list[str] | None = None,
        message: str | None = None,
    ) -> dict[str, Any]:
        """``files`` are committed on the source branch first, with ``message``."""
        return self._call("POST", f"/projects/{_p(project)}/merge_requests", {
            "source_branch": source_branch, "target_branch": target_branch, "title": title,
            "author": author, "files": files, "description": description,
            "source_project": source_project, "labels": labels, "message": message,
        })

    def merge_request(self, project: str | int, iid: int) -> dict[str, Any]:
        return self._call("GET", f"/projects/{_p(project)}/merge_requests/{iid}")

    def push(self, project: str | int, iid: int, files: dict[str, str | None], *,
             message: str = "Update", author: str | None = None) -> str:
        body = {"files": files, "message": message, "author": author}
        return self._call("POST", f"/projects/{_p(project)}/merge_requests/{iid}/push", body)["sha"]

    def _mr_action(self, project: str | int, iid: int, action: str, body: dict[str, Any]
                   ) -> dict[str, Any]:
        return self._call("POST", f"/projects/{_p(project)}/merge_requests/{iid}/{action}", body)

    def close_merge_request(self, project: str | int, iid: int, author: str | None = None
                            ) -> dict[str, Any]:
        return self._mr_action(project, iid, "close", {"author": author})

    def reopen_merge_request(self, project: str | int, iid: int, author: str | None = None
                             ) -> dict[str, Any]:
        return self._mr_action(project, iid, "reopen", {"author": author})

    def merge(self, project: str | int, iid: int, author: str | None = None) -> dict[str, Any]:
        return self._mr_action(project, iid, "merge", {"author": author})

    def edit_merge_request(self, project: str | int, iid: int, *, title: str | None = None,
                           description: str | None = None, target_branch: str | None = None,
                           labels: list[str] | None = None, add_labels: list[str] | None = None,
                           remove_labels: list[str] | None = None, author: str | None = None
                           ) -> dict[str, Any]:
        """``labels`` replaces the MR's labels (``[]`` clears them); ``add_labels`` /
        ``remove_labels`` adjust them."""
        fields = {"title": title, "description": description, "target_branch": target_branch,
                  "labels": labels, "add_labels": add_labels, "remove_labels": remove_labels,
                  "author": author}
        return self._mr_action(project, iid, "edit",
                               {k: v for k, v in fields.items() if v is not None})

    def comment(self, project: str | int, iid: int, body: str, author: str = "alice"
                ) -> dict[str, Any]:
        return self._mr_action(project, iid, "comments", {"body": body, "author": author})

    # -- sign-in (OAuth 2) ----------------------------------------------------------------------

    def register_oauth_app(self, forge: str, redirect_uri: str, **fields: Any) -> dict[str, Any]:
        """An OAuth application on the sandbox ``forge`` (gitlab | github): client_id, secret."""
        return self._call("POST", "/oauth/applications",
                          {"forge": forge, "redirect_uri": redirect_uri, **fields})

    def set_group_member(self, group: str, username: str, access_level: int = 30) -> None:
        """GitLab: ``username`` in group ``group`` (a full path) at that level (0: removed)."""
        self._call("PUT", f"/groups/{quote(group, safe='')}/members/{quote(username, safe='')}",
                   {"access_level": access_level})

    def set_team_member(self, org: str, team: str, username: str, member: bool = True) -> None:
        """GitHub: ``username`` in team ``team`` of organization ``org``."""
        self._call("PUT", f"/github/orgs/{quote(org, safe='')}/teams/{quote(team, safe='')}"
                   f"/members/{quote(username, safe='')}", {"member": member})

    # -- faults, requests, webhooks ------------------------------------------------------------

    def add_fault(self, **spec: Any) -> dict[str, Any]:
        """``status, retry_after, rate, count, method, path, latency, mode, event, delay,
        new_id``."""
        return self._call("POST", "/faults", spec)

    def faults(self) -> list[dict[str, Any]]:
        return self._call("GET", "/faults")

    def clear_faults(self) -> None:
        self._call("DELETE", "/faults")

    def delete_fault(self, fault_id: int) -> None:
        self._call("DELETE", f"/faults/{fault_id}")

    def requests(self, method: str | None = None, path: str | None = None, since: int = 0
                 ) -> list[dict[str, Any]]:
        return self._call("GET", "/requests",
                          params={"method": method, "path": path, "since": since or None})

    def clear_requests(self) -> None:
        self._call("DELETE", "/requests")

    def webhooks(self, event: str | None = None, since: int = 0) -> list[dict[str, Any]]:
        return self._call("GET", "/webhooks", params={"event": event, "since": since or None})

    def clear_webhooks(self) -> None:
        self._call("DELETE", "/webhooks")

    # -- the local chat room (sandbox/chat.py) -------------------------------------------------

    def chat_url(self, room: str) -> str:
        """The Apprise URL that posts to ``room`` (json:// is Apprise's JSON webhook)."""
        return f"json://{self.base_url.split('://', 1)[1]}/_sandbox/chat/{room}"

    def chat_messages(self, room: str) -> list[dict[str, Any]]:
        return self._call("GET", f"/chat/{room}")

    # -- GitHub: settings, tokens, rate limit, redelivery --------------------------------------

    def github_info(self) -> dict[str, Any]:
        return self._call("GET", "/github")

    def github_settings(self, *, return_run_details: bool | None = None) -> dict[str, Any]:
        """``return_run_details=False``: dispatch refuses the parameter with 422 (older GHES)."""
        body = {} if return_run_details is None else {"return_run_details": return_run_details}
        return self._call("PUT", "/github/settings", body)

    def github_rate_limit(self, **spec: Any) -> dict[str, Any]:
        """``limit, remaining, reset_in, window, status (403|429), token``; no args: read."""
        if not spec:
            return self._call("GET", "/github/rate_limit")
        return self._call("PUT", "/github/rate_limit", spec)

    def add_app_token(self, token: str | None = None, *, installation_id: int | None = None,
                      app_slug: str = "baton") -> dict[str, Any]:
        return self._call("POST", "/github/app_tokens", {
            "token": token, "installation_id": installation_id, "app_slug": app_slug})

    def register_github_app(self, slug: str = "baton", *, app_id: int | None = None,
                            public_key: str | None = None, **extra: Any) -> dict[str, Any]:
        """A GitHub App; without ``public_key`` the answer carries a new ``private_key`` PEM."""
        return self._call("POST", "/github/apps", {
            "slug": slug, "id": app_id, "public_key": public_key, **extra})

    def install_github_app(self, app_id: int, account: str, repositories: list[str] | None = None,
                           *, installation_id: int | None = None) -> dict[str, Any]:
        """Install App ``app_id`` on ``account`` (every repository of it, or ``repositories``)."""
        return self._call("POST", f"/github/apps/{app_id}/installations", {
            "account": account, "repositories": repositories, "id": installation_id})

    def github_apps(self) -> list[dict[str, Any]]:
        return self._call("GET", "/github/apps")

    def redeliver(self, delivery: str) -> dict[str, Any]:
        return self._call("POST", f"/github/deliveries/{quote(delivery, safe='')}/redeliver")

    # -- GitHub: repositories ------------------------------------------------------------------

    def create_github_repo(
        self,
        full_name: str,
        *,
        default_branch: str = "main",
        files: dict[str, str] | None = None,
        hooks: list[dict[str, Any]] | None = None,
        collaborators: dict[str, str] | None = None,
        description: str = "",
    ) -> dict[str, Any]:
        """``hooks: [{url, secret, content_type: json|form, events: ["*"]}]``; ``collaborators:
        {login: admin|maintain|write|triage|read}``; workflows are ``.github/workflows/*.yml``."""
        return self._call("POST", "/github/repos", {
            "full_name": full_name, "default_branch": default_branch, "files": files,
            "hooks": hooks, "collaborators": collaborators, "description": description,
        })

    def github_repos(self) -> list[dict[str, Any]]:
        return self._call("GET", "/github/repos")

    def github_repo(self, full_name: str) -> dict[str, Any]:
        return self._call("GET", _r(full_name))

    def github_commit(self, full_name: str, files: dict[str, str | None], *,
                      branch: str | None = None, message: str = "Update files",
                      author: str | None = None) -> str:
        body = {"branch": branch, "files": files, "message": message, "author": author}
        return self._call("POST", f"{_r(full_name)}/commits", body)["sha"]

    def github_tag(self, full_name: str, name: str, ref: str | None = None,
                   author: str | None = None) -> str:
        """Create (push) a tag: GitHub sends ``create`` and ``push`` (ref ``refs/tags/…``)."""
        body = {"name": name, "ref": ref, "author": author}
        return self._call("POST", f"{_r(full_name)}/tags", body)["sha"]

    def set_collaborators(self, full_name: str, collaborators: dict[str, str | None]
                          ) -> dict[str, str]:
        return self._call("PUT", f"{_r(full_name)}/collaborators",
                          {"collaborators": collaborators})

    def add_github_hook(self, full_name: str, url: str, *, secret: str = "",
                        content_type: str = "json", events: list[str] | None = None
                        ) -> dict[str, Any]:
        return self._call("POST", f"{_r(full_name)}/hooks", {
            "url": url, "secret": secret, "content_type": content_type, "events": events})

    # -- GitHub: workflow runs -----------------------------------------------------------------

    def set_run_script(
        self,
        full_name: str,
        outcome: str = "success",
        *,
        pending: float | None = None,
        running: float | None = None,
        created: float | None = None,
        ref: str | None = None,
        queue: list[str] | None = None,
        **job: str,
    ) -> dict[str, Any]:
        """Like ``set_script``; outcomes in GitHub's words (``failure``, ``cancelled``…) or
        GitLab's; ``ref`` matches a run's head branch or its workflow file name."""
        body = {"outcome": outcome, "pending": pending, "running": running, "created": created,
                "ref": ref, "queue": queue, **job}
        return self._call("PUT", f"{_r(full_name)}/script", body)

    def workflow_runs(self, full_name: str) -> list[dict[str, Any]]:
        return self._call("GET", f"{_r(full_name)}/runs")

    def github_deployments(self, full_name: str) -> list[dict[str, Any]]:
        """Deployments (ascending id), REST shape plus ``statuses`` (oldest first, each with the
        ``run_id`` that posted it or null) and ``run_ids`` (the runs it started)."""
        return self._call("GET", f"{_r(full_name)}/deployments")

    def finish_run(self, full_name: str, run_id: int, conclusion: str = "success"
                   ) -> dict[str, Any]:
        return self._call("POST", f"{_r(full_name)}/runs/{run_id}/finish",
                          {"conclusion": conclusion})

    def wait_for_run(self, full_name: str, run_id: int, statuses: tuple[str, ...] = ("completed",),
                     timeout: float = 10.0) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            for run in self.workflow_runs(full_name):
                if run["id"] == run_id and run["status"] in statuses:
                    return run
            return None

        return wait_until(found, timeout, f"run {run_id} to reach {statuses}")

    # -- GitHub: pull requests and comments ----------------------------------------------------

    def open_pull_request(
        self,
        full_name: str,
        head: str,
        *,
        base: str | None = None,
        title: str = "",
        body: str = "",
        author: str = "alice",
        files: dict[str, str | None] | None = None,
        draft: bool = False,
        labels: list[str] | None = None,
        message: str | None = None,
    ) -> dict[str, Any]:
        """``files`` are committed on ``head`` first, with ``message``; with ``labels``,
        ``opened`` is followed by one ``labeled`` event per label."""
        return self._call("POST", f"{_r(full_name)}/pulls", {
            "head": head, "base": base, "title": title, "body": body, "author": author,
            "files": files, "draft": draft, "labels": labels, "message": message})

    def pull_request(self, full_name: str, number: int) -> dict[str, Any]:
        return self._call("GET", f"{_r(full_name)}/pulls/{number}")

    def _pull_action(self, full_name: str, number: int, action: str, body: dict[str, Any]
                     ) -> dict[str, Any]:
        return self._call("POST", f"{_r(full_name)}/pulls/{number}/{action}", body)

    def push_pull_request(self, full_name: str, number: int, files: dict[str, str | None], *,
                          message: str = "Update", author: str | None = None) -> str:
        body = {"files": files, "message": message, "author": author}
        return self._pull_action(full_name, number, "push", body)["sha"]

    def close_pull_request(self, full_name: str, number: int, author: str | None = None
                           ) -> dict[str, Any]:
        return self._pull_action(full_name, number, "close", {"author": author})

    def reopen_pull_request(self, full_name: str, number: int, author: str | None = None
                            ) -> dict[str, Any]:
        return self._pull_action(full_name, number, "reopen", {"author": author})

    def merge_pull_request(self, full_name: str, number: int, author: str | None = None
                           ) -> dict[str, Any]:
        return self._pull_action(full_name, number, "merge", {"author": author})

    def edit_pull_request(self, full_name: str, number: int, *, title: str | None = None,
                          body: str | None = None, base: str | None = None,
                          labels: list[str] | None = None, add_labels: list[str] | None = None,
                          remove_labels: list[str] | None = None, author: str | None = None
                          ) -> dict[str, Any]:
        """``labels`` replaces the PR's labels (``[]`` clears them); ``add_labels`` /
        ``remove_labels`` adjust them (one ``labeled`` / ``unlabeled`` event per label)."""
        fields = {"title": title, "body": body, "base": base, "labels": labels,
                  "add_labels": add_labels, "remove_labels": remove_labels, "author": author}
        return self._pull_action(full_name, number, "edit",
                                 {k: v for k, v in fields.items() if v is not None})

    def comment_pull_request(self, full_name: str, number: int, body: str,
                             author: str = "alice") -> dict[str, Any]:
        return self._pull_action(full_name, number, "comments", {"body": body, "author": author})

    def edit_github_comment(self, full_name: str, comment_id: int, body: str,
                            author: str | None = None) -> dict[str, Any]:
        return self._call("POST", f"{_r(full_name)}/comments/{comment_id}/edit",
                          {"body": body, "author": author})


def wait_until(check: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll ``check`` until it returns something truthy; ``TimeoutError`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.02)
