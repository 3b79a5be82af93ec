"""GitHub Apps: registered Apps (with their public keys), their installations on accounts, the JWTs
an App signs, and the installation access tokens it mints with them.

- An App authenticates with a JWT signed RS256 by its private key (``iss`` = the App's id,
  ``exp`` at most 10 minutes ahead, ``iat`` not in the future); the sandbox verifies it against
  the public key it was registered with. A JWT only opens the App's own endpoints (``/app…``,
  ``/repos/{o}/{r}/installation``).
- ``POST /app/installations/{id}/access_tokens`` mints an installation token (``ghs_…``) that
  expires one hour of sandbox time later (``3600 / time_scale`` real seconds). An installation
  token reaches only its installation's repositories; an expired or unknown ``ghs_`` token
  answers 401 ``Bad credentials``.

Tokens registered through ``POST /_sandbox/github/app_tokens`` (no App behind them) never expire
and reach every repository, as before. Any other credential is taken for a personal token.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sandbox.github import entities as ent
from sandbox.github.http import error, not_found, paginate, token_of
from sandbox.github.model import AppToken, gh_time
from sandbox.model import User, now
from sandbox.state import Invalid, NotFound
from sandbox.web import Request, Response

if TYPE_CHECKING:
    from sandbox.github.api import GitHubAPI
    from sandbox.github.state import GitHubState

TOKEN_LIFETIME = 3600.0  # sandbox seconds: an installation token lives an hour
JWT_MAX_AHEAD = 600  # GitHub refuses a JWT whose exp is more than 10 minutes ahead
JWT_LEEWAY = 30  # clock drift tolerated on iat/exp (wall-clock seconds)
DEFAULT_PERMISSIONS = {
    "actions": "write",
    "checks": "write",
    "contents": "read",
    "metadata": "read",
    "pull_requests": "write",
    "statuses": "write",
}
DEFAULT_EVENTS = ["check_run", "issue_comment", "pull_request", "push", "workflow_run"]
BAD_CREDENTIALS = "Bad credentials"
UNDECODABLE_JWT = "A JSON web token could not be decoded"


@dataclass
class GitHubApp:
    id: int
    slug: str
    name: str
    public_key: str  # PEM
    owner: User
    bot: User
    permissions: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_PERMISSIONS))
    events: list[str] = field(default_factory=lambda: list(DEFAULT_EVENTS))
    created_at: float = field(default_factory=now)


@dataclass
class Installation:
    id: int
    app_id: int
    account: User
    repositories: list[str] | None  # full names; None: every repository of the account
    created_at: float = field(default_factory=now)

    def covers(self, full_name: str) -> bool:
        owner = full_name.split("/", 1)[0].lower()
        if owner != self.account.username.lower():
            return False
        if self.repositories is None:
            return True
        return full_name.lower() in {r.lower() for r in self.repositories}


def new_key_pair() -> tuple[str, str]:
    """(private key PEM, public key PEM) of a fresh 2048-bit RSA key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


def looks_like_jwt(credential: str) -> bool:
    return credential.count(".") == 2 and credential.startswith("eyJ")


