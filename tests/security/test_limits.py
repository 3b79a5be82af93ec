"""Every input is bounded: `.baton.yml` and params files (bytes, alias expansion, nesting,
targets, variables), webhook bodies (size before authentication, JSON depth, NUL characters)
and query parameters. Each limit is a setting; beyond it the answer is a clear error in words,
never a 500, and nothing is stored half-way."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import responses
from django.test import Client

from chains.config import ConfigError, parse_config
from chains.dotenv import parse_dotenv
from chains.models import Delivery, Forge
from tests import factories
from tests.conftest import load_fixture

# --- .baton.yml --------------------------------------------------------------------------------


def _alias_file(targets: int, variables: int) -> str:
    """The reported file: one anchored block of variables, reused by every target."""
    lines = ["downstream:", "  - key: t0", "    project: acme/x0", "    variables: &v"]
    lines += [f"      V{i}: x" for i in range(variables)]
    lines += [f"  - {{key: t{n}, project: acme/x{n}, variables: *v}}" for n in range(1, targets)]
    return "\n".join(lines) + "\n"


def test_the_reported_alias_file_is_refused_quickly_in_words() -> None:
    text = _alias_file(1000, 5000)  # 163 KiB that expands to 5 million variables
    assert len(text.encode()) < 200 * 1024
    started = time.monotonic()
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert time.monotonic() - started < 10  # parsing 163 KiB; walking 5 million would take minutes
    assert "aliases" in str(info.value) and "BATON_MAX_CONFIG_NODES" in str(info.value)


def test_variables_per_target_stop_it_too(settings: Any) -> None:
    settings.BATON_MAX_CONFIG_NODES = 10**8  # so that only the variables limit is left
    started = time.monotonic()
    with pytest.raises(ConfigError) as info:
        parse_config(_alias_file(1000, 5000))
    assert time.monotonic() - started < 10  # parsing 163 KiB; walking 5 million would take minutes
    assert "has 5000 variables; at most 200" in str(info.value)


def test_nested_aliases_cannot_multiply() -> None:
    """The classic: each level ten times the one below."""
    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x","x","x"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    with pytest.raises(ConfigError, match="aliases"):
        parse_config("variables:\n" + "\n".join("  " + line for line in lines))


def test_an_alias_inside_itself_is_refused() -> None:
    with pytest.raises(ConfigError, match="contains it"):
        parse_config("downstream: &d\n  - *d\n")


def test_deep_nesting_is_refused_not_a_recursion_error() -> None:
    with pytest.raises(ConfigError, match="nested more than"):
        parse_config("variables: " + "[" * 20000 + "]" * 20000)


def test_a_character_that_is_not_text_is_invalid_yaml_in_words() -> None:
    """libyaml reads UTF-8: a lone surrogate (a file decoded with ``surrogateescape``) is an
    error in words, as PyYAML's own reader says it, not a crash."""
    with pytest.raises(ConfigError, match="not valid YAML: unacceptable character #xdc80"):
        parse_config("variables:\n  A: x\udc80y\n")


def test_file_size(settings: Any) -> None:
    settings.BATON_MAX_CONFIG_BYTES = 2048
    with pytest.raises(ConfigError, match="at most 2048 are read"):
        parse_config("# " + "x" * 4000 + "\n")


def test_targets_per_file(settings: Any) -> None:
    settings.BATON_MAX_TARGETS = 3
    text = "downstream:\n" + "".join(f"  - project: acme/p{i}\n" for i in range(4))
    with pytest.raises(ConfigError, match="has 4 targets; at most 3") as info:
        parse_config(text)
    assert info.value.line == 2


def test_variables_per_target(settings: Any) -> None:
    settings.BATON_MAX_VARIABLES = 2
    text = "downstream:\n  - project: acme/p\n    variables: {A: 1, B: 2, C: 3}\n"
    with pytest.raises(ConfigError, match="has 3 variables; at most 2") as info:
        parse_config(text)
    assert info.value.field == "downstream[0].variables"


