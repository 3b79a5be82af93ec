"""The sandbox's world survives a restart (``--state FILE``): ids are never handed out twice."""

from __future__ import annotations

from pathlib import Path

import gitlab
import pytest

from sandbox.client import SandboxClient
from sandbox.server import serve_in_thread


def test_a_restart_keeps_the_world_and_its_ids(tmp_path: Path) -> None:
    path = str(tmp_path / "var" / "sandbox-state.pickle")
    first = serve_in_thread(time_scale=20, state_file=path)
    try:
        control = SandboxClient(first.url)
        control.create_project("acme/app", files={"a.txt": "a\n"})
        control.set_script("acme/app", "success", pending=0.2, running=40)  # 2 s real
        gl = gitlab.Gitlab(first.url, private_token="x")
        project = gl.projects.get("acme/app")
        done = project.pipelines.create({"ref": "main"})
        control.finish_pipeline("acme/app", done.id, "success")
        moving = project.pipelines.create({"ref": "main"})
        project.commits.get("main", lazy=True).statuses.create({"state": "running", "name": "x"})
    finally:
        first.shutdown()
    assert Path(path).exists()

    second = serve_in_thread(time_scale=20, state_file=path)
    try:
        control = SandboxClient(second.url)
        gl = gitlab.Gitlab(second.url, private_token="x")
        project = gl.projects.get("acme/app")
        assert project.pipelines.get(done.id).status == "success"
        # The status machine remembers too: running again is refused.
        with pytest.raises(gitlab.GitlabCreateError):
            project.commits.get("main", lazy=True).statuses.create({"state": "running",
                                                                   "name": "x"})
        assert control.wait_for_pipeline("acme/app", moving.id, ("success",), timeout=10)
        newer = project.pipelines.create({"ref": "main"})
        assert newer.id > moving.id
        control.reset()  # forgets the world, not the counters
        control.create_project("acme/app", files={"a.txt": "a\n"})
        after_reset = gl.projects.get("acme/app").pipelines.create({"ref": "main"})
        assert after_reset.id > newer.id
    finally:
        second.shutdown()


def test_without_a_state_file_a_reset_starts_afresh() -> None:
    server = serve_in_thread(time_scale=20)
    try:
        control = SandboxClient(server.url)
        first = control.create_project("acme/one")
        control.reset()
        assert control.create_project("acme/one")["id"] == first["id"]
    finally:
        server.shutdown()