class GitHubApps:
    """Apps, installations and minted tokens of one ``GitHubState`` (kept in its dicts, so they
    are reset and persisted with the rest of the world)."""

    def __init__(self, github: GitHubState, time_scale: float = 1.0) -> None:
        self.github = github
        self.time_scale = time_scale

    @property
    def apps(self) -> dict[int, GitHubApp]:
        return self.github.apps

    @property
    def installations(self) -> dict[int, Installation]:
        return self.github.installations

    # -- registration (control API) ------------------------------------------------------------

    def register(
        self,
        *,
        slug: str,
        app_id: int | None = None,
        public_key: str | None = None,
        name: str | None = None,
        owner: str | None = None,
        permissions: dict[str, str] | None = None,
        events: list[str] | None = None,
    ) -> tuple[GitHubApp, str | None]:
        """A new App; without ``public_key`` a key pair is made and the private key returned."""
        slug = (slug or "").strip()
        if not slug:
            raise Invalid("slug is required")
        private = None
        if public_key:
            try:
                serialization.load_pem_public_key(public_key.encode())
            except ValueError:
                raise Invalid("public_key is not a PEM public key") from None
        else:
            private, public_key = new_key_pair()
        state = self.github.state
        new_id = int(app_id) if app_id else state.new_id("github_app")
        if new_id in self.apps:
            raise Invalid(f"app {new_id} exists")
        app = GitHubApp(
            new_id,
            slug,
            name or slug,
            public_key,
            state.user(owner),
            state.user(f"{slug}[bot]", name=slug),
            dict(permissions or DEFAULT_PERMISSIONS),
            list(events or DEFAULT_EVENTS),
        )
        self.apps[app.id] = app
        state.changed()
        return app, private

    def install(
        self,
        app_id: int,
        account: str,
        repositories: list[str] | None = None,
        installation_id: int | None = None,
    ) -> Installation:
        app = self.app(app_id)
        if not account:
            raise Invalid("account is required")
        repos = None if repositories is None else [str(r) for r in repositories]
        for full_name in repos or []:
            if full_name.split("/", 1)[0].lower() != account.lower():
                raise Invalid(f"{full_name} is not a repository of {account}")
        state = self.github.state
        new_id = int(installation_id) if installation_id else state.new_id("github_installation")
        if new_id in self.installations:
            raise Invalid(f"installation {new_id} exists")
        inst = Installation(new_id, app.id, state.user(account), repos)
        self.installations[inst.id] = inst
        state.changed()
        return inst

    def app(self, app_id: int | str) -> GitHubApp:
        try:
            return self.apps[int(app_id)]
        except (KeyError, ValueError):
            raise NotFound(f"app {app_id}") from None

    # -- credentials ---------------------------------------------------------------------------

    def app_of_jwt(self, credential: str) -> GitHubApp:
        """The App whose key signed ``credential``; 401 with GitHub's words otherwise."""
        try:
            header = jwt.get_unverified_header(credential)
            claims = jwt.decode(credential, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise error(401, UNDECODABLE_JWT) from None
        if header.get("alg") != "RS256":
            raise error(401, UNDECODABLE_JWT)
        issuer = str(claims.get("iss"))
        if not issuer.isdigit():  # GitHub also takes an App's client id; the sandbox does not
            raise error(401, "'Issuer' claim ('iss') must be an Integer")
        app = self.apps.get(int(issuer))
        if app is None:
            raise error(401, f"Integration not found: {issuer[:40]}")
        try:
            jwt.decode(
                credential,
                app.public_key,
                algorithms=["RS256"],
                options={"verify_exp": False, "verify_iat": False},
            )
        except jwt.PyJWTError:
            raise error(401, UNDECODABLE_JWT) from None
        wall = time.time()
        exp, iat = claims.get("exp"), claims.get("iat")
        if not isinstance(exp, int) or exp < wall - JWT_LEEWAY:
            raise error(
                401,
                "'Expiration time' claim ('exp') must be a numeric value "
                "representing the future time at which the assertion expires",
            )
        if exp > wall + JWT_MAX_AHEAD + JWT_LEEWAY:
            raise error(401, "'Expiration time' claim ('exp') is too far in the future")
        if not isinstance(iat, int) or iat > wall + JWT_LEEWAY:
            raise error(
                401,
                "'Issued at' claim ('iat') must be an Integer representing the "
                "time that the assertion was issued",
            )
        return app

    def check(self, request: Request, path: str) -> AppToken | None:
        """Refuse what GitHub would refuse before routing: an expired or unknown installation
        token, a JWT on an endpoint that wants an installation, an installation token on a
        repository its installation does not cover. Returns the token's record, if any."""
        credential = token_of(request)
        if looks_like_jwt(credential):
            if not _app_path(path):
                # The words are the sandbox's own: GitHub refuses it, its wording is not pinned.
                raise error(401, "A JSON web token could not be used to access this resource")
            self.app_of_jwt(credential)
            return None
        record = self.github.app_tokens.get(credential)
        expired = (
            record is not None and record.expires_at is not None and record.expires_at <= now()
        )
        if credential.startswith("ghs_") and (record is None or expired):
            if record is not None:
                del self.github.app_tokens[credential]
            raise error(401, BAD_CREDENTIALS)
        if _app_path(path) and not path.startswith("/installation/"):
            raise error(401, UNDECODABLE_JWT)
        if record is not None and record.installation_id in self.installations:
            repo = _repo_of(path)
            inst = self.installations[record.installation_id]
            if repo and not inst.covers(repo):
                raise not_found()
        return record

    def mint(self, app: GitHubApp, installation_id: str) -> tuple[AppToken, Installation]:
        try:
            inst = self.installations[int(installation_id)]
        except (KeyError, ValueError):
            raise not_found() from None
        if inst.app_id != app.id:
            raise not_found()
        token = AppToken(
            "ghs_" + secrets.token_urlsafe(27)[:36],
            inst.id,
            app.id,
            app.slug,
            app.bot,
            expires_at=now() + TOKEN_LIFETIME / self.time_scale,
        )
        self.github.app_tokens[token.token] = token
        self.github.state.changed()
        return token, inst

    def repositories_of(self, inst: Installation) -> list[Any]:
        return [r for r in self.github.repos.values() if inst.covers(r.full_name)]


def _app_path(path: str) -> bool:
    rest = path.removeprefix(ent.API_PREFIX)
    return (
        rest == "/app"
        or rest.startswith("/app/")
        or (rest.startswith("/repos/") and rest.endswith("/installation") and rest.count("/") == 4)
    )


def _repo_of(path: str) -> str | None:
    parts = path.removeprefix(ent.API_PREFIX).split("/")
    if len(parts) >= 4 and parts[1] == "repos":
        return f"{parts[2]}/{parts[3]}"
    return None


# -- JSON ------------------------------------------------------------------------------------


def app_json(gh: GitHubState, app: GitHubApp) -> dict[str, Any]:
    return {
        **ent.app(gh, app.id, app.slug, app.owner),
        "name": app.name,
        "permissions": dict(app.permissions),
        "events": list(app.events),
        "installations_count": sum(1 for i in gh.installations.values() if i.app_id == app.id),
    }


def installation_json(gh: GitHubState, inst: Installation) -> dict[str, Any]:
    app = gh.apps[inst.app_id]
    api = ent.api(gh)
    return {
        "id": inst.id,
        "account": ent.user(gh, inst.account),
        "repository_selection": "all" if inst.repositories is None else "selected",
        "access_tokens_url": f"{api}/app/installations/{inst.id}/access_tokens",
        "repositories_url": f"{api}/installation/repositories",
        "html_url": f"{gh.state.base_url}/organizations/{inst.account.username}"
        f"/settings/installations/{inst.id}",
        "app_id": app.id,
        "app_slug": app.slug,
        "client_id": f"Iv1.{app.id:016x}",
        "target_id": inst.account.id,
        "target_type": "Organization",
        "permissions": dict(app.permissions),
        "events": list(app.events),
        "created_at": gh_time(inst.created_at),
        "updated_at": gh_time(inst.created_at),
        "single_file_name": None,
        "has_multiple_single_files": False,
        "single_file_paths": [],
        "suspended_by": None,
        "suspended_at": None,
    }


# -- routes ----------------------------------------------------------------------------------


class AppRoutes:
    """``/app``, ``/app/installations``, ``/app/installations/{id}`` and its ``access_tokens``,
    ``/repos/{o}/{r}/installation`` (JWT) and ``/installation/repositories`` (installation
    token)."""

    def __init__(self, api: GitHubAPI) -> None:
        self.api = api
        self.github = api.github
        self.apps: GitHubApps = api.github.app_registry
        add = api.add
        add("GET", "/app", self.get_app)
        add("GET", "/app/installations", self.list_installations)
        add("GET", "/app/installations/<installation_id>", self.get_installation)
        add("POST", "/app/installations/<installation_id>/access_tokens", self.create_token)
        add("GET", "/repos/<owner>/<name>/installation", self.repo_installation)
        add("GET", "/installation/repositories", self.installation_repositories)

    def _app(self, request: Request) -> GitHubApp:
        return self.apps.app_of_jwt(token_of(request))

    def get_app(self, request: Request) -> Response:
        return Response.json(app_json(self.github, self._app(request)))

    def list_installations(self, request: Request) -> Response:
        app = self._app(request)
        items = [
            installation_json(self.github, i)
            for i in self.github.installations.values()
            if i.app_id == app.id
        ]
        return paginate(request, items)

    def get_installation(self, request: Request, installation_id: str) -> Response:
        app = self._app(request)
        inst = (
            self.github.installations.get(int(installation_id))
            if installation_id.isdigit()
            else None
        )
        if inst is None or inst.app_id != app.id:
            raise not_found()
        return Response.json(installation_json(self.github, inst))

    def create_token(self, request: Request, installation_id: str) -> Response:
        app = self._app(request)
        body = request.json_body() if request.body else {}
        if body is not None and not isinstance(body, dict):
            raise error(400, "Problems parsing JSON")
        token, inst = self.apps.mint(app, installation_id)
        data: dict[str, Any] = {
            "token": token.token,
            "expires_at": gh_time(token.expires_at),
            "permissions": dict(app.permissions),
            "repository_selection": "all" if inst.repositories is None else "selected",
        }
        if inst.repositories is not None:
            data["repositories"] = [
                ent.repository(self.github, r) for r in self.apps.repositories_of(inst)
            ]
        return Response.json(data, 201)

    def repo_installation(self, request: Request, owner: str, name: str) -> Response:
        app = self._app(request)
        repo = self.github.repo(owner, name)
        for inst in self.github.installations.values():
            if inst.app_id == app.id and inst.covers(repo.full_name):
                return Response.json(installation_json(self.github, inst))
        raise not_found()

    def installation_repositories(self, request: Request) -> Response:
        record = self.github.app_tokens.get(token_of(request))
        inst = self.github.installations.get(record.installation_id) if record else None
        if inst is None:
            raise error(
                403,
                "You must authenticate with an installation access token in order "
                "to list repositories for an installation.",
            )
        repos = [ent.repository(self.github, r) for r in self.apps.repositories_of(inst)]
        return paginate(request, repos, wrap="repositories")