def test_params_files_are_bounded(settings: Any) -> None:
    settings.BATON_MAX_VARIABLES = 2
    with pytest.raises(ConfigError, match=r"ci/p\.env has 3 variables"):
        parse_dotenv("A=1\nB=2\nC=3\n", path="ci/p.env")
    settings.BATON_MAX_CONFIG_BYTES = 1024
    with pytest.raises(ConfigError, match="at most 1024"):
        parse_dotenv("A=" + "x" * 2000, path="ci/p.env")


# --- webhooks ----------------------------------------------------------------------------------


@pytest.fixture
def forge(db: None) -> Forge:
    from django.core.cache import caches

    caches["local"].clear()
    return Forge.objects.create(
        kind="gitlab",
        slug="gl",
        name="GitLab",
        api_url="http://127.0.0.1:1",
        token="glpat-secret-token",
        webhook_secret="hook-secret",
    )


HEADERS = {"X-Gitlab-Token": "hook-secret", "X-Gitlab-Event": "Merge Request Hook"}


def _post(client: Client, body: bytes | str, **headers: str):  # type: ignore[no-untyped-def]
    return client.post("/hooks/gl/", data=body, content_type="application/json", headers=headers)


def test_a_body_above_the_limit_is_413_in_json_before_authentication(
    client: Client, forge: Forge, settings: Any
) -> None:
    settings.BATON_MAX_WEBHOOK_BYTES = 4096
    body = json.dumps({"padding": "x" * 5000})
    # No token at all: the size is refused before the secret is even looked at.
    response = _post(client, body, **{"X-Gitlab-Event": "Merge Request Hook"})
    assert response.status_code == 413
    assert response["Content-Type"] == "application/json"
    assert "larger than 4096 bytes" in response.json()["error"]
    assert not Delivery.objects.exists()


def test_bodies_above_djangos_upload_cap_are_accepted_up_to_the_limit(
    client: Client, forge: Forge, django_capture_on_commit_callbacks: Any
) -> None:
    payload = load_fixture("gitlab", "merge_request__open")
    payload["object_attributes"]["description"] = "x" * (3 * 1024 * 1024)  # 3 MB > 2.5 MB
    with django_capture_on_commit_callbacks(execute=False):
        response = _post(client, json.dumps(payload), **HEADERS, **{"Idempotency-Key": "big"})
    assert response.status_code == 202, response.content[:200]
    assert Delivery.objects.filter(dedupe_key="big").exists()


def test_deep_json_is_400_with_a_message(client: Client, forge: Forge) -> None:
    body = "[" * 100_000 + "]" * 100_000
    response = _post(client, body, **HEADERS)
    assert response.status_code == 400
    assert "nests" in response.json()["error"]
    assert not Delivery.objects.exists()


def test_moderately_deep_json_is_refused_before_it_is_stored(client: Client, forge: Forge) -> None:
    payload = load_fixture("gitlab", "merge_request__open")
    deep: Any = "bottom"
    for _ in range(200):
        deep = {"d": deep}
    payload["extra"] = deep
    response = _post(client, json.dumps(payload), **HEADERS)
    assert response.status_code == 400
    assert "BATON_MAX_JSON_DEPTH" in response.json()["error"]


def test_a_nul_in_the_payload_is_stripped_not_a_500(
    client: Client, forge: Forge, django_capture_on_commit_callbacks: Any
) -> None:
    payload = load_fixture("gitlab", "merge_request__open")
    payload["object_attributes"]["title"] = "evil\u0000title"
    payload["user"]["name\u0000"] = "x"
    with django_capture_on_commit_callbacks(execute=False):
        response = _post(client, json.dumps(payload), **HEADERS, **{"Idempotency-Key": "nul"})
    assert response.status_code == 202
    stored = Delivery.objects.get(dedupe_key="nul").payload
    assert stored["object_attributes"]["title"] == "eviltitle"
    assert "name" in stored["user"]


