"""The demo's projects on the sandbox forge: what each `.baton.yml` sets off and how long each
pipeline or workflow runs (what `make run` shows; docs/sandbox.md, "The demo").

acme/app (GitLab) triggers acme/api, whose own `.baton.yml` triggers the GitHub repository
acme/docs: a nested chain across both forges. acme/web fails once then passes (its `retry:`
retries it), acme/e2e always fails (it is quarantined: a soft failure), and a tag `v*` triggers
acme/packages, whose release chain finishing is posted to the sandbox chat. acme/api and
acme/docs run longer than the demo's commit interval, so each new commit supersedes a chain that
is still running and cancels it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sandbox.client import SandboxClient

APP = "acme/app"
API = "acme/api"
WEB = "acme/web"
E2E = "acme/e2e"
PACKAGES = "acme/packages"
DOCS = "acme/docs"  # on the sandbox's GitHub
GITLAB_PROJECTS = (APP, API, WEB, E2E, PACKAGES)

CHAT_CHANNEL = "demo-chat"
CHAT_ROOM = "releases"
RELEASE_TAGS = "v*"
QUARANTINE_REASON = "e2e browser farm unstable since the runner upgrade (INFRA-231)"
QUARANTINE_DAYS = 14

APP_BATON_YML = f"""\
# What a change to acme/app sets off downstream (see docs/baton-yml.md).
variables:
  RELEASE_STREAM: stable
  DEPLOY_TOKEN: {{value: "demo-secret-value", masked: true}}
notify:
  - channel: {CHAT_CHANNEL}
    events: [release_finished]
    branches: "{RELEASE_TAGS}"
downstream:
  - key: api
    label: API service
    project: {API}
    variables: {{ENVIRONMENT: staging}}
  - key: web
    label: Web front end
    project: {WEB}
    retry: {{max: 2, when: [script_failure]}}
  - key: e2e
    label: Browser tests
    project: {E2E}
  - key: checks
    label: Extra checks (child pipeline)
    project: self
    strategy: async
  - key: release
    label: Release packages (tags)
    project: {PACKAGES}
    on: [tag]
    branches: "{RELEASE_TAGS}"
"""

API_BATON_YML = f"""\
# acme/api's own downstream: when acme/app triggers it, it triggers the docs preview on GitHub.
downstream:
  - key: docs
    label: Docs preview (GitHub)
    project: github:{DOCS}
    workflow: preview.yml
    on: [upstream]
"""

DOCS_WORKFLOW = """\
name: Preview
run-name: "Preview (baton run ${{ inputs.BATON_RUN_ID }} ${{ inputs.BATON_RUN_NONCE }})"
on:
  workflow_dispatch:
    inputs:
      UPSTREAM_REF: {required: false}
      UPSTREAM_SHA: {required: false}
      UPSTREAM_PROJECT: {required: false}
      BATON_RUN_ID: {required: false}
      BATON_RUN_NONCE: {required: false}
jobs:
  preview: {runs-on: ubuntu-latest, steps: [{run: mkdocs build}]}
"""


@dataclass(frozen=True)
class Timing:
    """How long a target's pipelines run in the demo (seconds), live and in the seeded history."""

    pending: float
    running: float


TIMINGS = {
    APP: Timing(1, 5),
    API: Timing(2, 62),
    DOCS: Timing(1, 40),
    WEB: Timing(1, 9),
    E2E: Timing(1, 15),
    PACKAGES: Timing(1, 6),
}


@dataclass(frozen=True)
class Failure:
    """What a failed job says (sandbox/jobs.py): its name, GitLab's failure_reason, its log."""

    job: str
    failure_reason: str
    log: str


WEB_FAILURE = Failure(
    "e2e-chrome",
    "script_failure",
    "$ npm run e2e\n  1 failing: checkout shows the basket total\nERROR: Job failed: exit code 1\n",
)
E2E_FAILURE = Failure(
    "browser-farm",
    "runner_system_failure",
    "ERROR: Preparation failed: no browser node answered within 10s\n",
)


@dataclass(frozen=True)
class Hooks:
    """Where each forge's webhooks go, and their secrets."""

    gitlab_url: str
    gitlab_secret: str
    github_url: str
    github_secret: str


@dataclass(frozen=True)
class Project:
    """A demo project as the sandbox's control API answered its creation (which does not say
    whether it is public: Baton keeps the safe default, private)."""

    remote_id: str
    web_url: str
    default_branch: str


def build(sandbox: SandboxClient, hooks: Hooks) -> dict[str, Project]:
    """Create the demo's projects and scripts on a freshly reset sandbox; returns the projects by
    path (acme/docs is the GitHub repository)."""
    gitlab = [{"url": hooks.gitlab_url, "token": hooks.gitlab_secret}]
    github = [{"url": hooks.github_url, "secret": hooks.github_secret, "events": ["*"]}]
    files = {
        APP: {".baton.yml": APP_BATON_YML, "app.py": "v = 1\n"},
        API: {".baton.yml": API_BATON_YML, "api.py": ""},
        WEB: {"web.js": ""},
        E2E: {"e2e.spec.js": ""},
        PACKAGES: {"setup.py": ""},
    }
    projects = {}
    for path in GITLAB_PROJECTS:
        made = sandbox.create_project(path, files=files[path], hooks=gitlab)
        projects[path] = Project(str(made["id"]), made["web_url"], made["default_branch"])
    for path in (APP, API, PACKAGES):
        _script(sandbox, path, "success")
    _script(sandbox, E2E, "failed", failure=E2E_FAILURE)
    arm_flaky(sandbox)
    made = sandbox.create_github_repo(
        DOCS, files={".github/workflows/preview.yml": DOCS_WORKFLOW}, hooks=github
    )
    projects[DOCS] = Project(str(made["id"]), made["html_url"], made["default_branch"])
    timing = TIMINGS[DOCS]
    sandbox.set_run_script(DOCS, "success", pending=timing.pending, running=timing.running)
    return projects


def arm_flaky(sandbox: SandboxClient) -> None:
    """acme/web's next pipeline fails (script_failure) and the one after passes: its `retry:`
    retries it once. Armed again for every new commit, so every chain shows the retry."""
    _script(sandbox, WEB, "success", queue=["failed", "success"], failure=WEB_FAILURE)


def start_changes(sandbox: SandboxClient) -> None:
    """The merge request the demo keeps pushing to, and a release tag (a tag chain, finished in
    seconds: its "release chain finished" message is the first in the chat)."""
    sandbox.open_merge_request(
        APP,
        "feature/faster-search",
        target_branch="main",
        title="Make search faster",
        author="alice",
        files={"app.py": "v = 2\n"},
    )
    sandbox.tag(APP, "v1.0.0", author="alice")


def push(sandbox: SandboxClient, number: int) -> None:
    """A new commit on the merge request: it supersedes the running chain, which is canceled."""
    arm_flaky(sandbox)
    sandbox.push(APP, 1, {"app.py": f"v = {number}\n"}, message=f"Iteration {number}")


def _script(
    sandbox: SandboxClient,
    path: str,
    outcome: str,
    *,
    queue: list[str] | None = None,
    failure: Failure | None = None,
) -> None:
    """A GitLab project's pipelines: their timing, outcome and what a failed job says."""
    timing = TIMINGS[path]
    says = failure or Failure("test", "script_failure", "")
    sandbox.set_script(
        path,
        outcome,
        pending=timing.pending,
        running=timing.running,
        queue=queue,
        job=says.job,
        failure_reason=says.failure_reason,
        log=says.log,
    )
