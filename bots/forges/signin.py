"""What a forge says about the person who just signed in with it, read with their OAuth token.

- GitLab: ``GET /api/v4/groups?min_access_level=N`` (scope ``read_api``): every group's
  ``full_path``; the e-mail of ``/api/v4/user`` counts as verified when ``confirmed_at`` is set.
- GitHub: ``GET /user/teams`` (scope ``read:org``): ``<org login>/<team slug>``; the verified
  primary e-mail of ``/user/emails`` (scope ``user:email``).

Every string is the forge's and so hostile: names are checked against ``FORGE_GROUP`` and
lower-cased, at most ``MAX_PAGES`` pages of ``PER_PAGE`` are read, and the token is sent in a
header only (never in a URL that could reach a log) and never appears in an error.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import requests
from django.conf import settings

from bots.forges.base import ForgeError
from chains.models import FORGE_GROUP

PER_PAGE = 100
MAX_PAGES = 10  # at most 1,000 groups or teams per person
MAX_EMAIL = 254


def _pages(url: str, headers: dict[str, str], params: dict[str, Any]) -> Iterator[Any]:
    session = requests.Session()
    for page in range(1, MAX_PAGES + 1):
        try:
            response = session.get(
                url,
                headers=headers,
                params={**params, "per_page": PER_PAGE, "page": page},
                timeout=settings.BATON_FORGE_TIMEOUT,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            raise ForgeError(f"could not read memberships: {type(exc).__name__}") from None
        if response.status_code != 200:
            raise ForgeError(
                f"could not read memberships: HTTP {response.status_code}",
                permanent=response.status_code in (401, 403, 404),
                status_code=response.status_code,
            )
        try:
            items = response.json()
        except ValueError:
            raise ForgeError("could not read memberships: the answer is not JSON") from None
        if not isinstance(items, list):
            raise ForgeError("could not read memberships: the answer is not a list")
        yield from items
        if len(items) < PER_PAGE:
            return


def clean_names(names: Iterable[Any]) -> list[str]:
    """Lower-cased group paths / org/team names that look like one; the rest dropped."""
    found: set[str] = set()
    for name in names:
        if isinstance(name, str) and len(name) <= 255 and FORGE_GROUP.fullmatch(name):
            found.add(name.lower())
    return sorted(found)


def gitlab_groups(root_url: str, token: str) -> list[str]:
    """Full paths of the GitLab groups the token's user belongs to."""
    items = _pages(
        f"{root_url.rstrip('/')}/api/v4/groups",
        {"Authorization": f"Bearer {token}"},
        {"min_access_level": settings.BATON_SIGNIN_GITLAB_MIN_ACCESS_LEVEL},
    )
    return clean_names(item.get("full_path") for item in items if isinstance(item, dict))


def github_teams(api_url: str, token: str) -> list[str]:
    """``org/team-slug`` of the GitHub teams the token's user belongs to."""
    names = []
    for item in _pages(
        f"{api_url.rstrip('/')}/user/teams",
        {"Authorization": f"token {token}", "Accept": "application/vnd.github+json"},
        {},
    ):
        if not isinstance(item, dict) or not isinstance(item.get("organization"), dict):
            continue
        org, slug = item["organization"].get("login"), item.get("slug")
        if isinstance(org, str) and isinstance(slug, str):
            names.append(f"{org}/{slug}")
    return clean_names(names)


def gitlab_verified_email(profile: Mapping[str, Any]) -> str:
    """The e-mail of GitLab's ``/user`` answer, when GitLab says it was confirmed."""
    email = profile.get("email")
    if profile.get("confirmed_at") and isinstance(email, str) and 3 <= len(email) <= MAX_EMAIL:
        return email if "@" in email else ""
    return ""


def github_api_url(root_url: str) -> str:
    """The REST API root of a GitHub (``root_url`` empty: github.com)."""
    return f"{root_url.rstrip('/')}/api/v3" if root_url else "https://api.github.com"
