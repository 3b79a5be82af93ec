"""The sandbox's world on disk, so a restart is not a new forge.

A real forge never hands out an id twice: after a restart pipeline #7 is still pipeline #7 and the
next one is #8. ``StateFile`` keeps everything a forge would keep — id counters, users, GitLab
projects (commits, merge requests, notes, hooks, statuses, scripts), pipelines, GitHub
repositories, workflow runs, GitHub Apps, installations and tokens — in one file
(``python manage.py sandbox --state FILE``, default ``var/sandbox-state.pickle``). It is loaded
at start and written, from a background thread, at most every ``interval`` seconds after
something changed, and once more on stop; the
write goes to a temporary file first and replaces the old one, so a crash leaves the previous
state. Pipelines and runs that were still moving go on from where they were, on the clock.
Request and webhook logs, faults, queued webhooks and rate-limit buckets are not kept.

The file is the sandbox's own (written by it, under ``var/``) and read with ``pickle``: never point
``--state`` at a file from anywhere else. With ids kept, ``POST /_sandbox/reset`` forgets the
world but not its counters.
"""

from __future__ import annotations

import logging
import os
import pickle
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sandbox.model import ACTIVE

if TYPE_CHECKING:
    from sandbox.app import Sandbox

log = logging.getLogger(__name__)

FORMAT = 1
# Modules that moved since a state file may have been written (sandbox/github_*.py became the
# sandbox/github/ package), so a file from before the move still loads.
MOVED = {
    "sandbox.github_model": "sandbox.github.model",
    "sandbox.github_workflows": "sandbox.github.workflows",
}


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        return super().find_class(MOVED.get(module, module), name)


class StateFile:
    def __init__(self, app: Sandbox, path: str | Path, interval: float = 0.5) -> None:
        self.app = app
        self.path = Path(path)
        self.interval = interval
        self._saved_version = -1
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sandbox-state", daemon=True)
        app.state.keep_ids = True

    # -- load ----------------------------------------------------------------------------------

    def load(self) -> bool:
        """Restore the world from the file, if there is one; True when it was restored."""
        if not self.path.exists():
            return False
        with self.path.open("rb") as f:
            data = _Unpickler(f).load()
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"{self.path} is not a sandbox state file (format {FORMAT})")
        app = self.app
        with app.state.lock:
            state, github = app.state, app.github
            state._ids = dict(data["ids"])
            state.users, state.projects, state.pipelines = (
                data["users"], data["projects"], data["pipelines"])
            state.bot = next(u for u in state.users.values() if u.username == state.bot.username)
            github.repos, github.app_tokens = data["github_repos"], data["github_app_tokens"]
            github.apps = data.get("github_apps", {})
            github.installations = data.get("github_installations", {})
            github.return_run_details = data["github_return_run_details"]
            app.github_runner.runs = data["github_runs"]
            # What was moving goes on moving (its scheduled steps died with the old process).
            for pipeline in state.pipelines.values():
                if pipeline.status in ACTIVE and pipeline.project_id in state.projects:
                    app.runner._plan_next(state.projects[pipeline.project_id], pipeline)
            for run in app.github_runner.runs.values():
                if run.status != "completed" and run.repo_id in github.repos:
                    app.github_runner._plan_next(github.repos[run.repo_id], run)
            self._saved_version = state.version
        log.info("sandbox: state restored from %s", self.path)
        return True

    # -- save ----------------------------------------------------------------------------------

    def _snapshot(self) -> tuple[int, bytes]:
        app = self.app
        with app.state.lock:
            data: dict[str, Any] = {
                "format": FORMAT,
                "ids": dict(app.state._ids),
                "users": app.state.users,
                "projects": app.state.projects,
                "pipelines": app.state.pipelines,
                "github_repos": app.github.repos,
                "github_app_tokens": app.github.app_tokens,
                "github_apps": app.github.apps,
                "github_installations": app.github.installations,
                "github_return_run_details": app.github.return_run_details,
                "github_runs": app.github_runner.runs,
            }
            return app.state.version, pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL)

    def save(self) -> None:
        """Write the world now if it changed since the last write."""
        if self.app.state.version == self._saved_version:
            return
        version, blob = self._snapshot()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".sandbox-state-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(blob)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._saved_version = version

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self.save()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.save()
            except Exception:
                log.exception("sandbox: could not write %s", self.path)
