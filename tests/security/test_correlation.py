"""Any pipeline can claim to be a run (issue 9, finding 2) and a webhook's word alone turns a run
green (issue 10, payload facts): a pipeline is taken for a run only in the run's own target
project, by the secret nonce Baton put on it, when created after the run was sent; a final status
from a webhook is read back from the forge before it finishes the run."""

from __future__ import annotations

import copy
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import responses
from django.utils import timezone

from bots import router
from bots.engine import tracking
from bots.forges.registry import forge_for
from chains.models import Chain, Delivery, Forge, Repository, Run
from chains.status import Status
from tests.conftest import load_fixture

pytestmark = pytest.mark.django_db

GITLAB = "https://gl.example.com"
GITHUB = "http://gh.example.com:80/api/v3"
_ids = itertools.count(1)


@pytest.fixture
def gitlab() -> Forge:
    return Forge.objects.create(
        kind="gitlab",
        slug="gl",
        name="GitLab",
        api_url=GITLAB,
        token="tok",
        webhook_secret="hook-secret",
    )


@pytest.fixture
def github() -> Forge:
    return Forge.objects.create(
        kind="github",
        slug="gh",
        name="GitHub",
        api_url=GITHUB,
        token="ghp_x",
        webhook_secret="hook-secret",
    )


def make_run(forge: Forge, path: str, **fields: Any) -> Run:
    upstream, _ = Repository.objects.get_or_create(forge=forge, path="acme/app")
    target, _ = Repository.objects.get_or_create(forge=forge, path=path)
    chain = Chain.objects.create(
        forge=forge,
        repository=upstream,
        change_number=1,
        title="Add x",
        author="alice",
        source_branch="feature/x",
        target_branch="main",
        head_sha=f"{next(_ids):040x}",
        upstream_ref="refs/merge-requests/1/head",
        status=Status.RUNNING,
    )
    defaults: dict[str, Any] = {
        "status": Status.PENDING,
        "dispatch": Run.Dispatch.SENT,
        "sent_at": timezone.now() - timedelta(seconds=10),
        "triggered_at": timezone.now() - timedelta(seconds=9),
    }
    return Run.objects.create(
        chain=chain, key=f"k{next(_ids)}", repository=target, ref="main", **{**defaults, **fields}
    )


def deliver(forge: Forge, event: str, payload: dict[str, Any]) -> Delivery:
    """A delivery as the intake stores it after the secret checked out, then processed."""
    delivery = Delivery.objects.create(
        forge=forge, event=event, dedupe_key=f"d-{next(_ids)}", payload=payload
    )
    router.process(delivery.pk)
    delivery.refresh_from_db()
    return delivery


