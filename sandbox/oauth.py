"""OAuth 2 authorization-code flow of both forges, for "Sign in with GitLab / GitHub".

GitLab: ``GET /oauth/authorize`` (a page where the sandbox user clicks Authorize),
``POST /oauth/token``. GitHub: ``GET /login/oauth/authorize``, ``POST /login/oauth/access_token``.
The tokens it hands out are read by ``/api/v4/user``, ``/api/v4/groups``, ``/api/v3/user``,
``/api/v3/user/emails`` and ``/api/v3/user/teams`` (``OAuthServer.user_of``), each of which
checks the token's scopes as the forge does.

As strict as the forges (docs/sandbox.md, "Sign-in (OAuth 2)"): an unknown client or a
``redirect_uri`` that is not the registered one is an error page, never a redirect; a code is
good once, for ten minutes, for the client and ``redirect_uri`` it was issued to; the client's
secret is checked; scopes beyond the application's are refused.
"""

from __future__ import annotations

import html
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlencode, urlsplit

from sandbox.model import User
from sandbox.state import SandboxState
from sandbox.web import ApiError, Request, Response, Router

CODE_LIFETIME = 600.0  # GitLab and GitHub: an authorization code expires after ten minutes
GITLAB_TOKEN_LIFETIME = 7200  # GitLab's access tokens expire after two hours
GITLAB_SCOPES = ("read_user", "read_api", "api", "openid", "profile", "email")
GITHUB_SCOPES = ("user", "user:email", "read:user", "read:org", "repo")


@dataclass
class OAuthApp:
    forge: str  # "gitlab" | "github"
    client_id: str
    secret: str
    redirect_uri: str
    scopes: tuple[str, ...]
    name: str = "Baton"


@dataclass
class Code:
    app: OAuthApp
    user: User
    redirect_uri: str
    scopes: tuple[str, ...]
    expires_at: float


@dataclass
class Token:
    forge: str
    user: User
    scopes: tuple[str, ...]
    expires_at: float | None


@dataclass
class Memberships:
    """GitLab groups (full path → user id → access level) and GitHub teams
    (org → team slug → user ids)."""

    groups: dict[str, dict[int, int]] = field(default_factory=dict)
    teams: dict[str, dict[str, set[int]]] = field(default_factory=dict)


