"""GitHub REST v3 JSON shapes (the webhook payloads reuse most of them).

Every URL is absolute and rendered for where the sandbox is mounted (``<base>/api/v3/…`` for API
URLs, ``<base>/…`` for html URLs): PyGithub follows them and asserts they share its base URL.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any
from urllib.parse import quote

from sandbox.diffs import FileChange, commits_since
from sandbox.github.model import (
    ROLES,
    CheckRun,
    Deployment,
    DeploymentStatus,
    GitHubHook,
    GitHubRepo,
    GitHubStatus,
    IssueComment,
    PullRequest,
    WorkflowRun,
    gh_time,
)
from sandbox.github.state import GitHubState
from sandbox.github.workflows import WorkflowFile
from sandbox.model import Commit, User

API_PREFIX = "/api/v3"


def api(gh: GitHubState) -> str:
    return gh.state.base_url + API_PREFIX


def node_id(kind: str, ident: int | str) -> str:
    return base64.b64encode(f"0:{kind}{ident}".encode()).decode().rstrip("=")


def user(gh: GitHubState, u: User) -> dict[str, Any]:
    a, login = api(gh), u.username
    return {
        "login": login,
        "id": u.id,
        "node_id": node_id("User", u.id),
        "avatar_url": f"{gh.state.base_url}/avatars/u/{u.id}?v=4",
        "gravatar_id": "",
        "url": f"{a}/users/{login}",
        "html_url": f"{gh.state.base_url}/{login}",
        "followers_url": f"{a}/users/{login}/followers",
        "following_url": f"{a}/users/{login}/following{{/other_user}}",
        "gists_url": f"{a}/users/{login}/gists{{/gist_id}}",
        "starred_url": f"{a}/users/{login}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{a}/users/{login}/subscriptions",
        "organizations_url": f"{a}/users/{login}/orgs",
        "repos_url": f"{a}/users/{login}/repos",
        "events_url": f"{a}/users/{login}/events{{/privacy}}",
        "received_events_url": f"{a}/users/{login}/received_events",
        "type": "Bot" if login.endswith("[bot]") else "User",
        "user_view_type": "public",
        "site_admin": False,
    }


def public_user(gh: GitHubState, u: User) -> dict[str, Any]:
    """``GET /users/{login}``: the public-user shape; ``email`` only when made public."""
    return {
        **user(gh, u), "name": u.name, "company": None, "blog": "", "location": None,
        "email": u.public_email or None, "hireable": None, "bio": None, "twitter_username": None,
        "public_repos": sum(1 for r in gh.repos.values() if r.owner is u), "public_gists": 0,
        "followers": 0, "following": 0, "created_at": gh_time(0.0), "updated_at": gh_time(0.0),
    }


def team(gh: GitHubState, org: str, org_id: int, slug: str, team_id: int) -> dict[str, Any]:
    """A team as ``GET /user/teams`` lists it: with its organization."""
    a = api(gh)
    return {
        "id": team_id,
        "node_id": node_id("Team", team_id),
        "url": f"{a}/teams/{team_id}",
        "html_url": f"{gh.state.base_url}/orgs/{org}/teams/{slug}",
        "name": slug.replace("-", " ").title(),
        "slug": slug,
        "description": "",
        "privacy": "closed",
        "permission": "pull",
        "members_url": f"{a}/teams/{team_id}/members{{/member}}",
        "repositories_url": f"{a}/teams/{team_id}/repos",
        "parent": None,
        "members_count": 1,
        "repos_count": 0,
        "organization": {
            "login": org,
            "id": org_id,
            "node_id": node_id("Organization", org_id),
            "url": f"{a}/orgs/{org}",
            "avatar_url": f"{gh.state.base_url}/avatars/o/{org_id}?v=4",
            "description": "",
        },
    }


def private_user(gh: GitHubState, u: User) -> dict[str, Any]:
    return {
        **public_user(gh, u), "email": u.email,
        "private_gists": 0, "total_private_repos": 0, "owned_private_repos": 0, "disk_usage": 0,
        "collaborators": 0, "two_factor_authentication": True,
    }


_REPO_URLS = {
    "forks_url": "/forks", "keys_url": "/keys{/key_id}",
    "collaborators_url": "/collaborators{/collaborator}", "teams_url": "/teams",
    "hooks_url": "/hooks", "issue_events_url": "/issues/events{/number}",
    "events_url": "/events", "assignees_url": "/assignees{/user}",
    "branches_url": "/branches{/branch}", "tags_url": "/tags", "blobs_url": "/git/blobs{/sha}",
    "git_tags_url": "/git/tags{/sha}", "git_refs_url": "/git/refs{/sha}",
    "trees_url": "/git/trees{/sha}", "statuses_url": "/statuses/{sha}",
    "languages_url": "/languages", "stargazers_url": "/stargazers",
    "contributors_url": "/contributors", "subscribers_url": "/subscribers",
    "subscription_url": "/subscription", "commits_url": "/commits{/sha}",
    "git_commits_url": "/git/commits{/sha}", "comments_url": "/comments{/number}",
    "issue_comment_url": "/issues/comments{/number}", "contents_url": "/contents/{+path}",
    "compare_url": "/compare/{base}...{head}", "merges_url": "/merges",
    "archive_url": "/{archive_format}{/ref}", "downloads_url": "/downloads",
    "issues_url": "/issues{/number}", "pulls_url": "/pulls{/number}",
    "milestones_url": "/milestones{/number}",
    "notifications_url": "/notifications{?since,all,participating}",
    "labels_url": "/labels{/name}", "releases_url": "/releases{/id}",
    "deployments_url": "/deployments",
}


def repo_url(gh: GitHubState, repo: GitHubRepo) -> str:
    return f"{api(gh)}/repos/{repo.full_name}"


def html_url(gh: GitHubState, repo: GitHubRepo) -> str:
    return f"{gh.state.base_url}/{repo.full_name}"


def minimal_repo(gh: GitHubState, repo: GitHubRepo) -> dict[str, Any]:
    url = repo_url(gh, repo)
    return {
        "id": repo.id, "node_id": node_id("Repository", repo.id), "name": repo.name,
        "full_name": repo.full_name, "private": False, "owner": user(gh, repo.owner),
        "html_url": html_url(gh, repo), "description": repo.description or None, "fork": False,
        "url": url, **{k: url + v for k, v in _REPO_URLS.items()},
    }


def repository(gh: GitHubState, repo: GitHubRepo) -> dict[str, Any]:
    host = gh.state.base_url.split("://", 1)[-1].split("/", 1)[0].split(":")[0]
    head = repo.git.commits[repo.git.branches[repo.default_branch]]
    open_pulls = sum(1 for p in repo.pulls.values() if p.state == "open")
    html = html_url(gh, repo)
    return {
        **minimal_repo(gh, repo),
        "created_at": gh_time(repo.created_at), "updated_at": gh_time(head.created_at),
        "pushed_at": gh_time(head.created_at),
        "git_url": f"git://{host}/{repo.full_name}.git",
        "ssh_url": f"git@{host}:{repo.full_name}.git", "clone_url": f"{html}.git",
        "svn_url": html, "homepage": None, "size": 0, "stargazers_count": 0,
        "watchers_count": 0, "language": None, "has_issues": True, "has_projects": True,
        "has_downloads": True, "has_wiki": True, "has_pages": False, "has_discussions": False,
        "forks_count": 0, "mirror_url": None, "archived": False, "disabled": False,
        "open_issues_count": open_pulls, "license": None, "allow_forking": True,
        "is_template": False, "web_commit_signoff_required": False, "topics": [],
        "visibility": "public", "forks": 0, "open_issues": open_pulls, "watchers": 0,
        "default_branch": repo.default_branch,
        "permissions": {"admin": True, "maintain": True, "push": True, "triage": True,
                        "pull": True},
        "network_count": 0, "subscribers_count": 0, "custom_properties": {},
    }


def blob_sha(text: str) -> str:
    data = text.encode()
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def content_file(gh: GitHubState, repo: GitHubRepo, path: str, text: str, ref: str
                 ) -> dict[str, Any]:
    raw = text.encode()
    encoded = base64.b64encode(raw).decode()
    wrapped = "\n".join(encoded[i:i + 60] for i in range(0, len(encoded), 60)) + "\n"
    return {**content_entry(gh, repo, path, ref, "file", blob_sha(text), len(raw)),
            "content": wrapped, "encoding": "base64"}


def content_entry(gh: GitHubState, repo: GitHubRepo, path: str, ref: str, kind: str, sha: str,
                  size: int) -> dict[str, Any]:
    url = f"{repo_url(gh, repo)}/contents/{path}?ref={ref}"
    git = f"{repo_url(gh, repo)}/git/{'blobs' if kind == 'file' else 'trees'}/{sha}"
    html = f"{html_url(gh, repo)}/{'blob' if kind == 'file' else 'tree'}/{ref}/{path}"
    download = f"{gh.state.base_url}/raw/{repo.full_name}/{ref}/{path}" if kind == "file" else None
    return {"type": kind, "size": size, "name": path.rsplit("/", 1)[-1], "path": path,
            "sha": sha, "url": url, "git_url": git, "html_url": html, "download_url": download,
            "_links": {"self": url, "git": git, "html": html}}


def git_user(u: User, ts: float) -> dict[str, Any]:
    return {"name": u.name, "email": u.email, "date": gh_time(ts)}


def commit(gh: GitHubState, repo: GitHubRepo, c: Commit) -> dict[str, Any]:
    url = repo_url(gh, repo)
    parents = [c.parent] if c.parent else []
    return {
        "sha": c.sha, "node_id": node_id("Commit", c.sha),
        "commit": {
            "author": git_user(c.author, c.created_at),
            "committer": git_user(c.author, c.created_at), "message": c.message,
            "tree": {"sha": c.sha, "url": f"{url}/git/trees/{c.sha}"},
            "url": f"{url}/git/commits/{c.sha}", "comment_count": 0,
            "verification": {"verified": False, "reason": "unsigned", "signature": None,
                             "payload": None, "verified_at": None},
        },
        "url": f"{url}/commits/{c.sha}", "html_url": f"{html_url(gh, repo)}/commit/{c.sha}",
        "comments_url": f"{url}/commits/{c.sha}/comments",
        "author": user(gh, c.author), "committer": user(gh, c.author),
        "parents": [{"sha": p, "url": f"{url}/commits/{p}",
                     "html_url": f"{html_url(gh, repo)}/commit/{p}"} for p in parents],
        "stats": {"total": len(c.files), "additions": len(c.files), "deletions": 0},
        "files": [],
    }


def author_association(gh: GitHubState, repo: GitHubRepo, u: User) -> str:
    if u is repo.owner:
        return "OWNER"
    return "COLLABORATOR" if u.username in repo.collaborators else "CONTRIBUTOR"


def label(gh: GitHubState, repo: GitHubRepo, name: str) -> dict[str, Any]:
    """A label; ``description`` is a string ("" when unset): the pull-request-simple schema of
    ``GET /pulls`` does not allow null there."""
    lb = gh.state.label(repo.git, name)
    return {"id": lb.id, "node_id": node_id("Label", lb.id),
            "url": f"{repo_url(gh, repo)}/labels/{quote(name, safe='')}", "name": name,
            "description": lb.description, "color": lb.color.lstrip("#"),
            "default": False}


def diff_entry(gh: GitHubState, repo: GitHubRepo, head_sha: str, change: FileChange
               ) -> dict[str, Any]:
    """One item of ``GET /repos/{o}/{r}/pulls/{n}/files``."""
    path = quote(change.path)
    text = change.old_text if change.status == "removed" else change.new_text
    data: dict[str, Any] = {
        "sha": blob_sha(text or ""), "filename": change.path, "status": change.status,
        "additions": change.additions, "deletions": change.deletions,
        "changes": change.additions + change.deletions,
        "blob_url": f"{html_url(gh, repo)}/blob/{head_sha}/{path}",
        "raw_url": f"{html_url(gh, repo)}/raw/{head_sha}/{path}",
        "contents_url": f"{repo_url(gh, repo)}/contents/{path}?ref={head_sha}",
    }
    if change.patch:
        data["patch"] = change.patch.removesuffix("\n")
    if change.status == "renamed":
        data["previous_filename"] = change.old_path
    return data


def _ref(gh: GitHubState, repo: GitHubRepo, branch: str, sha: str) -> dict[str, Any]:
    return {"label": f"{repo.owner.username}:{branch}", "ref": branch, "sha": sha,
            "user": user(gh, repo.owner), "repo": repository(gh, repo)}


def pull_request(gh: GitHubState, repo: GitHubRepo, pr: PullRequest) -> dict[str, Any]:
    url = f"{repo_url(gh, repo)}/pulls/{pr.number}"
    issue = f"{repo_url(gh, repo)}/issues/{pr.number}"
    html = f"{html_url(gh, repo)}/pull/{pr.number}"
    statuses = f"{repo_url(gh, repo)}/statuses/{pr.head_sha}"
    base, changes = gh.changes(repo, pr)
    return {
        "url": url, "id": pr.id, "node_id": node_id("PullRequest", pr.id), "html_url": html,
        "diff_url": f"{html}.diff", "patch_url": f"{html}.patch", "issue_url": issue,
        "number": pr.number, "state": pr.state, "locked": False, "title": pr.title,
        "user": user(gh, pr.author), "body": pr.body or None,
        "created_at": gh_time(pr.created_at), "updated_at": gh_time(pr.updated_at),
        "closed_at": gh_time(pr.closed_at), "merged_at": gh_time(pr.merged_at),
        "merge_commit_sha": pr.merge_commit_sha, "assignee": None, "assignees": [],
        "requested_reviewers": [], "requested_teams": [],
        "labels": [label(gh, repo, n) for n in pr.labels], "milestone": None,
        "draft": pr.draft, "commits_url": f"{url}/commits",
        "review_comments_url": f"{url}/comments",
        "review_comment_url": f"{repo_url(gh, repo)}/pulls/comments{{/number}}",
        "comments_url": f"{issue}/comments", "statuses_url": statuses,
        "head": _ref(gh, repo, pr.head_branch, pr.head_sha),
        "base": _ref(gh, repo, pr.base_branch, pr.base_sha),
        "_links": {k: {"href": v} for k, v in {
            "self": url, "html": html, "issue": issue, "comments": f"{issue}/comments",
            "review_comments": f"{url}/comments",
            "review_comment": f"{repo_url(gh, repo)}/pulls/comments{{/number}}",
            "commits": f"{url}/commits", "statuses": statuses}.items()},
        "author_association": author_association(gh, repo, pr.author), "auto_merge": None,
        "active_lock_reason": None, "merged": pr.merged,
        "mergeable": True if pr.state == "open" else None, "rebaseable": True,
        "mergeable_state": "clean" if pr.state == "open" else "unknown",
        "merged_by": user(gh, pr.merged_by) if pr.merged_by else None,
        "comments": len(pr.comments), "review_comments": 0, "maintainer_can_modify": False,
        "commits": len(commits_since(repo.git.commits, base, pr.head_sha)),
        "additions": sum(c.additions for c in changes),
        "deletions": sum(c.deletions for c in changes), "changed_files": len(changes),
    }


def reactions(url: str) -> dict[str, Any]:
    return {"url": f"{url}/reactions", "total_count": 0, "+1": 0, "-1": 0, "laugh": 0,
            "hooray": 0, "confused": 0, "heart": 0, "rocket": 0, "eyes": 0}


def issue(gh: GitHubState, repo: GitHubRepo, pr: PullRequest) -> dict[str, Any]:
    """The issue side of a pull request (every pull request is an issue)."""
    url = f"{repo_url(gh, repo)}/issues/{pr.number}"
    html = f"{html_url(gh, repo)}/pull/{pr.number}"
    return {
        "url": url, "repository_url": repo_url(gh, repo),
        "labels_url": f"{url}/labels{{/name}}", "comments_url": f"{url}/comments",
        "events_url": f"{url}/events", "html_url": html, "id": pr.id + 1_000_000,
        "node_id": node_id("Issue", pr.id), "number": pr.number, "title": pr.title,
        "user": user(gh, pr.author), "labels": [label(gh, repo, n) for n in pr.labels],
        "state": pr.state, "locked": False,
        "assignee": None, "assignees": [], "milestone": None, "comments": len(pr.comments),
        "created_at": gh_time(pr.created_at), "updated_at": gh_time(pr.updated_at),
        "closed_at": gh_time(pr.closed_at),
        "author_association": author_association(gh, repo, pr.author),
        "active_lock_reason": None, "draft": pr.draft, "body": pr.body or None,
        "reactions": reactions(url), "timeline_url": f"{url}/timeline",
        "performed_via_github_app": None, "state_reason": None,
        "pull_request": {"url": f"{repo_url(gh, repo)}/pulls/{pr.number}", "html_url": html,
                         "diff_url": f"{html}.diff", "patch_url": f"{html}.patch",
                         "merged_at": gh_time(pr.merged_at)},
    }


def issue_comment(gh: GitHubState, repo: GitHubRepo, c: IssueComment) -> dict[str, Any]:
    url = f"{repo_url(gh, repo)}/issues/comments/{c.id}"
    return {
        "url": url, "html_url": f"{html_url(gh, repo)}/pull/{c.number}#issuecomment-{c.id}",
        "issue_url": f"{repo_url(gh, repo)}/issues/{c.number}", "id": c.id,
        "node_id": node_id("IssueComment", c.id), "user": user(gh, c.author),
        "created_at": gh_time(c.created_at), "updated_at": gh_time(c.updated_at),
        "author_association": author_association(gh, repo, c.author), "body": c.body,
        "reactions": reactions(url), "performed_via_github_app": None,
    }


def workflow(gh: GitHubState, repo: GitHubRepo, wf: WorkflowFile) -> dict[str, Any]:
    wid = gh.workflow_id(repo, wf.path)
    return {
        "id": wid, "node_id": node_id("Workflow", wid), "name": wf.name, "path": wf.path,
        "state": "active", "created_at": gh_time(repo.created_at),
        "updated_at": gh_time(repo.created_at),
        "url": f"{repo_url(gh, repo)}/actions/workflows/{wid}",
        "html_url": f"{html_url(gh, repo)}/blob/{repo.default_branch}/{wf.path}",
        "badge_url": f"{html_url(gh, repo)}/workflows/{wf.file_name}/badge.svg",
    }


def run_pull_requests(gh: GitHubState, repo: GitHubRepo, run: WorkflowRun
                      ) -> list[dict[str, Any]]:
    mini = {"id": repo.id, "url": repo_url(gh, repo), "name": repo.name}
    return [
        {"url": f"{repo_url(gh, repo)}/pulls/{p.number}", "id": p.id, "number": p.number,
         "head": {"ref": p.head_branch, "sha": p.head_sha, "repo": mini},
         "base": {"ref": p.base_branch, "sha": p.base_sha, "repo": mini}}
        for p in repo.pulls.values()
        if p.state == "open" and (p.head_sha == run.head_sha or p.head_branch == run.head_branch)
    ]


def head_commit(gh: GitHubState, repo: GitHubRepo, sha: str) -> dict[str, Any]:
    c = repo.git.commits[sha]
    person = {"name": c.author.name, "email": c.author.email}
    return {"id": c.sha, "tree_id": c.sha, "message": c.message,
            "timestamp": gh_time(c.created_at), "author": person, "committer": person}


def workflow_run(gh: GitHubState, repo: GitHubRepo, run: WorkflowRun) -> dict[str, Any]:
    url = f"{repo_url(gh, repo)}/actions/runs/{run.id}"
    html = f"{html_url(gh, repo)}/actions/runs/{run.id}"
    return {
        "id": run.id, "name": run.name, "node_id": node_id("WorkflowRun", run.id),
        "head_branch": run.head_branch, "head_sha": run.head_sha, "path": run.path,
        "display_title": run.display_title, "run_number": run.run_number, "event": run.event,
        "status": run.status, "conclusion": run.conclusion, "workflow_id": run.workflow_id,
        "check_suite_id": run.check_suite_id,
        "check_suite_node_id": node_id("CheckSuite", run.check_suite_id),
        "url": url, "html_url": html, "pull_requests": run_pull_requests(gh, repo, run),
        "created_at": gh_time(run.created_at), "updated_at": gh_time(run.updated_at),
        "actor": user(gh, run.actor),
        "triggering_actor": user(gh, run.triggering_actor or run.actor),
        "run_attempt": run.run_attempt, "referenced_workflows": [],
        "run_started_at": gh_time(run.run_started_at), "jobs_url": f"{url}/jobs",
        "logs_url": f"{url}/logs",
        "check_suite_url": f"{repo_url(gh, repo)}/check-suites/{run.check_suite_id}",
        "artifacts_url": f"{url}/artifacts", "cancel_url": f"{url}/cancel",
        "rerun_url": f"{url}/rerun",
        "previous_attempt_url": (f"{url}/attempts/{run.run_attempt - 1}"
                                 if run.run_attempt > 1 else None),
        "workflow_url": f"{repo_url(gh, repo)}/actions/workflows/{run.workflow_id}",
        "head_commit": head_commit(gh, repo, run.head_sha),
        "repository": minimal_repo(gh, repo), "head_repository": minimal_repo(gh, repo),
    }


# A run's conclusion → its job's (the job schema has no startup_failure or stale: such runs
# have no jobs at all).
_JOB_CONCLUSIONS = {"success", "failure", "neutral", "cancelled", "skipped", "timed_out",
                    "action_required"}


def job_html_url(gh: GitHubState, repo: GitHubRepo, run: WorkflowRun) -> str:
    return f"{html_url(gh, repo)}/actions/runs/{run.id}/job/{run.job_id}"


def workflow_jobs(gh: GitHubState, repo: GitHubRepo, run: WorkflowRun) -> list[dict[str, Any]]:
    """The run's jobs (one per attempt here), in ``GET …/actions/runs/{id}/jobs``'s shape."""
    if run.status == "completed" and run.conclusion not in _JOB_CONCLUSIONS:
        return []
    started, ended = run.run_started_at, run.updated_at
    done = run.status == "completed"
    conclusion = run.conclusion if done else None
    steps: list[dict[str, Any]] = []
    if run.status != "queued" and conclusion != "skipped":
        failed = conclusion not in (None, "success", "neutral")
        plan = [("Set up job", "success"), (run.step, conclusion),
                ("Complete job", "success" if done else None)]
        for number, (name, result) in enumerate(plan, start=1):
            if not done and number > 2:
                break
            if failed and number == 3:
                result = "success"
            steps.append({
                "name": name, "status": "completed" if result else "in_progress",
                "conclusion": result, "number": number, "started_at": gh_time(started),
                "completed_at": gh_time(ended) if result else None,
            })
    url = f"{repo_url(gh, repo)}/actions/jobs/{run.job_id}"
    return [{
        "id": run.job_id, "run_id": run.id, "run_attempt": run.run_attempt,
        "run_url": f"{repo_url(gh, repo)}/actions/runs/{run.id}",
        "node_id": node_id("CheckRun", run.job_id), "head_sha": run.head_sha,
        "head_branch": run.head_branch, "workflow_name": run.name, "url": url,
        "html_url": job_html_url(gh, repo, run), "status": run.status,
        "conclusion": conclusion, "created_at": gh_time(started),
        "started_at": gh_time(started), "completed_at": gh_time(ended) if done else None,
        "name": run.job_name, "steps": steps,
        "check_run_url": f"{repo_url(gh, repo)}/check-runs/{run.job_id}",
        "labels": ["ubuntu-latest"], "runner_id": None, "runner_name": None,
        "runner_group_id": None, "runner_group_name": None,
    }]


def status(gh: GitHubState, repo: GitHubRepo, s: GitHubStatus) -> dict[str, Any]:
    creator = user(gh, s.creator)
    return {
        "url": f"{repo_url(gh, repo)}/statuses/{s.sha}", "avatar_url": creator["avatar_url"],
        "id": s.id, "node_id": node_id("StatusContext", s.id), "state": s.state,
        "description": s.description, "target_url": s.target_url, "context": s.context,
        "created_at": gh_time(s.created_at), "updated_at": gh_time(s.updated_at),
        "creator": creator,
    }


def combined_status(gh: GitHubState, repo: GitHubRepo, sha: str, statuses: list[GitHubStatus]
                    ) -> dict[str, Any]:
    latest: dict[str, GitHubStatus] = {}
    for s in statuses:  # newest first
        latest.setdefault(s.context.lower(), s)
    states = {s.state for s in latest.values()}
    if states & {"error", "failure"}:
        state = "failure"
    elif not states or "pending" in states:
        state = "pending"
    else:
        state = "success"
    return {
        "state": state, "statuses": [status(gh, repo, s) for s in latest.values()], "sha": sha,
        "total_count": len(latest), "repository": minimal_repo(gh, repo),
        "commit_url": f"{repo_url(gh, repo)}/commits/{sha}",
        "url": f"{repo_url(gh, repo)}/commits/{sha}/status",
    }


def deployment(gh: GitHubState, repo: GitHubRepo, d: Deployment) -> dict[str, Any]:
    url = f"{repo_url(gh, repo)}/deployments/{d.id}"
    return {
        "url": url, "id": d.id, "node_id": node_id("Deployment", d.id), "sha": d.sha,
        "ref": d.ref, "task": d.task, "payload": d.payload,
        "original_environment": d.original_environment, "environment": d.environment,
        "description": d.description, "creator": user(gh, d.creator),
        "created_at": gh_time(d.created_at), "updated_at": gh_time(d.updated_at),
        "statuses_url": f"{url}/statuses", "repository_url": repo_url(gh, repo),
        "transient_environment": d.transient_environment,
        "production_environment": d.production_environment, "performed_via_github_app": None,
    }


def deployment_status(gh: GitHubState, repo: GitHubRepo, d: Deployment, s: DeploymentStatus
                      ) -> dict[str, Any]:
    url = f"{repo_url(gh, repo)}/deployments/{d.id}"
    return {
        "url": f"{url}/statuses/{s.id}", "id": s.id,
        "node_id": node_id("DeploymentStatus", s.id), "state": s.state,
        "creator": user(gh, s.creator), "description": s.description,
        "environment": s.environment, "target_url": s.log_url, "log_url": s.log_url,
        "environment_url": s.environment_url, "created_at": gh_time(s.created_at),
        "updated_at": gh_time(s.updated_at), "deployment_url": url,
        "repository_url": repo_url(gh, repo), "performed_via_github_app": None,
    }


def app(gh: GitHubState, app_id: int, slug: str, owner: User) -> dict[str, Any]:
    return {
        "id": app_id, "slug": slug, "node_id": node_id("Integration", app_id),
        "client_id": f"Iv1.{app_id:016x}", "owner": user(gh, owner), "name": slug,
        "description": "", "external_url": f"{gh.state.base_url}/apps/{slug}",
        "html_url": f"{gh.state.base_url}/apps/{slug}", "created_at": gh_time(0.0),
        "updated_at": gh_time(0.0), "permissions": {"checks": "write", "metadata": "read"},
        "events": [],
    }


def check_run(gh: GitHubState, repo: GitHubRepo, cr: CheckRun, app_json: dict[str, Any]
              ) -> dict[str, Any]:
    url = f"{repo_url(gh, repo)}/check-runs/{cr.id}"
    output = {"title": None, "summary": None, "text": None, "annotations_count": 0,
              "annotations_url": f"{url}/annotations"}
    output.update({k: cr.output.get(k) for k in ("title", "summary", "text") if k in cr.output})
    return {
        "id": cr.id, "head_sha": cr.head_sha, "node_id": node_id("CheckRun", cr.id),
        "external_id": cr.external_id or "", "url": url,
        "html_url": f"{html_url(gh, repo)}/runs/{cr.id}", "details_url": cr.details_url,
        "status": cr.status, "conclusion": cr.conclusion,
        "started_at": gh_time(cr.started_at), "completed_at": gh_time(cr.completed_at),
        "output": output, "name": cr.name, "check_suite": {"id": cr.check_suite_id},
        "app": app_json, "pull_requests": [],
    }


def collaborator_permission(gh: GitHubState, repo: GitHubRepo, u: User) -> dict[str, Any]:
    role = gh.role_of(repo, u.username)
    permission = ROLES.get(role, "none") if role else "none"
    rank = ["read", "triage", "write", "maintain", "admin"]
    level = rank.index(role) if role in rank else -1
    perms = {name: level >= rank.index(need) for name, need in (
        ("pull", "read"), ("triage", "triage"), ("push", "write"), ("maintain", "maintain"),
        ("admin", "admin"))}
    return {"permission": permission, "role_name": role or "none",
            "user": {**user(gh, u), "permissions": perms, "role_name": role or "none"}}


def hook(gh: GitHubState, repo: GitHubRepo, h: GitHubHook) -> dict[str, Any]:
    url = f"{repo_url(gh, repo)}/hooks/{h.id}"
    config: dict[str, Any] = {"content_type": h.content_type, "insecure_ssl": "0", "url": h.url}
    if h.secret:
        config["secret"] = "********"  # noqa: S105 - GitHub masks the secret like this
    return {
        "type": "Repository", "id": h.id, "name": "web", "active": h.active,
        "events": list(h.events), "config": config, "updated_at": gh_time(h.updated_at),
        "created_at": gh_time(h.created_at), "url": url, "test_url": f"{url}/test",
        "ping_url": f"{url}/pings", "deliveries_url": f"{url}/deliveries",
        "last_response": {"code": None, "status": "unused", "message": None},
    }
