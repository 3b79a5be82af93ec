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
    ) -> dict[str, Any]:
        return self._call("POST", "/projects", {
            "path": path, "default_branch": default_branch, "files": files, "hooks": hooks,
            "members": members, "description": description,
        })

    def projects(self) -> list[dict[str, Any]]:
        return self._call("GET", "/projects")

    def project(self, project: str | int) -> dict[str, Any]:
        return self._call("GET", f"/projects/{_p(project)}")

    def commit(self, project: str | int, files: dict[str, str | None], *, branch: str | None = None,
               message: str = "Update files", author: str | None = None) -> str:
        body = {"branch": branch, "files": files, "message": message, "author": author}
        return self._call("POST", f"/projects/{_p(project)}/commits", body)["sha"]

    def tag(self, project: str | int, name: str, ref: str | None = None) -> str:
        body = {"name": name, "ref": ref}
        return self._call("POST", f"/projects/{_p(project)}/tags", body)["sha"]

    def set_members(self, project: str | int, members: dict[str, int]) -> dict[str, int]:
        return self._call("PUT", f"/projects/{_p(project)}/members", {"members": members})

    def add_hook(self, project: str | int, url: str, token: str = "", **events: bool
                 ) -> dict[str, Any]:
        return self._call("POST", f"/projects/{_p(project)}/hooks",
                          {"url": url, "token": token, **events})

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
    ) -> dict[str, Any]:
        body = {"outcome": outcome, "pending": pending, "running": running, "created": created,
                "ref": ref, "queue": queue}
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
    ) -> dict[str, Any]:
        return self._call("POST", f"/projects/{_p(project)}/merge_requests", {
            "source_branch": source_branch, "target_branch": target_branch, "title": title,
            "author": author, "files": files, "description": description,
            "source_project": source_project,
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
                           description: str | None = None, author: str | None = None
                           ) -> dict[str, Any]:
        body = {k: v for k, v in {"title": title, "description": description,
                                  "author": author}.items() if v is not None}
        return self._mr_action(project, iid, "edit", body)

    def comment(self, project: str | int, iid: int, body: str, author: str = "alice"
                ) -> dict[str, Any]:
        return self._mr_action(project, iid, "comments", {"body": body, "author": author})

    # -- faults, requests, webhooks ------------------------------------------------------------

    def add_fault(self, **spec: Any) -> dict[str, Any]:
        """``status, retry_after, rate, count, method, path, latency, mode, event``."""
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