class OAuthServer:
    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.router: Router = _OAuthRouter()
        self.reset()
        r = self.router
        r.add("GET", "/oauth/authorize", self.gitlab_authorize_page)
        r.add("POST", "/oauth/authorize", self.gitlab_authorize)
        r.add("POST", "/oauth/token", self.gitlab_token)
        r.add("GET", "/login/oauth/authorize", self.github_authorize_page)
        r.add("POST", "/login/oauth/authorize", self.github_authorize)
        r.add("POST", "/login/oauth/access_token", self.github_token)

    def reset(self) -> None:
        self.apps: dict[str, OAuthApp] = {}
        self.codes: dict[str, Code] = {}
        self.tokens: dict[str, Token] = {}
        self.members = Memberships()

    # -- control -------------------------------------------------------------------------------

    def register(self, forge: str, redirect_uri: str, scopes: list[str] | None = None,
                 client_id: str = "", secret: str = "") -> OAuthApp:
        if forge not in ("gitlab", "github"):
            raise ApiError(400, {"error": "forge must be gitlab or github"})
        parts = urlsplit(redirect_uri)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment:
            raise ApiError(400, {"error": "redirect_uri must be an absolute http(s) URL"})
        known = GITLAB_SCOPES if forge == "gitlab" else GITHUB_SCOPES
        wanted = tuple(scopes or (["read_user", "read_api"] if forge == "gitlab"
                                  else ["user:email", "read:org"]))
        if any(s not in known for s in wanted):
            raise ApiError(400, {"error": f"scopes must be among {', '.join(known)}"})
        app = OAuthApp(forge, client_id or secrets.token_hex(16),
                       secret or secrets.token_hex(32), redirect_uri, wanted)
        self.apps[app.client_id] = app
        return app

    def set_group_member(self, group: str, username: str, access_level: int) -> None:
        user = self.state.user(username)
        members = self.members.groups.setdefault(group.strip("/"), {})
        if access_level <= 0:
            members.pop(user.id, None)
        else:
            members[user.id] = access_level

    def set_team_member(self, org: str, team: str, username: str, member: bool = True) -> None:
        user = self.state.user(username)
        ids = self.members.teams.setdefault(org, {}).setdefault(team, set())
        (ids.add if member else ids.discard)(user.id)

    def register_control(self, control: Any) -> None:
        """``/_sandbox/oauth/applications`` (register a client), ``/_sandbox/groups/<path>/
        members/<username>`` (GitLab group membership), ``/_sandbox/github/orgs/<org>/teams/
        <team>/members/<username>`` (GitHub team membership)."""
        routes = [
            ("POST", "/oauth/applications", self._post_application),
            ("PUT", "/groups/<group>/members/<username>", self._put_group_member),
            ("PUT", "/github/orgs/<org>/teams/<team>/members/<username>",
             self._put_team_member),
        ]
        for method, pattern, handler in routes:
            control.router.add(method, pattern, control._wrap(handler))

    def _post_application(self, request: Request) -> Response:
        body = request.json_body()
        scopes = body.get("scopes")
        app = self.register(str(body.get("forge") or ""), str(body.get("redirect_uri") or ""),
                            [str(s) for s in scopes] if isinstance(scopes, list) else None,
                            str(body.get("client_id") or ""), str(body.get("secret") or ""))
        return Response.json({"forge": app.forge, "client_id": app.client_id,
                              "secret": app.secret, "redirect_uri": app.redirect_uri,
                              "scopes": list(app.scopes)}, 201)

    def _put_group_member(self, request: Request, group: str, username: str) -> Response:
        level = request.json_body().get("access_level", 30)
        self.set_group_member(unquote(group), unquote(username), int(level))
        return Response.empty()

    def _put_team_member(self, request: Request, org: str, team: str, username: str
                         ) -> Response:
        member = request.json_body().get("member", True) is not False
        self.set_team_member(unquote(org), unquote(team), unquote(username), member)
        return Response.empty()

    # -- what the API endpoints ask ------------------------------------------------------------

    def token(self, credential: str, forge: str) -> Token | None:
        """The live OAuth token ``credential`` of ``forge`` (None: not an OAuth token)."""
        found = self.tokens.get(credential) if credential else None
        if found is None or found.forge != forge:
            return None
        if found.expires_at is not None and found.expires_at <= time.time():
            del self.tokens[credential]
            return None
        return found

    def looks_like_oauth(self, credential: str, forge: str) -> bool:
        prefix = "gloas-" if forge == "gitlab" else "gho_"
        return credential.startswith(prefix)

    # -- GitLab ---------------------------------------------------------------------------------

    def gitlab_authorize_page(self, request: Request) -> Response:
        app, redirect_uri, scopes = self._check_authorize(request, "gitlab")
        return _page(app, request, redirect_uri, scopes, "/oauth/authorize")

    def gitlab_authorize(self, request: Request) -> Response:
        return self._authorize(request, "gitlab")

    def gitlab_token(self, request: Request) -> Response:
        params = request.params
        client_id, secret = _client_credentials(request)
        app = self.apps.get(client_id)
        if app is None or app.forge != "gitlab" or not secrets.compare_digest(app.secret, secret):
            return Response.json({"error": "invalid_client", "error_description":
                                  "Client authentication failed due to unknown client, no client "
                                  "authentication included, or unsupported authentication "
                                  "method."}, 401)
        if params.get("grant_type") != "authorization_code":
            return Response.json({"error": "unsupported_grant_type"}, 400)
        code = self._redeem(app, str(params.get("code") or ""),
                            str(params.get("redirect_uri") or ""))
        if code is None:
            return Response.json({"error": "invalid_grant", "error_description":
                                  "The provided authorization grant is invalid, expired, revoked, "
                                  "does not match the redirection URI used in the authorization "
                                  "request, or was issued to another client."}, 400)
        token = "gloas-" + secrets.token_hex(32)
        self.tokens[token] = Token("gitlab", code.user, code.scopes,
                                   time.time() + GITLAB_TOKEN_LIFETIME)
        return Response.json({"access_token": token, "token_type": "Bearer",
                              "expires_in": GITLAB_TOKEN_LIFETIME,
                              "refresh_token": secrets.token_hex(32),
                              "scope": " ".join(code.scopes), "created_at": int(time.time())})

    # -- GitHub ---------------------------------------------------------------------------------

    def github_authorize_page(self, request: Request) -> Response:
        app, redirect_uri, scopes = self._check_authorize(request, "github")
        return _page(app, request, redirect_uri, scopes, "/login/oauth/authorize")

    def github_authorize(self, request: Request) -> Response:
        return self._authorize(request, "github")

    def github_token(self, request: Request) -> Response:
        params = request.params
        client_id, secret = _client_credentials(request)
        app = self.apps.get(client_id)
        if app is None or app.forge != "github" or not secrets.compare_digest(app.secret, secret):
            return _github_answer(request, {
                "error": "incorrect_client_credentials",
                "error_description": "The client_id and/or client_secret passed are incorrect."})
        code = self._redeem(app, str(params.get("code") or ""),
                            str(params.get("redirect_uri") or app.redirect_uri))
        if code is None:
            return _github_answer(request, {
                "error": "bad_verification_code",
                "error_description": "The code passed is incorrect or expired."})
        token = "gho_" + secrets.token_hex(18)
        self.tokens[token] = Token("github", code.user, code.scopes, None)
        return _github_answer(request, {"access_token": token, "token_type": "bearer",
                                        "scope": ",".join(code.scopes)})

    # -- shared ---------------------------------------------------------------------------------

    def _check_authorize(self, request: Request, forge: str
                         ) -> tuple[OAuthApp, str, tuple[str, ...]]:
        """The application, redirect URI and scopes of an authorization request; an error page
        (never a redirect) for an unknown client or a redirect URI not registered."""
        params = request.params
        app = self.apps.get(str(params.get("client_id") or ""))
        if app is None or app.forge != forge:
            raise _error_page(400, "Client authentication failed: unknown client.")
        redirect_uri = str(params.get("redirect_uri") or app.redirect_uri)
        if redirect_uri != app.redirect_uri:
            raise _error_page(400, "The redirect URI included is not valid.")
        if forge == "gitlab" and params.get("response_type") != "code":
            raise _error_page(400, "The authorization server does not support this response type.")
        separator = " " if forge == "gitlab" else None
        raw = str(params.get("scope") or "")
        wanted = tuple(s for s in (raw.split(separator) if separator else
                                   raw.replace(",", " ").split()) if s)
        if forge == "gitlab" and not wanted:
            wanted = app.scopes
        if any(s not in app.scopes for s in wanted):
            raise _error_page(400, "The requested scope is invalid, unknown, or malformed.")
        return app, redirect_uri, wanted

    def _authorize(self, request: Request, forge: str) -> Response:
        app, redirect_uri, scopes = self._check_authorize(request, forge)
        params = request.params
        state = str(params.get("state") or "")
        if params.get("decision") != "authorize":
            query = {"error": "access_denied", "error_description": "The resource owner or "
                     "authorization server denied the request."}
            if state:
                query["state"] = state
            return _redirect(redirect_uri, query)
        username = str(params.get("username") or "").strip()
        if not username or username not in {u.username for u in self.state.users.values()}:
            raise _error_page(400, "Sign in as a sandbox user first (no such user).")
        code = secrets.token_urlsafe(24)
        # GitHub: no scope asked, none given (public information only).
        self.codes[code] = Code(app, self.state.user(username), redirect_uri, scopes,
                                time.time() + CODE_LIFETIME)
        query = {"code": code}
        if state:
            query["state"] = state
        return _redirect(redirect_uri, query)

    def _redeem(self, app: OAuthApp, code: str, redirect_uri: str) -> Code | None:
        found = self.codes.pop(code, None)  # good once, whatever happens next
        if found is None or found.app is not app or found.expires_at <= time.time():
            return None
        if redirect_uri != found.redirect_uri:
            return None
        return found