def test_a_lone_surrogate_in_the_payload_is_not_a_500(
    client: Client, forge: Forge, django_capture_on_commit_callbacks: Any
) -> None:
    body = json.dumps(load_fixture("gitlab", "merge_request__open")).replace(
        '"title": "', '"title": "\\ud800', 1
    )
    assert "\\ud800" in body
    with django_capture_on_commit_callbacks(execute=False):
        response = _post(client, body, **HEADERS, **{"Idempotency-Key": "surrogate"})
    assert response.status_code == 202
    assert Delivery.objects.filter(dedupe_key="surrogate").exists()


# --- query parameters and pages ----------------------------------------------------------------


@pytest.fixture
def staff(db: None) -> Client:
    from django.contrib.auth.models import User

    from chains.models import Grant

    user = User.objects.create_user("rita", password="pw-rita-123")
    Grant.objects.create(user=user, projects="*", actions=["view"])
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("url", ["/releases/?ref=%00", "/releases/?ref=main%00"])
def test_a_nul_in_the_query_is_400_in_words(staff: Client, url: str) -> None:
    response = staff.get(url)
    assert response.status_code == 400
    assert b"NUL character" in response.content


@pytest.mark.parametrize(
    "url",
    ["/?page=99999999999999999999999", "/releases/?ref=main&shown=99999999999999999999999"],
)
def test_huge_numbers_in_the_query_are_not_a_500(staff: Client, url: str) -> None:
    factories.chain("acme/app")
    assert staff.get(url).status_code < 500


@responses.activate
def test_the_plan_page_for_a_missing_change_is_404(staff: Client) -> None:
    repository = factories.repository("acme/api")
    responses.get(
        "https://gl.example.com/api/v4/projects/acme%2Fapi/merge_requests/4242",
        status=404,
        json={"message": "404 Not found"},
    )
    response = staff.get(f"/repositories/{repository.pk}/changes/4242/plan/")
    assert response.status_code == 404
    assert b"no change 4242" in response.content


def test_a_workflow_file_nested_too_deeply_is_a_forge_error_in_words() -> None:
    from unittest import mock

    from bots.forges.base import ForgeError
    from bots.forges.github import GitHubForge

    forge = GitHubForge("http://github.test/api/v3", "tok", timeout=2)
    deep = "on:\n  workflow_dispatch:\n    inputs: " + "[" * 5000 + "]" * 5000 + "\n"
    with (
        mock.patch.object(GitHubForge, "read_file", return_value=deep),
        pytest.raises(ForgeError, match="nested more than") as info,
    ):
        forge._read_workflow_inputs("acme/api", "ci.yml", "main")
    assert info.value.permanent


@pytest.mark.parametrize("number", ["0", "2147483648", "999999999999999999999999"])
def test_the_plan_page_for_a_change_no_forge_could_have_is_404_without_asking(
    staff: Client, number: str
) -> None:
    # Over 20 digits the adapters refuse the number before asking (a 502 before); no forge
    # numbers a change 0 or past 2^31 - 1 either.
    repository = factories.repository("acme/api")
    with responses.RequestsMock():  # any request to the forge would fail the test
        response = staff.get(f"/repositories/{repository.pk}/changes/{number}/plan/")
    assert response.status_code == 404
    assert f"no change {number}".encode() in response.content


@pytest.mark.parametrize("ref", ["%0A", "%FF", "%ED%A0%80", "%C0%80", "x" * 300, "a%7Fb"])
def test_odd_refs_on_the_release_page_are_not_a_500(staff: Client, ref: str) -> None:
    factories.chain("acme/app")
    assert staff.get(f"/releases/?ref={ref}").status_code < 500
    assert staff.get(f"/releases/?ref={ref}", headers={"HX-Request": "true"}).status_code < 500
