"""Finding 3 of issue 9: glob patterns in `branches:` and `=~` in `if:` used to compile to
backtracking regular expressions (``"**a"*12 + "!"`` against a 40-character title took 85 s and
froze the worker). They are matched in linear time now, capped in length and number, and the
dashboard's dry run gives up after BATON_PLAN_TIME_LIMIT seconds with a message."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
import responses
from django.contrib.auth.models import User
from django.test import Client

from chains.conditions import ConditionError, Context, glob_match, parse_condition
from chains.config import ConfigError, parse_config
from chains.globs import PatternError, branch_matches
from chains.models import Forge, Grant, Repository
from chains.planner import Change, plan

EVIL = "**a" * 12 + "!"
EVIL_SINGLE = "*a" * 40 + "!"
TITLE = "a" * 40


def _fast(fn: Any, *args: Any) -> Any:
    started = time.perf_counter()
    result = fn(*args)
    assert time.perf_counter() - started < 0.1
    return result


def test_the_reported_pattern_is_answered_at_once() -> None:
    assert _fast(glob_match, EVIL, TITLE) is False
    assert _fast(glob_match, EVIL_SINGLE, "a" * 80) is False
    assert _fast(glob_match, "**a" * 80 + "!", "a" * 10_000) is False
    assert _fast(glob_match, "**a" * 12, TITLE) is True


def test_condition_with_the_reported_pattern_is_fast() -> None:
    condition = parse_condition(f'title =~ "{EVIL}" || message !~ "{EVIL_SINGLE}"')
    context = Context(title=TITLE, message="a" * 5000)
    assert _fast(condition.evaluate, context) is True


def test_branches_with_the_reported_pattern_plan_fast() -> None:
    config = parse_config(f'downstream:\n  - project: acme/api\n    branches: "{EVIL} !{EVIL}"\n')
    change = Change(
        forge="gitlab",
        project="acme/app",
        project_url="",
        number=1,
        url="",
        source_branch=TITLE,
        target_branch="a" * 200,
        head_sha="a" * 40,
        upstream_ref="refs/merge-requests/1/head",
    )
    result = _fast(plan, change, config)
    assert not result.runs and "does not match" in result.excluded[0][1]


def test_no_regular_expression_is_compiled_from_a_pattern(monkeypatch: Any) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a user pattern reached the re module")

    monkeypatch.setattr(re, "compile", refuse)
    monkeypatch.setattr(re, "match", refuse)
    assert glob_match("release/**/v?.*", "release/a/b/v1.x")


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        ("main", "main", True),
        ("release/*", "release/1.0", True),
        ("release/*", "release/1.0/hotfix", False),
        ("release/**", "release/1.0/hotfix", True),
        ("**/docs/**", "a/b/docs/c.md", True),
        ("docs/**", "docs/", True),
        ("*", "", True),
        ("a?c", "abc", True),
        ("a?c", "a/c", False),
        ("*.md", "dir/readme.md", False),
        ("**.md", "dir/readme.md", True),
        ("a***b", "a/x/b", True),
        ("a.b", "axb", False),
        ("[ab]", "a", False),
        ("[ab]", "[ab]", True),
    ],
)
def test_glob_semantics_are_kept(pattern: str, text: str, expected: bool) -> None:
    assert glob_match(pattern, text) is expected


def test_too_long_patterns_are_refused_with_the_setting_named(settings: Any) -> None:
    settings.BATON_MAX_PATTERN_LENGTH = 20
    long = "release/" + "x" * 30
    with pytest.raises(ConfigError) as caught:
        parse_config(f'downstream:\n  - project: acme/api\n    branches: "main !{long}"\n')
    assert caught.value.field == "downstream[0].branches" and caught.value.line == 3
    assert "BATON_MAX_PATTERN_LENGTH" in str(caught.value) and "at most 20" in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        parse_config(f"downstream:\n  - project: acme/api\n    if: 'title =~ \"{long}\"'\n")
    assert caught.value.field == "downstream[0].if" and "BATON_MAX_PATTERN_LENGTH" in str(
        caught.value
    )
    with pytest.raises(PatternError):
        glob_match(long, "x")


def test_too_many_patterns_are_refused(settings: Any) -> None:
    settings.BATON_MAX_PATTERNS = 3
    with pytest.raises(ConfigError, match="BATON_MAX_PATTERNS"):
        parse_config('downstream:\n  - project: acme/api\n    branches: "a b c d"\n')
    with pytest.raises(ConditionError, match="at most 3"):
        parse_condition('changes("a", "b") || title =~ "c" || branch !~ "d"')
    assert branch_matches(("a", "b", "!c"), "a")


def test_a_too_long_pattern_from_a_variable_fails_the_condition_in_words(settings: Any) -> None:
    settings.BATON_MAX_PATTERN_LENGTH = 10
    condition = parse_condition("title =~ $PATTERN")
    with pytest.raises(ConditionError, match="BATON_MAX_PATTERN_LENGTH"):
        condition.evaluate(Context(title="x", variables={"PATTERN": "*" * 11}))


# -- the dashboard plan page gives up in time -------------------------------------------------

API = "https://gl.example.com/api/v4"
MANY_PARAMS = "downstream:\n" + "".join(
    f"  - {{key: t{i}, project: acme/t{i}, params_file: ci/p{i}.env}}\n" for i in range(30)
)


@pytest.fixture
def signed_in(db: None) -> Client:
    user = User.objects.create_user("rita", password="x")
    Grant.objects.create(user=user, projects="*", actions=["view", "trigger"])
    client = Client()
    client.force_login(user)
    return client


@responses.activate
def test_plan_page_gives_up_after_the_time_limit(signed_in: Client, settings: Any) -> None:
    settings.BATON_PLAN_TIME_LIMIT = 0.5
    forge = Forge.objects.create(
        kind="gitlab",
        slug="gl",
        name="GitLab",
        api_url="https://gl.example.com",
        token="t",
        webhook_secret="s",
    )
    repo = Repository.objects.create(forge=forge, path="acme/app", default_branch="main")
    responses.get(
        f"{API}/projects/acme%2Fapp/merge_requests/1",
        json={
            "iid": 1,
            "web_url": "u",
            "title": "t",
            "author": {"username": "rita"},
            "source_branch": "feature",
            "target_branch": "main",
            "sha": "a" * 40,
            "source_project_id": 1,
            "target_project_id": 1,
            "state": "opened",
        },
    )
    responses.get(f"{API}/projects/acme%2Fapp/repository/files/.baton.yml/raw", body=MANY_PARAMS)

    def slow(request: Any) -> tuple[int, dict[str, str], str]:
        time.sleep(0.2)  # a slow forge: 30 params files would take 6 s
        return 200, {}, "A=1\n"

    responses.add_callback(
        responses.GET,
        re.compile(rf"{re.escape(API)}/projects/acme%2Fapp/repository/files/ci%2Fp\d+\.env/raw"),
        callback=slow,
    )
    started = time.perf_counter()
    response = signed_in.get(f"/repositories/{repo.pk}/changes/1/plan/")
    elapsed = time.perf_counter() - started
    assert response.status_code == 503
    assert "gave up" in response.content.decode() and "BATON_PLAN_TIME_LIMIT" in (
        response.content.decode()
    )
    # Without the limit it would read all 30 files (6 s); the margin is for a loaded machine.
    assert elapsed < 4.0
    assert len(responses.calls) < 10  # it stopped asking the forge