class _OAuthRouter(Router):
    """Answers the two forges' OAuth paths only."""

    PATHS = ("/oauth/", "/login/oauth/")

    def matches(self, path: str) -> bool:
        return path.startswith(self.PATHS)


def _client_credentials(request: Request) -> tuple[str, str]:
    params = request.params
    auth = request.header("authorization")
    if auth.lower().startswith("basic "):
        import base64

        try:
            pair = base64.b64decode(auth.split(" ", 1)[1]).decode()
        except ValueError:
            return "", ""
        client_id, _, secret = pair.partition(":")
        return client_id, secret
    return str(params.get("client_id") or ""), str(params.get("client_secret") or "")


def _github_answer(request: Request, data: dict[str, Any]) -> Response:
    """GitHub answers the token exchange with 200 even for errors, form-encoded unless the
    client accepts JSON."""
    if "application/json" in request.header("accept"):
        return Response.json(data)
    return Response(200, urlencode(data).encode(), "application/x-www-form-urlencoded")


def _redirect(uri: str, query: dict[str, str]) -> Response:
    joiner = "&" if "?" in uri else "?"
    return Response(302, b"", "text/html", {"Location": uri + joiner + urlencode(query)})


class _PageError(ApiError):
    """An error shown as a page to the person at the browser (never a redirect)."""

    def response(self) -> Response:
        body = ("<!doctype html><title>Sign-in error</title><h1>Error</h1>"
                f"<p>{html.escape(str(self.body))}</p>")
        return Response(self.status, body.encode(), "text/html; charset=utf-8")


