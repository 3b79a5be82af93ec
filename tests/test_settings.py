"""A bad setting stops the start with a message that names it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

MANAGE = Path(__file__).resolve().parent.parent / "manage.py"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"DATABASE_URL": "nosuchdb://x"}, "DATABASE_URL"),
        ({"CELERY_BROKER_URL": "kafka://x"}, "CELERY_BROKER_URL"),
        ({"CACHE_URL": "memcached://x"}, "CACHE_URL"),
        ({"DEBUG": "perhaps"}, "DEBUG"),
        ({"DEBUG": "false", "SECRET_KEY": ""}, "SECRET_KEY"),
        ({"BATON_SWEEP_INTERVAL": "soon"}, "BATON_SWEEP_INTERVAL"),
        ({"BATON_PROXY_SSL_HEADER": "X Forwarded: https"}, "BATON_PROXY_SSL_HEADER"),
        ({"BATON_LOGIN_FAILURE_LIMIT": "0"}, "BATON_LOGIN_FAILURE_LIMIT"),
        ({"BATON_HTTPS": "sometimes"}, "BATON_HTTPS"),
        ({"BATON_SIGNIN_GITLAB_CLIENT_ID": "x"}, "BATON_SIGNIN_GITLAB_SECRET"),
        (
            {
                "BATON_SIGNIN_GITHUB_CLIENT_ID": "x",
                "BATON_SIGNIN_GITHUB_SECRET": "y",
                "BATON_SIGNIN_GITHUB_URL": "github.example.com",
            },
            "BATON_SIGNIN_GITHUB_URL",
        ),
    ],
)
def test_bad_values_fail_loudly(env: dict[str, str], named: str) -> None:
    full = {**os.environ, "DEBUG": "true", **env}
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env=full,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert named in result.stderr


@pytest.mark.parametrize(("debug", "has_demo"), [("true", True), ("false", False)])
def test_the_demo_command_is_only_there_for_local_work(debug: str, has_demo: bool) -> None:
    # `manage.py demo` imports the sandbox forge: a production start must not load it.
    full = {**os.environ, "DEBUG": debug, "SECRET_KEY": "test-only-secret"}
    result = subprocess.run(
        [sys.executable, str(MANAGE), "help", "--commands"],
        env=full,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    commands = result.stdout.split()
    assert ("demo" in commands) is has_demo
    assert "sandbox" in commands  # the stand-in forge itself stays runnable (e2e, benchmarks)


def test_sign_in_providers_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from config import signin

    for name in list(os.environ):
        if name.startswith("BATON_SIGNIN_"):
            monkeypatch.delenv(name)
    assert signin.providers() == {}
    monkeypatch.setenv("BATON_SIGNIN_GITLAB_CLIENT_ID", "id")
    monkeypatch.setenv("BATON_SIGNIN_GITLAB_SECRET", "secret")
    monkeypatch.setenv("BATON_SIGNIN_GITHUB_CLIENT_ID", "id2")
    monkeypatch.setenv("BATON_SIGNIN_GITHUB_SECRET", "secret2")
    monkeypatch.setenv("BATON_SIGNIN_GITHUB_URL", "https://ghe.example.com/")
    found = signin.providers()
    assert found["gitlab"]["GITLAB_URL"] == "https://gitlab.com"
    assert found["gitlab"]["SCOPE"] == ["read_user", "read_api"]
    assert found["github"]["GITHUB_URL"] == "https://ghe.example.com"
    assert signin.origins(found) == ["https://ghe.example.com", "https://gitlab.com"]