def hook_time(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def pipeline_hook(
    project: str,
    pipeline_id: int,
    status: str,
    variables: dict[str, str] | None = None,
    *,
    project_id: int = 7,
    created: datetime | None = None,
) -> dict[str, Any]:
    payload = copy.deepcopy(load_fixture("gitlab", "pipeline__success"))
    attrs = payload["object_attributes"]
    attrs.update(
        id=pipeline_id,
        status=status,
        ref="main",
        created_at=hook_time(created or timezone.now()),
        finished_at=hook_time(timezone.now()) if status in ("success", "failed") else None,
        variables=[{"key": k, "value": v} for k, v in (variables or {}).items()],
        url=f"{GITLAB}/{project}/-/pipelines/{pipeline_id}",
    )
    payload["project"].update(id=project_id, path_with_namespace=project)
    return payload


def marker(run: Run, nonce: str | None = None) -> dict[str, str]:
    return {"BATON_RUN_ID": str(run.pk), "BATON_RUN_NONCE": run.nonce if nonce is None else nonce}


# -- GitLab: adoption of a pipeline Baton has not identified yet -------------------------------


def test_a_foreign_projects_pipeline_with_the_run_id_is_not_adopted(gitlab: Forge) -> None:
    run = make_run(gitlab, "acme/api", remote_id="")
    # Mallory creates a pipeline in a project of her own with BATON_RUN_ID=<n> (even with the
    # run's nonce, had it leaked): it must not become run n's pipeline.
    for variables in ({"BATON_RUN_ID": str(run.pk)}, marker(run)):
        deliver(gitlab, "Pipeline Hook", pipeline_hook("mallory/tools", 501, "running", variables))
    run.refresh_from_db()
    assert (run.remote_id, run.status) == ("", Status.PENDING)


@pytest.mark.parametrize("nonce", ["", "0" * 32, "guess"])
def test_a_pipeline_without_the_runs_nonce_is_not_adopted(gitlab: Forge, nonce: str) -> None:
    run = make_run(gitlab, "acme/api", remote_id="")
    variables = marker(run, nonce) if nonce else {"BATON_RUN_ID": str(run.pk)}
    payload = pipeline_hook("acme/api", 502, "running", variables)
    delivery = deliver(gitlab, "Pipeline Hook", payload)
    run.refresh_from_db()
    assert (run.remote_id, run.status) == ("", Status.PENDING)
    assert delivery.detail == "not a pipeline Baton triggered"


def test_a_pipeline_created_before_the_run_was_sent_is_not_adopted(gitlab: Forge) -> None:
    run = make_run(gitlab, "acme/api", remote_id="")
    early = timezone.now() - timedelta(hours=1)
    payload = pipeline_hook("acme/api", 503, "running", marker(run), created=early)
    deliver(gitlab, "Pipeline Hook", payload)
    run.refresh_from_db()
    assert run.remote_id == ""


def test_the_runs_own_pipeline_with_its_nonce_is_adopted(gitlab: Forge) -> None:
    run = make_run(gitlab, "acme/api", remote_id="")
    deliver(gitlab, "Pipeline Hook", pipeline_hook("acme/api", 504, "running", marker(run)))
    run.refresh_from_db()
    assert (run.remote_id, run.status) == ("504", Status.RUNNING)


def test_every_send_carries_a_fresh_unguessable_nonce(gitlab: Forge) -> None:
    from bots.engine.triggering import run_variables

    first, second = make_run(gitlab, "acme/api"), make_run(gitlab, "acme/web")
    assert len(first.nonce) >= 32 and first.nonce != second.nonce
    assert run_variables(first)["BATON_RUN_NONCE"] == first.nonce
    assert run_variables(first)["BATON_RUN_ID"] == str(first.pk)


# -- GitLab: events for identified pipelines ---------------------------------------------------


def test_an_event_for_another_projects_pipeline_with_the_same_id_leaves_the_run(
    gitlab: Forge,
) -> None:
    api = make_run(gitlab, "acme/api", remote_id="31", status=Status.RUNNING)
    web = make_run(gitlab, "acme/web", remote_id="31", status=Status.RUNNING)
    with responses.RequestsMock() as mock:
        mock.get(
            f"{GITLAB}/api/v4/projects/acme%2Fweb/pipelines/31",
            json={"id": 31, "status": "canceled", "web_url": f"{GITLAB}/acme/web/-/pipelines/31"},
        )
        deliver(gitlab, "Pipeline Hook", pipeline_hook("acme/web", 31, "canceled"))
    api.refresh_from_db()
    web.refresh_from_db()
    assert api.status == Status.RUNNING
    assert web.status == Status.CANCELED
    # And a project Baton never sent anything to does not touch either.
    deliver(gitlab, "Pipeline Hook", pipeline_hook("mallory/tools", 31, "running"))
    api.refresh_from_db()
    assert api.status == Status.RUNNING


def test_a_project_id_that_differs_from_the_repositorys_is_not_the_same_project(
    gitlab: Forge,
) -> None:
    run = make_run(gitlab, "acme/api", remote_id="32", status=Status.PENDING)
    Repository.objects.filter(pk=run.repository_id).update(remote_id="7")
    deliver(gitlab, "Pipeline Hook", pipeline_hook("acme/api", 32, "running", project_id=8))
    run.refresh_from_db()
    assert run.status == Status.PENDING
    deliver(gitlab, "Pipeline Hook", pipeline_hook("acme/api", 32, "running", project_id=7))
    run.refresh_from_db()
    assert run.status == Status.RUNNING


@responses.activate
def test_a_forged_webhook_claiming_success_does_not_make_the_run_green(gitlab: Forge) -> None:
    run = make_run(gitlab, "acme/api", remote_id="33", status=Status.RUNNING)
    # Someone holding only the webhook secret claims the pipeline succeeded; the forge says it
    # failed.
    read_back = responses.get(
        f"{GITLAB}/api/v4/projects/acme%2Fapi/pipelines/33",
        json={"id": 33, "status": "failed", "web_url": f"{GITLAB}/acme/api/-/pipelines/33"},
    )
    deliver(gitlab, "Pipeline Hook", pipeline_hook("acme/api", 33, "success"))
    run.refresh_from_db()
    assert run.status == Status.FAILED
    assert read_back.call_count == 1


@responses.activate
def test_a_claimed_end_the_forge_does_not_confirm_leaves_the_run_running(gitlab: Forge) -> None:
    run = make_run(gitlab, "acme/api", remote_id="34", status=Status.RUNNING, hooked=True)
    responses.get(
        f"{GITLAB}/api/v4/projects/acme%2Fapi/pipelines/34",
        json={"id": 34, "status": "running", "web_url": f"{GITLAB}/acme/api/-/pipelines/34"},
    )
    deliver(gitlab, "Pipeline Hook", pipeline_hook("acme/api", 34, "success"))
    run.refresh_from_db()
    assert run.status == Status.RUNNING
    assert run.hooked is False  # polled soon, not trusted to the next webhook


@responses.activate
def test_a_claimed_end_for_a_pipeline_the_forge_does_not_have_changes_nothing(
    gitlab: Forge,
) -> None:
    run = make_run(gitlab, "acme/api", remote_id="35", status=Status.RUNNING)
    responses.get(
        f"{GITLAB}/api/v4/projects/acme%2Fapi/pipelines/35",
        status=404,
        json={"message": "404 Not found"},
    )
    delivery = deliver(gitlab, "Pipeline Hook", pipeline_hook("acme/api", 35, "success"))
    run.refresh_from_db()
    assert run.status == Status.RUNNING
    assert "could not be read back" in delivery.detail


def test_an_unchanged_final_status_costs_no_forge_call(gitlab: Forge) -> None:
    run = make_run(gitlab, "acme/api", remote_id="36", status=Status.SUCCESS)
    with responses.RequestsMock():  # any request would fail the test
        deliver(gitlab, "Pipeline Hook", pipeline_hook("acme/api", 36, "success"))
    run.refresh_from_db()
    assert run.status == Status.SUCCESS


# -- GitHub: workflow runs are found by the nonce in their title -------------------------------


def workflow_run(
    repo: str,
    run_id: int,
    title: str,
    *,
    status: str = "in_progress",
    conclusion: str | None = None,
    path: str = ".github/workflows/preview.yml",
    created: datetime | None = None,
) -> dict[str, Any]:
    payload = copy.deepcopy(load_fixture("github", "workflow_run__requested"))
    payload["action"] = "in_progress"
    payload["workflow_run"].update(
        id=run_id,
        name="Preview",
        display_title=title,
        status=status,
        conclusion=conclusion,
        path=path,
        event="workflow_dispatch",
        created_at=(created or timezone.now()).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        html_url=f"https://gh.example.com/{repo}/actions/runs/{run_id}",
    )
    payload["repository"].update(full_name=repo, id=70)
    return payload


def test_a_github_run_whose_title_shows_the_run_id_is_not_adopted(github: Forge) -> None:
    run = make_run(github, "acme/docs", remote_id="", workflow="preview.yml")
    deliver(github, "workflow_run", workflow_run("acme/docs", 901, f"Preview (baton run {run.pk})"))
    run.refresh_from_db()
    assert run.remote_id == ""


@pytest.mark.parametrize(
    "repo,path,created_ago",
    [
        ("mallory/tools", ".github/workflows/preview.yml", 0),  # another repository
        ("acme/docs", ".github/workflows/other.yml", 0),  # not the workflow Baton dispatched
        ("acme/docs", ".github/workflows/preview.yml", 3600),  # created before the send
    ],
)
def test_a_github_run_with_the_nonce_elsewhere_is_not_adopted(
    github: Forge, repo: str, path: str, created_ago: int
) -> None:
    run = make_run(github, "acme/docs", remote_id="", workflow="preview.yml")
    created = timezone.now() - timedelta(seconds=created_ago)
    payload = workflow_run(repo, 902, f"Preview ({run.nonce})", path=path, created=created)
    deliver(github, "workflow_run", payload)
    run.refresh_from_db()
    assert run.remote_id == ""


def test_the_dispatched_workflows_run_with_the_nonce_is_adopted(github: Forge) -> None:
    run = make_run(github, "acme/docs", remote_id="", workflow="preview.yml")
    deliver(github, "workflow_run", workflow_run("acme/docs", 903, f"Preview ({run.nonce})"))
    run.refresh_from_db()
    assert (run.remote_id, run.status) == ("903", Status.RUNNING)


@responses.activate
def test_a_forged_workflow_run_completed_is_read_back(github: Forge) -> None:
    run = make_run(github, "acme/docs", remote_id="904", status=Status.RUNNING)
    responses.get(
        f"{GITHUB}/repos/acme/docs/actions/runs/904",
        json={"id": 904, "status": "completed", "conclusion": "failure", "html_url": "h"},
    )
    payload = workflow_run("acme/docs", 904, "x", status="completed", conclusion="success")
    deliver(github, "workflow_run", payload)
    run.refresh_from_db()
    assert run.status == Status.FAILED


# -- look-ups (an uncertain send, a lost webhook) ----------------------------------------------


@responses.activate
def test_a_look_up_takes_only_a_pipeline_with_the_nonce_created_after_the_send(
    gitlab: Forge,
) -> None:
    run = make_run(gitlab, "acme/api", remote_id="", dispatch=Run.Dispatch.SENDING)
    base = f"{GITLAB}/api/v4/projects/acme%2Fapi/pipelines"
    early = (timezone.now() - timedelta(hours=1)).isoformat()
    now = timezone.now().isoformat()
    responses.get(
        base,
        json=[
            {"id": 3, "status": "running", "created_at": now},
            {"id": 2, "status": "running", "created_at": early},
            {"id": 1, "status": "running", "created_at": now},
        ],
    )
    # 3: the run id without the nonce; 2: the nonce, but older than the send (a server that
    # ignores created_after); 1: not ours at all.
    responses.get(f"{base}/3/variables", json=[{"key": "BATON_RUN_ID", "value": str(run.pk)}])
    responses.get(
        f"{base}/2/variables",
        json=[{"key": k, "value": v} for k, v in marker(run).items()],
    )
    responses.get(f"{base}/1/variables", json=[])
    assert tracking.find_sent(forge_for(gitlab), run, "main") is None


@responses.activate
def test_a_claimed_end_that_cannot_be_read_back_yet_is_retried_not_applied(
    gitlab: Forge,
) -> None:
    from bots.forges.base import ForgeError

    run = make_run(gitlab, "acme/api", remote_id="37", status=Status.RUNNING, hooked=True)
    responses.get(f"{GITLAB}/api/v4/projects/acme%2Fapi/pipelines/37", status=502)
    delivery = Delivery.objects.create(
        forge=gitlab,
        event="Pipeline Hook",
        dedupe_key="d-502",
        payload=pipeline_hook("acme/api", 37, "success"),
    )
    with pytest.raises(ForgeError):  # the delivery task retries it later
        router.process(delivery.pk)
    run.refresh_from_db()
    assert run.status == Status.RUNNING
    assert run.hooked is False  # and the poller may find the end first