def _error_page(status: int, message: str) -> ApiError:
    return _PageError(status, message)


def _page(app: OAuthApp, request: Request, redirect_uri: str, scopes: tuple[str, ...],
          action: str) -> Response:
    """The authorize page: which sandbox user signs in (the sandbox has no sessions) and the
    Authorize / Deny buttons. Every parameter goes back in hidden fields, escaped."""
    params = request.params
    hidden = {k: str(params.get(k) or "") for k in
              ("client_id", "redirect_uri", "response_type", "state", "scope")}
    hidden["redirect_uri"] = redirect_uri
    fields = "".join(
        f'<input type="hidden" name="{k}" value="{html.escape(v, quote=True)}">'
        for k, v in hidden.items()
    )
    forge = "GitLab" if app.forge == "gitlab" else "GitHub"
    body = (
        "<!doctype html><html><head><meta charset=utf-8>"
        f"<title>Authorize {html.escape(app.name)} · Sandbox {forge}</title></head><body>"
        f"<h1>Authorize {html.escape(app.name)} to use your account?</h1>"
        f"<p>Sandbox {forge}. Scopes: {html.escape(', '.join(scopes) or '(none)')}</p>"
        f'<form method="post" action="{action}">{fields}'
        '<label>Signed in as <input name="username" id="username" autocomplete="off"></label> '
        '<button type="submit" name="decision" value="authorize">Authorize</button> '
        '<button type="submit" name="decision" value="deny">Deny</button></form></body></html>'
    )
    return Response(200, body.encode(), "text/html; charset=utf-8")
