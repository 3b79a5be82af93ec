"""Settings of "Sign in with GitLab / GitHub" (django-allauth), from the environment.

A forge's button appears when its client id and secret are set:

- ``BATON_SIGNIN_GITLAB_CLIENT_ID``, ``BATON_SIGNIN_GITLAB_SECRET`` (or ``…_SECRET_FILE``),
  ``BATON_SIGNIN_GITLAB_URL`` (the GitLab's root, default https://gitlab.com);
- ``BATON_SIGNIN_GITHUB_CLIENT_ID``, ``BATON_SIGNIN_GITHUB_SECRET`` (or ``…_SECRET_FILE``),
  ``BATON_SIGNIN_GITHUB_URL`` (a GitHub Enterprise Server's root; empty: github.com).

``BATON_SIGNIN_<KIND>_FORGE`` names the slug of the Forge whose accounts these are (default: the
one forge of that kind on the same host). See docs/sign-in.md.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

from config.env import env_str

# What Baton asks each forge for: who you are, your e-mail, your groups / teams (read only).
SCOPES = {"gitlab": ["read_user", "read_api"], "github": ["user:email", "read:org"]}


def _root(name: str, default: str) -> str:
    value = env_str(name, default).strip().rstrip("/")
    if not value:
        return ""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ImproperlyConfigured(f"{name}={value!r} is not an http(s) URL of the forge's root")
    return value


def providers() -> dict[str, dict[str, Any]]:
    """SOCIALACCOUNT_PROVIDERS: one app per forge kind whose client id and secret are set."""
    found: dict[str, dict[str, Any]] = {}
    for kind, default_url in (("gitlab", "https://gitlab.com"), ("github", "")):
        prefix = f"BATON_SIGNIN_{kind.upper()}"
        client_id = env_str(f"{prefix}_CLIENT_ID", "").strip()
        secret = env_str(f"{prefix}_SECRET", "").strip()
        if bool(client_id) != bool(secret):
            missing = f"{prefix}_SECRET" if client_id else f"{prefix}_CLIENT_ID"
            raise ImproperlyConfigured(f"{missing} is not set (sign-in with {kind} needs both)")
        url = _root(f"{prefix}_URL", default_url)
        if not client_id:
            continue
        config: dict[str, Any] = {
            "SCOPE": SCOPES[kind],
            "APPS": [{"client_id": client_id, "secret": secret, "key": "", "settings": {}}],
        }
        if kind == "gitlab":
            config["GITLAB_URL"] = url
            config["APPS"][0]["settings"]["gitlab_url"] = url
        elif url:
            config["GITHUB_URL"] = url  # GitHub Enterprise Server: {url}/login/oauth, {url}/api/v3
        found[kind] = config
    return found


def forge_slugs() -> dict[str, str]:
    """The Forge (by slug) whose accounts each provider signs in, where a setting names it."""
    return {
        kind: slug
        for kind in ("gitlab", "github")
        if (slug := env_str(f"BATON_SIGNIN_{kind.upper()}_FORGE", "").strip())
    }


def origins(configured: dict[str, dict[str, Any]]) -> list[str]:
    """The forges' origins the sign-in form is sent on to (CSP ``form-action``: the browser
    follows Baton's redirect to the forge's authorize page after a form's POST)."""
    found = []
    for kind, config in configured.items():
        url = config.get("GITLAB_URL" if kind == "gitlab" else "GITHUB_URL") or (
            "https://github.com" if kind == "github" else "https://gitlab.com"
        )
        parts = urlsplit(url)
        found.append(f"{parts.scheme}://{parts.netloc}")
    return sorted(set(found))
