"""A GitLab forge, people and merge request hooks for the security tests of who a chain runs for
and of repeated deliveries: the forge's API is faked with `responses`."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import unquote

import responses
from django.contrib.auth.models import User
from django.test import Client

from chains.models import Delivery, Forge
from tests import factories
from tests.conftest import post_webhook

API = "https://gl.example.com/api/v4"
SECRET = "hook-secret-h7"
SHA = "c0ffee" + "0" * 34
PEOPLE = {"rita": 2, "mallory": 3, "bob": 4}  # forge account -> forge user id


def gitlab_forge() -> Forge:
    return Forge.objects.create(
        kind=Forge.Kind.GITLAB,
        slug="gl",
        name="GitLab",
        api_url="https://gl.example.com",
        token="glpat-h7",
        webhook_secret=SECRET,
    )


def person(forge: Forge, name: str, *projects: str) -> User:
    """A Baton user linked to the forge account ``name``, who may trigger ``projects``."""
    return factories.account(forge, name, *projects)


def fake_change(
    author: str, *, config: str, sha: str = SHA, fork: bool = False, state: str = "opened"
) -> None:
    """acme/app !7 by ``author`` at ``sha``, whose `.baton.yml` is ``config``."""
    responses.get(
        f"{API}/projects/acme%2Fapp/merge_requests/7",
        json={
            "iid": 7,
            "web_url": "https://gl.example.com/acme/app/-/merge_requests/7",
            "title": "Change",
            "author": {"username": author, "id": PEOPLE.get(author, 99)},
            "source_branch": "feature",
            "target_branch": "main",
            "sha": sha,
            "source_project_id": 43 if fork else 42,
            "target_project_id": 42,
            "state": state,
        },
    )
    files = re.compile(rf"{re.escape(API)}/projects/acme%2Fapp/repository/files/.*")
    responses.get(files, body=config)
    # Targets exist on the forge: Baton asks before it records a project it has not seen.
    projects = re.compile(rf"{re.escape(API)}/projects/(acme%2F[^/?]+)(\?.*)?$")
    responses.add_callback(responses.GET, projects, callback=_project)


def _project(request: Any) -> tuple[int, dict[str, str], str]:
    path = unquote(str(request.path_url).split("/projects/", 1)[1].split("?", 1)[0])
    body = {
        "id": 500 + sum(map(ord, path)),
        "path_with_namespace": path,
        "default_branch": "main",
        "web_url": f"https://gl.example.com/{path}",
        "visibility": "private",
    }
    return 200, {"Content-Type": "application/json"}, json.dumps(body)


def mr_hook(
    action: str, *, actor: str, author_id: int, project_id: int = 42, sha: str = SHA
) -> dict[str, Any]:
    return {
        "object_kind": "merge_request",
        "user": {"id": PEOPLE.get(actor, 99), "username": actor, "name": actor},
        "project": {
            "id": project_id,
            "path_with_namespace": "acme/app",
            "web_url": "https://gl.example.com/acme/app",
            "visibility_level": 0,
        },
        "object_attributes": {
            "iid": 7,
            "action": action,
            "author_id": author_id,
            "source_branch": "feature",
            "target_branch": "main",
            "source_project_id": 42,
            "target_project_id": 42,
            "title": "Change",
            "url": "https://gl.example.com/acme/app/-/merge_requests/7",
            "last_commit": {"id": sha, "message": "change"},
        },
    }


def deliver(client: Client, payload: dict[str, Any], key: str, event: str) -> Delivery:
    """POST a signed hook to Baton's intake; the stored delivery."""
    body = json.dumps(payload).encode()
    forge = Forge.objects.get(slug="gl")
    response = post_webhook(client, forge, "merge_request__open", body=body, key=key, event=event)
    assert response.status_code == 202, response.content
    return Delivery.objects.get(dedupe_key=key)
