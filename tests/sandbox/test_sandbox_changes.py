"""Changed files, labels and head commit messages of merge requests / pull requests, through the
real python-gitlab and PyGithub clients and the webhook receiver."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gitlab
import pytest
import requests
from github import Github

from sandbox.client import SandboxClient, wait_until
from sandbox.diffs import changed_files, merge_base, patch
from sandbox.model import Commit, User
from sandbox.server import SandboxServer

FIXTURES = Path("/work/shared/fixtures/webhooks")
INITIAL = {
    "src/app.py": "a = 1\nb = 2\nc = 3\n",
    "docs/old.md": "# Old\ntext\n",
    "remove.txt": "gone\n",
    "keep.txt": "keep\n",
}
CHANGE = {
    "src/app.py": "a = 1\nb = 20\nc = 3\n",
    "docs/old.md": None,
    "docs/new.md": "# Old\ntext\n",
    "remove.txt": None,
    "added.txt": "new",
}
MODIFIED = "@@ -1,3 +1,3 @@\n a = 1\n-b = 2\n+b = 20\n c = 3\n"
ADDED = "@@ -0,0 +1 @@\n+new\n\\ No newline at end of file\n"
REMOVED = "@@ -1 +0,0 @@\n-gone\n"


# -- the diff itself ---------------------------------------------------------------------------


def test_patch_is_gits_unified_format() -> None:
    assert patch("a = 1\nb = 2\nc = 3\n", "a = 1\nb = 20\nc = 3\n") == (MODIFIED, 1, 1)
    assert patch(None, "new") == (ADDED, 1, 0)
    assert patch("gone\n", None) == (REMOVED, 0, 1)
    assert patch("x", "x\n") == ("@@ -1 +1 @@\n-x\n\\ No newline at end of file\n+x\n", 1, 1)
    long_old = "".join(f"{i}\n" for i in range(20))
    hunks, _, _ = patch(long_old, long_old.replace("2\n", "two\n", 1).replace("17\n", "x\n"))
    assert [h for h in hunks.splitlines() if h.startswith("@@")] == [
        "@@ -1,6 +1,6 @@",
        "@@ -15,6 +15,6 @@",
    ]


def test_changed_files_and_merge_base() -> None:
    old = dict(INITIAL)
    new = {**old, **{k: v for k, v in CHANGE.items() if v is not None}}
    for path in ("docs/old.md", "remove.txt"):
        del new[path]
    got = [(c.path, c.status, c.old_path) for c in changed_files(old, new)]
    assert got == [
        ("added.txt", "added", "added.txt"),
        ("docs/new.md", "renamed", "docs/old.md"),
        ("remove.txt", "removed", "remove.txt"),
        ("src/app.py", "modified", "src/app.py"),
    ]
    u = User(1, "u", "U")
    commits = {
        s: Commit(s, {}, "", u, 0.0, p)
        for s, p in (("a", None), ("b", "a"), ("main", "b"), ("f1", "b"), ("f2", "f1"), ("x", None))
    }
    assert merge_base(commits, "main", "f2") == "b"
    assert merge_base(commits, "main", "x") is None


# -- GitLab --------------------------------------------------------------------------------------


def test_gitlab_merge_request_diffs(
    gl: gitlab.Gitlab, forge: SandboxServer, control: SandboxClient
) -> None:
    branch_point = control.create_project("acme/app", files=INITIAL)["head_sha"]
    control.commit("acme/app", {"keep.txt": "keep\n"}, branch="feature")  # cut from main
    main = control.commit("acme/app", {"main-only.txt": "later\n"})  # not part of the MR
    mr = control.open_merge_request("acme/app", "feature", files=CHANGE)
    pid, iid = mr["project_id"], mr["iid"]
    diffs = gl.http_list(f"/projects/{pid}/merge_requests/{iid}/diffs", get_all=True)
    assert isinstance(diffs, list)
    assert [(d["old_path"], d["new_path"]) for d in diffs] == [
        ("added.txt", "added.txt"),
        ("docs/old.md", "docs/new.md"),
        ("remove.txt", "remove.txt"),
        ("src/app.py", "src/app.py"),
    ]
    by_path = {d["new_path"]: d for d in diffs}
    assert by_path["added.txt"] | {"diff": ""} == {
        "old_path": "added.txt",
        "new_path": "added.txt",
        "a_mode": "0",
        "b_mode": "100644",
        "new_file": True,
        "renamed_file": False,
        "deleted_file": False,
        "generated_file": False,
        "diff": "",
    }
    assert by_path["added.txt"]["diff"] == ADDED
    assert by_path["src/app.py"]["diff"] == MODIFIED
    assert (
        by_path["remove.txt"]["deleted_file"],
        by_path["remove.txt"]["b_mode"],
        by_path["remove.txt"]["diff"],
    ) == (True, "0", REMOVED)
    assert (by_path["docs/new.md"]["renamed_file"], by_path["docs/new.md"]["diff"]) == (True, "")

    paged = gl.http_list(f"/projects/{pid}/merge_requests/{iid}/diffs", per_page=3, page=2)
    assert [d["new_path"] for d in paged] == ["src/app.py"]
    r = requests.get(
        f"{forge.url}/api/v4/projects/{pid}/merge_requests/{iid}/diffs",
        params={"per_page": "3", "unidiff": "true"},
        headers={"PRIVATE-TOKEN": "x"},
    )
    assert (r.headers["x-total"], r.headers["x-total-pages"]) == ("4", "2")
    assert r.json()[0]["diff"] == "--- /dev/null\n+++ b/added.txt\n" + ADDED

    project = gl.projects.get(pid, lazy=True)
    changes = project.mergerequests.get(iid, lazy=True).changes()
    assert isinstance(changes, dict)
    assert changes["iid"] == iid and changes["changes"] == diffs
    assert changes["changes_count"] == "4" and changes["overflow"] is False
    assert project.mergerequests.get(iid).diff_refs == {
        "base_sha": branch_point,
        "start_sha": main,
        "head_sha": mr["sha"],
    }

    control.push("acme/app", iid, {"added.txt": None, "src/app.py": INITIAL["src/app.py"]})
    after = gl.http_list(f"/projects/{pid}/merge_requests/{iid}/diffs", get_all=True)
    assert [d["new_path"] for d in after] == ["docs/new.md", "remove.txt"]
    control.merge("acme/app", iid)  # still the MR's own changes once merged
    merged = gl.http_list(f"/projects/{pid}/merge_requests/{iid}/diffs", get_all=True)
    assert merged == after


def test_gitlab_labels_in_rest_and_merge_request_hooks(
    gl: gitlab.Gitlab, control: SandboxClient, receiver: Any
) -> None:
    control.create_project("acme/app", hooks=[{"url": receiver.url, "token": "t"}])
    mr = control.open_merge_request(
        "acme/app",
        "feature",
        files={"a": "1"},
        labels=["release", "bug", "bug"],
        message="Add a\n\nLonger body",
    )
    control.open_merge_request("acme/app", "other", files={"b": "1"})
    assert mr["labels"] == ["bug", "release"]
    p = gl.projects.get("acme/app", lazy=True)
    assert p.mergerequests.get(mr["iid"]).labels == ["bug", "release"]
    assert [m.iid for m in p.mergerequests.list(labels=["bug"])] == [mr["iid"]]
    assert [m.iid for m in p.mergerequests.list(labels=["bug", "docs"])] == []
    assert [m.iid for m in p.mergerequests.list(labels="None")] == [2]

    edited = control.edit_merge_request("acme/app", mr["iid"], labels=["release", "docs"])
    assert edited["labels"] == ["docs", "release"]
    control.edit_merge_request(
        "acme/app", mr["iid"], add_labels=["ship"], remove_labels=["docs"], title="Add a!"
    )
    control.push("acme/app", mr["iid"], {"a": "2"}, message="Second commit")
    hooks = wait_until(
        lambda: (
            len(receiver.events("Merge Request Hook")) >= 5
            and receiver.events("Merge Request Hook")
        ),
        5,
        "5 MR hooks",
    )
    opened, _, relabel, retitle, pushed = (h["payload"] for h in hooks)

    expected_keys = set(
        json.loads((FIXTURES / "gitlab_merge_request.json").read_text())["labels"][0]
    )
    assert [lb["title"] for lb in opened["labels"]] == ["bug", "release"]
    assert opened["object_attributes"]["labels"] == opened["labels"]
    assert set(opened["labels"][0]) == expected_keys
    assert opened["labels"][0]["color"].startswith("#")
    assert opened["labels"][0]["project_id"] == mr["project_id"]
    assert opened["object_attributes"]["last_commit"]["message"] == "Add a\n\nLonger body"
    assert opened["object_attributes"]["last_commit"]["title"] == "Add a"

    changes = relabel["changes"]["labels"]
    assert [lb["title"] for lb in changes["previous"]] == ["bug", "release"]
    assert [lb["title"] for lb in changes["current"]] == ["docs", "release"]
    assert changes["current"][1] == changes["previous"][1]  # the same label, same id
    assert relabel["object_attributes"]["action"] == "update"
    assert set(retitle["changes"]) == {"title", "labels"}
    assert [lb["title"] for lb in retitle["labels"]] == ["release", "ship"]
    assert pushed["object_attributes"]["last_commit"]["message"] == "Second commit"
    assert "labels" not in pushed["changes"]

    r = control.session.post(
        f"{control.base_url}/_sandbox/projects/1/merge_requests/1/edit", json={"labels": 5}
    )
    assert r.status_code == 400


# -- GitHub ------------------------------------------------------------------------------------


def test_github_pull_request_files(
    gh: Github, control: SandboxClient, make_github: Callable[..., Github]
) -> None:
    control.create_github_repo("acme/api", files=INITIAL)
    control.github_commit("acme/api", {"keep.txt": "keep\n"}, branch="feature")
    control.github_commit("acme/api", {"main-only.txt": "later\n"})  # not part of the PR
    opened = control.open_pull_request("acme/api", "feature", files=CHANGE)
    head = opened["head"]["sha"]
    assert (opened["changed_files"], opened["additions"], opened["deletions"]) == (4, 2, 2)
    assert opened["commits"] == 2
    pr = gh.get_repo("acme/api").get_pull(1)
    files = list(pr.get_files())
    assert [(f.filename, f.status) for f in files] == [
        ("added.txt", "added"),
        ("docs/new.md", "renamed"),
        ("remove.txt", "removed"),
        ("src/app.py", "modified"),
    ]
    by_name = {f.filename: f for f in files}
    app = by_name["src/app.py"]
    assert (app.additions, app.deletions, app.changes) == (1, 1, 2)
    assert app.patch == MODIFIED.removesuffix("\n")
    assert app.raw_url.endswith(f"/raw/{head}/src/app.py")
    assert app.contents_url.endswith(f"/contents/src/app.py?ref={head}")
    assert by_name["added.txt"].patch == ADDED.removesuffix("\n")
    assert by_name["remove.txt"].patch == REMOVED.removesuffix("\n")
    renamed = by_name["docs/new.md"]
    assert (renamed.previous_filename, renamed.changes, renamed.patch) == ("docs/old.md", 0, None)
    assert by_name["added.txt"].previous_filename is None

    paged = make_github(per_page=3).get_repo("acme/api").get_pull(1).get_files()
    assert [f.filename for f in paged] == [f.filename for f in files]  # follows Link: next
    assert paged.totalCount == 4

    control.push_pull_request("acme/api", 1, {"added.txt": None})
    assert [f.filename for f in pr.get_files()] == ["docs/new.md", "remove.txt", "src/app.py"]


def test_github_labels_on_pull_requests_and_hooks(
    gh: Github, control: SandboxClient, receiver: Any
) -> None:
    control.create_github_repo(
        "acme/api", hooks=[{"url": receiver.url, "secret": "s", "events": ["pull_request"]}]
    )
    opened = control.open_pull_request(
        "acme/api", "feature", files={"a": "1"}, labels=["release", "bug"]
    )
    assert [lb["name"] for lb in opened["labels"]] == ["bug", "release"]
    repo = gh.get_repo("acme/api")
    assert [lb.name for lb in repo.get_pull(1).labels] == ["bug", "release"]
    assert [lb.name for lb in repo.get_issue(1).labels] == ["bug", "release"]
    bug = repo.get_pull(1).labels[0]
    assert len(bug.color) == 6 and not bug.color.startswith("#")

    control.edit_pull_request("acme/api", 1, labels=["release", "docs"])
    control.edit_pull_request("acme/api", 1, add_labels=["ship"], title="New title")
    control.edit_pull_request("acme/api", 1, title="New title")  # nothing changed: edited
    hooks = wait_until(
        lambda: (
            len(receiver.github_events("pull_request")) >= 8
            and receiver.github_events("pull_request")
        ),
        5,
        "8 pull_request hooks",
    )
    payloads = [h["payload"] for h in hooks]
    assert [(p["action"], p.get("label", {}).get("name")) for p in payloads] == [
        ("opened", None),
        ("labeled", "bug"),
        ("labeled", "release"),
        ("unlabeled", "bug"),
        ("labeled", "docs"),
        ("edited", None),
        ("labeled", "ship"),
        ("edited", None),
    ]
    assert [lb["name"] for lb in payloads[0]["pull_request"]["labels"]] == ["bug", "release"]
    assert [lb["name"] for lb in payloads[3]["pull_request"]["labels"]] == ["release"]
    assert [lb["name"] for lb in payloads[4]["pull_request"]["labels"]] == ["docs", "release"]
    assert payloads[5]["changes"] == {"title": {"from": "feature"}}
    assert payloads[7]["changes"] == {}
    assert payloads[1]["label"] == payloads[0]["pull_request"]["labels"][0]
    assert [lb.name for lb in repo.get_pull(1).labels] == ["docs", "release", "ship"]


@pytest.mark.parametrize("labels", ["", [1]])
def test_bad_labels_are_refused_before_committing(control: SandboxClient, labels: Any) -> None:
    control.create_github_repo("acme/api")
    r = control.session.post(
        f"{control.base_url}/_sandbox/github/repos/acme/api/pulls",
        json={"head": "feature", "files": {"a": "1"}, "labels": labels},
    )
    assert (r.status_code, "feature" in control.github_repo("acme/api")["branches"]) == (
        (201, True) if labels == "" else (400, False)
    )
