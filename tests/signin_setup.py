"""Point Baton's "Sign in with GitLab / GitHub" at a sandbox forge, as the settings module does
from BATON_SIGNIN_* variables (config/signin.py), for tests that run Baton in-process."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from allauth.socialaccount.providers.github.views import GitHubOAuth2Adapter

from config import signin
from sandbox.client import SandboxClient


def configure(
    sandbox: SandboxClient, baton_url: str, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> dict[str, dict[str, Any]]:
    """Register an OAuth application per forge in the sandbox, with Baton's callback URL, and
    configure Baton with it. Returns the applications."""
    url = sandbox.base_url
    apps = {
        kind: sandbox.register_oauth_app(kind, f"{baton_url}/accounts/{kind}/login/callback/")
        for kind in ("gitlab", "github")
    }
    providers = {
        "gitlab": {
            "GITLAB_URL": url,
            "SCOPE": signin.SCOPES["gitlab"],
            "APPS": [
                {
                    "client_id": apps["gitlab"]["client_id"],
                    "secret": apps["gitlab"]["secret"],
                    "settings": {"gitlab_url": url},
                }
            ],
        },
        "github": {
            "GITHUB_URL": url,
            "SCOPE": signin.SCOPES["github"],
            "APPS": [
                {"client_id": apps["github"]["client_id"], "secret": apps["github"]["secret"]}
            ],
        },
    }
    settings.SOCIALACCOUNT_PROVIDERS = providers
    policy = copy.deepcopy(settings.CONTENT_SECURITY_POLICY)
    policy["DIRECTIVES"]["form-action"] = ["'self'", *signin.origins(providers)]
    settings.CONTENT_SECURITY_POLICY = policy
    # allauth reads GITHUB_URL once, when it loads: point its GitHub adapter at the sandbox.
    for name, path in (
        ("authorize_url", "/login/oauth/authorize"),
        ("access_token_url", "/login/oauth/access_token"),
        ("profile_url", "/api/v3/user"),
        ("emails_url", "/api/v3/user/emails"),
    ):
        monkeypatch.setattr(GitHubOAuth2Adapter, name, url + path)
    return apps
