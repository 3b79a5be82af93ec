"""Web hardening (issue 10): HTTPS-only cookies, HSTS, redirects and a Content-Security-Policy in
production settings (and none of it in DEBUG over plain http); sign-in lock-out; API tokens
stored hashed, expiring, revoked from the admin and on a password change; /readyz without
exception text; schema and docs behind sign-in; `manage.py check --deploy` clean."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import OperationalError
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from chains.models import AuditEvent
from dashboard.api import tokens
from tests import factories as f

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery staple"
STRONG_KEY = "k7#Qm2!vX9$pL4@wR8^tY1&zN6*bH3(cJ5)eF0-gD_sA+uK=oI~"  # 52 characters, many kinds
HOST = "baton.example.com"


def production_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BATON_", "DJANGO_"))}
    env.update(DEBUG="false", SECRET_KEY=STRONG_KEY, ALLOWED_HOSTS=HOST)
    env.update(extra)
    return env


def in_production(code: str, **extra: str) -> Any:
    """Run ``code`` (which prints JSON) in a fresh process with production settings."""
    prelude = (
        "import json, django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', "
        "'config.settings'); django.setup()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", prelude + code],
        cwd=ROOT,
        env=production_env(**extra),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


PROBE = f"""
from django.test import Client
client = Client(HTTP_HOST={HOST!r})
over_https = client.get("/login/", secure=True)
over_http = client.get("/login/")
probe = client.get("/healthz")
forwarded = client.get("/login/", headers={{"X-Forwarded-Proto": "https"}})
cookie = over_https.cookies.get("csrftoken")
print(json.dumps({{
    "hsts": over_https.headers.get("Strict-Transport-Security"),
    "csp": over_https.headers.get("Content-Security-Policy"),
    "csrf_cookie_secure": bool(cookie and cookie["secure"]),
    "http_status": over_http.status_code,
    "http_location": over_http.headers.get("Location"),
    "probe_status": probe.status_code,
    "forwarded_status": forwarded.status_code,
}}))
"""


def test_production_settings_send_hsts_secure_cookies_csp_and_redirect_http() -> None:
    seen = in_production(PROBE)
    assert seen["hsts"] == "max-age=31536000; includeSubDomains"
    assert seen["csrf_cookie_secure"] is True
    assert "script-src 'self'" in seen["csp"] and "unsafe-inline" not in seen["csp"]
    assert seen["http_status"] == 301 and seen["http_location"] == f"https://{HOST}/login/"
    assert seen["probe_status"] == 200  # probes over plain http are not redirected
    # A client's own X-Forwarded-Proto is not believed unless a proxy header is configured.
    assert seen["forwarded_status"] == 301


def test_behind_a_tls_proxy_the_configured_header_counts_as_https() -> None:
    seen = in_production(PROBE, BATON_PROXY_SSL_HEADER="X-Forwarded-Proto")
    assert seen["forwarded_status"] == 200


def test_production_defaults_of_every_hardening_setting() -> None:
    seen = in_production(
        "from django.conf import settings as s\n"
        "print(json.dumps([s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT,"
        " s.SECURE_HSTS_SECONDS, s.BATON_API_DOCS_REQUIRE_LOGIN]))"
    )
    assert seen == [True, True, True, 31536000, True]


def test_check_deploy_is_clean_with_production_settings() -> None:
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=production_env(),
        capture_output=True,
        text=True,
        timeout=180,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "System check identified no issues" in output, output


def test_debug_over_plain_http_keeps_https_only_settings_off(client: Client, db: None) -> None:
    # `make run` and the browser tests: DEBUG=true, http://127.0.0.1:8000.
    response = client.get("/login/")
    assert response.status_code == 200
    assert "Strict-Transport-Security" not in response.headers
    assert not response.cookies["csrftoken"]["secure"]


# --- Content-Security-Policy --------------------------------------------------------------------

INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
INLINE_STYLE = re.compile(r"<style\b|\sstyle=", re.IGNORECASE)
EVENT_HANDLER = re.compile(r"\son[a-z]+=", re.IGNORECASE)


def _assert_csp_holds(response: Any, url: str) -> None:
    assert response.status_code == 200, url
    policy = response.headers.get("Content-Security-Policy", "")
    assert "default-src 'self'" in policy and "script-src 'self'" in policy, url
    assert "style-src 'self'" in policy and "unsafe" not in policy, url
    html = response.content.decode()
    assert not INLINE_SCRIPT.search(html), f"{url}: inline script"
    assert not INLINE_STYLE.search(html), f"{url}: inline style"
    assert not EVENT_HANDLER.search(html), f"{url}: inline event handler"
    # htmx evaluates trigger filters ("every 1s [cond]") from strings, which the CSP refuses.
    for trigger in re.findall(r'hx-trigger="([^"]*)"', html):
        assert "[" not in re.sub(r"from:\S+", "", trigger), f"{url}: {trigger} needs eval"


@pytest.fixture
def chain_with_runs(db: None) -> Any:
    chain = f.chain("acme/app")
    root = f.run(chain, "build", status="success")
    f.run(chain, "deploy", parent=root, status="running")
    return chain


def test_dashboard_pages_carry_a_csp_and_need_no_inline_code(
    client: Client, chain_with_runs: Any
) -> None:
    user = f.user("rita", superuser=True)
    for url in ["/login/", "/api/docs/"]:
        _assert_csp_holds(client.get(url), url)
    client.force_login(user)
    for url in [
        "/",
        f"/chains/{chain_with_runs.pk}/",
        "/releases/",
        f"/repositories/{chain_with_runs.repository_id}/",
        "/admin/",
        reverse("admin:chains_forge_change", args=[chain_with_runs.forge_id]),
    ]:
        _assert_csp_holds(client.get(url), url)


def test_htmx_is_served_from_baton_itself(client: Client, chain_with_runs: Any) -> None:
    client.force_login(f.user("rita", superuser=True))
    html = client.get(f"/chains/{chain_with_runs.pk}/").content.decode()
    sources = re.findall(r'<script[^>]*\bsrc="([^"]+)"', html)
    assert any("htmx" in src for src in sources)
    assert '"allowEval": false' in html
    assert all(src.startswith("/static/") for src in sources), sources


# --- Sign-in lock-out (django-axes) -------------------------------------------------------------


@pytest.fixture
def rita(db: None, settings: Any) -> User:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return User.objects.create_user("rita", password=PASSWORD, is_staff=True)


@pytest.mark.parametrize("url", ["/login/", "/admin/login/"])
def test_after_the_limit_even_the_right_password_is_refused_until_the_cool_off(
    rita: User, settings: Any, url: str
) -> None:
    limit = settings.AXES_FAILURE_LIMIT
    client = Client()
    for _ in range(limit - 1):
        wrong = client.post(url, {"username": "rita", "password": "guess"})
        assert wrong.status_code == 200  # the form again, with its error
    last = client.post(url, {"username": "rita", "password": "guess"})
    assert last.status_code == 429  # the limit is reached: locked out from now on
    refused = client.post(url, {"username": "rita", "password": PASSWORD})
    assert refused.status_code == 429
    assert "Too many failed sign-in attempts" in refused.content.decode()
    assert "_auth_user_id" not in client.session
    # After the cool-off, the right password works again.
    AccessAttempt.objects.update(
        attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(seconds=1)
    )
    accepted = client.post(url, {"username": "rita", "password": PASSWORD})
    assert accepted.status_code == 302
    assert client.session["_auth_user_id"] == str(rita.pk)


def test_an_admin_can_lift_a_lock_out(rita: User, settings: Any) -> None:
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/login/", {"username": "rita", "password": "guess"})
    assert client.post("/login/", {"username": "rita", "password": PASSWORD}).status_code == 429
    call_command("axes_reset", stdout=StringIO())
    assert client.post("/login/", {"username": "rita", "password": PASSWORD}).status_code == 302


def test_failures_below_the_limit_do_not_lock_out(rita: User, settings: Any) -> None:
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        client.post("/login/", {"username": "rita", "password": "guess"})
    assert client.post("/login/", {"username": "rita", "password": PASSWORD}).status_code == 302


# --- API tokens (django-rest-knox) --------------------------------------------------------------


def _api(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    return client


def test_tokens_are_stored_hashed(rita: User) -> None:
    _, secret = tokens.issue(rita)
    row = AuthToken.objects.values().get()
    assert secret not in json.dumps(row, default=str)
    assert _api(secret).get("/api/v1/chains/").status_code == 200


def test_tokens_expire(rita: User, settings: Any) -> None:
    token, secret = tokens.issue(rita)
    assert token.expiry is not None
    assert token.expiry - timezone.now() > timedelta(days=settings.BATON_API_TOKEN_TTL - 1)
    AuthToken.objects.update(expiry=timezone.now() - timedelta(seconds=1))
    assert _api(secret).get("/api/v1/chains/").status_code == 401


def test_a_password_change_revokes_every_token_of_that_user(rita: User) -> None:
    _, first = tokens.issue(rita)
    _, second = tokens.issue(rita)
    other = User.objects.create_user("otto", password=PASSWORD)
    _, others = tokens.issue(other)
    rita.set_password("a whole new password")
    rita.save()
    assert _api(first).get("/api/v1/chains/").status_code == 401
    assert _api(second).get("/api/v1/chains/").status_code == 401
    assert _api(others).get("/api/v1/chains/").status_code == 200


def test_a_password_changed_in_the_admin_revokes_tokens(rita: User, admin_client: Client) -> None:
    _, secret = tokens.issue(rita)
    url = reverse("admin:auth_user_password_change", args=[rita.pk])
    new = "another long passphrase 42"
    answer = admin_client.post(url, {"password1": new, "password2": new, "usable_password": "true"})
    assert answer.status_code == 302
    assert _api(secret).get("/api/v1/chains/").status_code == 401


def test_a_hash_upgrade_at_sign_in_keeps_tokens(rita: User, settings: Any) -> None:
    _, secret = tokens.issue(rita)
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        "django.contrib.auth.hashers.MD5PasswordHasher",
    ]
    assert Client().post("/login/", {"username": "rita", "password": PASSWORD}).status_code == 302
    rita.refresh_from_db()
    assert rita.password.startswith("pbkdf2_")  # upgraded, not changed
    assert _api(secret).get("/api/v1/chains/").status_code == 200


def test_the_admin_lists_tokens_without_their_secret_and_revokes_them(
    rita: User, admin_client: Client
) -> None:
    token, secret = tokens.issue(rita)
    url = reverse("admin:knox_authtoken_changelist")
    html = admin_client.get(url).content.decode()
    assert "rita" in html and token.digest[:8] in html
    assert secret not in html and token.token_key not in html
    answer = admin_client.post(
        url, {"action": "revoke", "_selected_action": [token.pk]}, follow=True
    )
    assert answer.status_code == 200 and "Revoked 1 token" in answer.content.decode()
    assert _api(secret).get("/api/v1/chains/").status_code == 401
    event = AuditEvent.objects.get(action="api_token.revoke")
    assert event.surface == "admin" and "rita" in event.target
    assert secret not in json.dumps([event.target, event.detail])


def test_the_admin_token_page_offers_no_add_or_edit(rita: User, admin_client: Client) -> None:
    token, _ = tokens.issue(rita)
    assert admin_client.get(reverse("admin:knox_authtoken_add")).status_code == 403
    for page in ["change", "history"]:
        answer = admin_client.get(reverse(f"admin:knox_authtoken_{page}", args=[token.pk]))
        assert answer.status_code == 302  # no page per token (its title would be its digest)
        assert answer["Location"] == reverse("admin:knox_authtoken_changelist")


def test_create_api_token_prints_a_working_token_once(rita: User) -> None:
    printed = StringIO()
    call_command("create_api_token", "rita", "--days", "0", stdout=printed, stderr=StringIO())
    secret = printed.getvalue().split()[2]
    assert AuthToken.objects.get().expiry is None  # --days 0: until revoked
    assert _api(secret).get("/api/v1/chains/").status_code == 200


# --- /readyz ------------------------------------------------------------------------------------

LEAK = "could not connect to server db.internal.example:5432 as user baton_prod"


def test_readyz_names_the_database_down_without_exception_text(
    client: Client, db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from config import health

    class BrokenDatabase:
        def cursor(self) -> Any:
            raise OperationalError(LEAK)

    monkeypatch.setattr(health, "connection", BrokenDatabase())
    monkeypatch.setattr(health.celery_app, "connection_for_write", _fine_broker)
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["database"] == "unavailable" and body["down"] == ["database"]
    text = response.content.decode()
    assert "OperationalError" not in text and "db.internal" not in text


def test_readyz_names_the_broker_down_without_exception_text(
    client: Client, db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from config import health

    def broken() -> Any:
        raise ConnectionRefusedError(f"redis://:hunter2@{LEAK}")

    monkeypatch.setattr(health.celery_app, "connection_for_write", broken)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "database": "ok",
        "broker": "unavailable",
        "down": ["broker"],
    }
    assert "ConnectionRefusedError" not in response.content.decode()


class _FineConnection:
    def __enter__(self) -> _FineConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def ensure_connection(self, **kwargs: Any) -> None:
        return None


def _fine_broker() -> _FineConnection:
    return _FineConnection()


# --- Schema and docs behind sign-in -------------------------------------------------------------


def test_schema_and_docs_require_sign_in_when_configured(rita: User, settings: Any) -> None:
    settings.BATON_API_DOCS_REQUIRE_LOGIN = True
    anonymous = APIClient()
    schema = anonymous.get("/api/schema/")
    assert schema.status_code == 401
    docs = anonymous.get("/api/docs/")
    assert docs.status_code == 302 and docs["Location"].startswith("/login/?next=/api/docs/")
    _, secret = tokens.issue(rita)
    assert _api(secret).get("/api/schema/").status_code == 200
    signed_in = Client()
    signed_in.force_login(rita)
    assert signed_in.get("/api/docs/").status_code == 200
    assert signed_in.get("/api/schema/").status_code == 200


def test_schema_and_docs_are_open_when_configured_so(db: None, settings: Any) -> None:
    settings.BATON_API_DOCS_REQUIRE_LOGIN = False
    assert APIClient().get("/api/schema/").status_code == 200
    assert APIClient().get("/api/docs/").status_code == 200


def test_json_answers_go_without_a_policy_but_not_sniffed(client: Client, db: None) -> None:
    """A policy governs documents: JSON is never rendered as one (nosniff), so it carries none
    (config/middleware.py); every HTML page above does."""
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "Content-Security-Policy" not in response.headers
