"""The sandbox's chat room: takes Apprise's json:// posts, lists them, shows them escaped, stays
bounded, and refuses room names that are not plain."""

from __future__ import annotations

import apprise
import requests

from sandbox import chat
from sandbox.client import SandboxClient
from sandbox.server import SandboxServer


def test_apprise_json_posts_arrive_in_order(forge: SandboxServer, control: SandboxClient) -> None:
    sender = apprise.Apprise()
    assert sender.add(control.chat_url("releases"))
    assert sender.notify(title="Chain failed: acme/app !1", body="line 1\nline 2")
    assert sender.notify(title="Chain recovered: acme/app !1", body="green")
    first, second = control.chat_messages("releases")
    assert (first["id"], first["title"], first["message"]) == (
        1,
        "Chain failed: acme/app !1",
        "line 1\nline 2",
    )
    assert second["title"] == "Chain recovered: acme/app !1"
    assert control.chat_messages("elsewhere") == []


def test_the_page_escapes_what_was_posted(forge: SandboxServer, control: SandboxClient) -> None:
    url = f"{control.base_url}/_sandbox/chat/room"
    requests.post(url, json={"title": "<script>x</script>", "message": "a & b"}, timeout=5)
    page = requests.get(url + "/page", timeout=5)
    assert page.headers["Content-Type"].startswith("text/html")
    assert "&lt;script&gt;x&lt;/script&gt;" in page.text and "<script>" not in page.text
    assert "a &amp; b" in page.text


def test_rooms_are_bounded_and_named_plainly(forge: SandboxServer, control: SandboxClient) -> None:
    url = f"{control.base_url}/_sandbox/chat"
    for n in range(chat.MAX_MESSAGES + 5):
        requests.post(f"{url}/busy", json={"title": str(n)}, timeout=5)
    kept = control.chat_messages("busy")
    assert len(kept) == chat.MAX_MESSAGES and kept[0]["title"] == "5"
    assert requests.get(f"{url}/a%2Fb", timeout=5).status_code in (400, 404)
    assert requests.get(f"{url}/{'x' * 65}", timeout=5).status_code == 400
    control.reset()
    assert control.chat_messages("busy") == []
