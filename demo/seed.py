"""What the demo puts in Baton's database before anything moves: the two sandbox forges, people
and their grants, the chat channel, the quarantine of acme/e2e, and (demo/history.py) two weeks
of past chains. Every step may run again on the next `make run` without adding rows twice."""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth import get_user_model

from bots.engine.planning import ensure_repository
from bots.services import Actor, quarantine_project
from chains import quarantine
from chains.models import Forge, Grant, Identity, Repository, Team
from demo import world
from notify.models import Channel, Event, Subscription
from sandbox.client import SandboxClient

GITLAB = "sandbox-gitlab"
GITHUB = "sandbox-github"
ACTIONS = ["view", "trigger", "retry", "cancel"]
DEMO_ADMIN = Actor("admin", "admin")


def forges(sandbox_url: str, baton_url: str) -> world.Hooks:
    """Both sandbox forges, with fresh tokens and webhook secrets; where their hooks go."""
    hooks = world.Hooks(
        gitlab_url=f"{baton_url}/hooks/{GITLAB}/",
        gitlab_secret=secrets.token_urlsafe(24),
        github_url=f"{baton_url}/hooks/{GITHUB}/",
        github_secret=secrets.token_urlsafe(24),
    )
    for slug, kind, name, api_url, secret in (
        (GITLAB, "gitlab", "Sandbox GitLab", sandbox_url, hooks.gitlab_secret),
        (GITHUB, "github", "Sandbox GitHub", f"{sandbox_url}/api/v3", hooks.github_secret),
    ):
        Forge.objects.update_or_create(
            slug=slug,
            defaults={
                "kind": kind,
                "name": name,
                "api_url": api_url,
                "token": secrets.token_urlsafe(24),
                "webhook_secret": secret,
            },
        )
    return hooks


def people() -> str:
    """alice (who opens the demo's merge requests) and her team's grant on acme/*, and the admin
    with a fresh password, which is returned."""
    alice, _ = get_user_model().objects.get_or_create(
        username="alice", defaults={"email": "alice@example.com"}
    )
    team, _ = Team.objects.get_or_create(name="Developers")
    team.members.add(alice)
    Grant.objects.get_or_create(team=team, projects="acme/*", defaults={"actions": ACTIONS})
    for forge in Forge.objects.filter(slug__in=[GITLAB, GITHUB]):
        Identity.objects.get_or_create(forge=forge, username="alice", defaults={"user": alice})
    password = secrets.token_urlsafe(9)
    admin, _ = get_user_model().objects.get_or_create(username="admin")
    admin.is_staff = admin.is_superuser = True
    admin.set_password(password)
    admin.save()
    return password


def repositories(projects: dict[str, world.Project]) -> dict[str, Repository]:
    """The demo's projects as Baton knows them (what the history and the quarantine hang on),
    keyed by path; acme/docs is the GitHub one."""
    gitlab, github = Forge.objects.get(slug=GITLAB), Forge.objects.get(slug=GITHUB)
    return {
        path: ensure_repository(
            github if path == world.DOCS else gitlab,
            path,
            remote_id=project.remote_id,
            web_url=project.web_url,
            default_branch=project.default_branch,
        )
        for path, project in projects.items()
    }


def quarantined(repository: Repository) -> None:
    """acme/e2e quarantined by the admin (through the same verb as the admin console), unless a
    quarantine is already in force."""
    if quarantine.active(repository) is None:
        quarantine_project(
            repository,
            reason=world.QUARANTINE_REASON,
            days=world.QUARANTINE_DAYS,
            actor=DEMO_ADMIN,
        )


def notifications(sandbox: SandboxClient) -> None:
    """A chat channel posting to the sandbox's chat room, told of every acme/* chain's events
    (docs/notifications.md): its page is where the demo's notifications arrive. The release
    chain of a `v*` tag is named by acme/app's `notify:` (demo/world.py)."""
    channel, _ = Channel.objects.update_or_create(
        name=world.CHAT_CHANNEL,
        defaults={"url": sandbox.chat_url(world.CHAT_ROOM), "enabled": True},
    )
    Subscription.objects.update_or_create(
        channel=channel,
        projects="acme/*",
        defaults={
            "events": [
                Event.CHAIN_FAILED,
                Event.CHAIN_RECOVERED,
                Event.RELEASE_FINISHED,
                Event.RUN_MANUAL,
                Event.RUN_REFUSED,
            ],
            "release_refs": world.RELEASE_TAGS,
        },
    )


def signin_env(sandbox_url: str) -> dict[str, str]:
    """Sign in with GitLab and GitHub against the sandbox: an application per forge, made up
    for this run (registered on the sandbox by ``signin``)."""
    env = {}
    for kind in ("gitlab", "github"):
        prefix = f"BATON_SIGNIN_{kind.upper()}"
        env[f"{prefix}_CLIENT_ID"] = f"demo-{kind}-{secrets.token_hex(8)}"
        env[f"{prefix}_SECRET"] = secrets.token_urlsafe(32)
        env[f"{prefix}_URL"] = sandbox_url
        env[f"{prefix}_FORGE"] = f"sandbox-{kind}"
    return env


def signin(sandbox: SandboxClient, baton_url: str, env: dict[str, Any]) -> None:
    """The sandbox's OAuth applications, dora in GitLab group acme/platform and gus in GitHub
    team acme/release, and a grant to each group on acme/*."""
    for kind in ("gitlab", "github"):
        prefix = f"BATON_SIGNIN_{kind.upper()}"
        sandbox.register_oauth_app(
            kind,
            f"{baton_url}/accounts/{kind}/login/callback/",
            client_id=env[f"{prefix}_CLIENT_ID"],
            secret=env[f"{prefix}_SECRET"],
        )
    sandbox.set_group_member("acme/platform", "dora", 30)
    sandbox.set_team_member("acme", "release", "gus")
    for slug, group in ((GITLAB, "acme/platform"), (GITHUB, "acme/release")):
        Grant.objects.get_or_create(
            forge=Forge.objects.get(slug=slug),
            forge_group=group,
            projects="acme/*",
            defaults={"actions": ACTIONS},
        )
