"""Injected faults: 429 with Retry-After, uncertain 5xx after the work, dropped connections,
latency under concurrency, dropped webhooks; and the request log."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import gitlab
import pytest
import requests

from sandbox.client import SandboxClient, wait_until
from sandbox.server import SandboxServer


@pytest.fixture
def project(control: SandboxClient) -> dict:
    return control.create_project("acme/app")


def test_429_with_retry_after_then_success(
    gl: gitlab.Gitlab, control: SandboxClient, project: dict, forge: SandboxServer
) -> None:
    fault = control.add_fault(status=429, retry_after=0, count=1, method="POST", path=r"/pipeline$")
    raw = requests.post(
        f"{forge.url}/api/v4/projects/1/pipeline",
        json={"ref": "main"},
        headers={"PRIVATE-TOKEN": "x"},
    )
    assert raw.status_code == 429
    assert raw.headers["Retry-After"] == "0"
    assert {"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"} <= set(raw.headers)
    assert control.pipelines(project["id"]) == []  # "before": nothing was done

    control.add_fault(status=429, retry_after=0, count=2, method="POST", path=r"/pipeline$")
    pipeline = gl.projects.get(project["id"], lazy=True).pipelines.create({"ref": "main"})
    assert pipeline.id == 1
    log = control.requests(method="POST", path="/pipeline")
    assert [r["status"] for r in log] == [429, 429, 429, 201]
    assert all(r["fault"]["id"] != fault["id"] for r in log[1:3])
    assert log[-1]["body"] == {"ref": "main"}


def test_after_fault_leaves_the_pipeline_created(
    gl: gitlab.Gitlab, control: SandboxClient, project: dict
) -> None:
    control.add_fault(status=502, mode="after", count=1, path=r"/trigger/pipeline$")
    token = control.create_trigger(project["id"])
    p = gl.projects.get(project["id"], lazy=True)
    with pytest.raises(gitlab.GitlabCreateError) as exc:
        p.trigger_pipeline("main", token, variables={"BATON_RUN_ID": "7"})
    assert exc.value.response_code == 502
    created = control.pipelines(project["id"])
    assert len(created) == 1
    assert created[0]["variables"][0]["value"] == "7"
    log = control.requests(path="/trigger/pipeline")
    assert log[0]["status"] == 502 and log[0]["status_without_fault"] == 201


def test_drop_and_drop_after(forge: SandboxServer, control: SandboxClient, project: dict) -> None:
    url = f"{forge.url}/api/v4/projects/1/pipeline"
    control.add_fault(mode="drop", count=1, method="POST")
    with pytest.raises(requests.ConnectionError):
        requests.post(url, json={"ref": "main"}, headers={"PRIVATE-TOKEN": "x"})
    assert control.pipelines(project["id"]) == []
    control.add_fault(mode="drop_after", count=1, method="POST")
    with pytest.raises(requests.ConnectionError):
        requests.post(url, json={"ref": "main"}, headers={"PRIVATE-TOKEN": "x"})
    assert len(control.pipelines(project["id"])) == 1
    assert [f["injected"] for f in control.faults()] == [1, 1]
    control.clear_faults()
    assert control.faults() == []


def test_latency_under_100_concurrent_requests(
    forge: SandboxServer, control: SandboxClient, project: dict
) -> None:
    fault = control.add_fault(latency=0.3, path=r"^/api/v4/projects/1$")
    session_headers = {"PRIVATE-TOKEN": "x"}

    def get(_: int) -> int:
        return requests.get(
            f"{forge.url}/api/v4/projects/1", headers=session_headers, timeout=10
        ).status_code

    started = time.monotonic()
    with ThreadPoolExecutor(100) as pool:
        codes = list(pool.map(get, range(100)))
    elapsed = time.monotonic() - started
    assert codes == [200] * 100
    assert 0.3 <= elapsed < 3.0  # served concurrently, not one after another
    control.delete_fault(fault["id"])
    started = time.monotonic()
    get(0)
    assert time.monotonic() - started < 0.3


def test_drop_webhooks(control: SandboxClient, receiver: Any) -> None:
    control.create_project("acme/lib", hooks=[{"url": receiver.url, "token": "t"}])
    control.add_fault(mode="drop_webhooks", event="Merge Request Hook")
    control.open_merge_request("acme/lib", "feature", files={"a": "1"})
    control.comment("acme/lib", 1, "hello")
    wait_until(lambda: receiver.events("Note Hook"), 5, "the note hook")
    dropped = control.webhooks(event="Merge Request Hook")
    assert dropped and all(w["dropped"] and w["status"] is None for w in dropped)
    assert receiver.events("Merge Request Hook") == []


def test_control_requests_are_not_logged(control: SandboxClient, project: dict) -> None:
    assert control.requests() == []
    control.clear_requests()
    assert control.requests() == []
