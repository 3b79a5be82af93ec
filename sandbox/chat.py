"""A local chat room that takes webhook posts, so tests and the demo see Baton's notifications.

``POST /_sandbox/chat/<room>`` stores the posted message (a JSON object, as Apprise's ``json://``
sends it: ``{"title", "message", "type"}``, or any form/JSON body); ``GET /_sandbox/chat/<room>``
lists the room's messages as JSON, oldest first; ``GET /_sandbox/chat/<room>/page`` shows them
as an HTML page. Bounded: at most ``MAX_ROOMS`` rooms of ``MAX_MESSAGES`` messages (the oldest
go), each field cut to ``MAX_TEXT`` characters. Not a forge imitation: it stands in for Slack,
Mattermost or any chat that takes an incoming webhook.
"""

from __future__ import annotations

import html
import re
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from sandbox.web import ApiError, Request, Response

if TYPE_CHECKING:
    from sandbox.control import ControlAPI

MAX_ROOMS = 50
MAX_MESSAGES = 200
MAX_TEXT = 20_000
ROOM = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def _text(value: Any) -> str:
    return (value if isinstance(value, str) else "" if value is None else str(value))[:MAX_TEXT]


class ChatRooms:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.rooms: dict[str, deque[dict[str, Any]]] = {}

    def register(self, control: ControlAPI) -> None:
        control.router.add("POST", "/chat/<room>", self.post)
        control.router.add("GET", "/chat/<room>", self.list)
        control.router.add("DELETE", "/chat/<room>", self.clear)
        control.router.add("GET", "/chat/<room>/page", self.page)

    def reset(self) -> None:
        with self.lock:
            self.rooms.clear()

    def messages(self, room: str) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.rooms.get(_room(room), ()))

    def post(self, request: Request, room: str) -> Response:
        name = _room(room)
        body = request.form if isinstance(request.form, dict) else {}
        message = {
            "title": _text(body.get("title")),
            "message": _text(body.get("message", body.get("text", body.get("body")))),
            "type": _text(body.get("type"))[:20],
            "received_at": time.time(),
        }
        with self.lock:
            if name not in self.rooms and len(self.rooms) >= MAX_ROOMS:
                raise ApiError(429, {"error": f"at most {MAX_ROOMS} rooms"})
            kept = self.rooms.setdefault(name, deque(maxlen=MAX_MESSAGES))
            message["id"] = (kept[-1]["id"] + 1) if kept else 1
            kept.append(message)
        return Response.json({"ok": True, "id": message["id"]}, 200)

    def list(self, request: Request, room: str) -> Response:
        return Response.json(self.messages(room))

    def clear(self, request: Request, room: str) -> Response:
        with self.lock:
            self.rooms.pop(_room(room), None)
        return Response.empty()

    def page(self, request: Request, room: str) -> Response:
        name = _room(room)
        items = "".join(
            f"<li><h2>{html.escape(m['title'])}</h2><pre>{html.escape(m['message'])}</pre></li>"
            for m in reversed(self.messages(name))
        )
        body = (
            "<!doctype html><html><head><meta charset='utf-8'><meta http-equiv='refresh' "
            f"content='5'><title>#{html.escape(name)} (sandbox chat)</title></head><body>"
            f"<h1>#{html.escape(name)}</h1><p>Messages posted to this sandbox chat room, newest "
            f"first.</p><ol reversed>{items or '<li>No messages yet.</li>'}</ol></body></html>"
        )
        return Response(200, body.encode(), "text/html; charset=utf-8")


def _room(room: str) -> str:
    if not ROOM.match(room):
        raise ApiError(400, {"error": "a room name is 1 to 64 letters, digits, _ . or -"})
    return room
