"""Sending one message to one channel through Apprise, and keeping its secrets out of errors.

An Apprise URL carries the service's credentials (a webhook token in its path, a password in
its user part, a key in its query). Whatever Apprise says about a failed send may quote them, so
every error text goes through ``scrubbed`` before it is stored, logged or shown.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit

import apprise

MASK = "••••"
MAX_ERROR = 500
MAX_URL = 2000
# Any URL-looking word in an error: its address part is dropped (``json://••••``).
_URLISH = re.compile(r"\b([a-z][a-z0-9+.-]{1,20})://[^\s'\"<>]+", re.IGNORECASE)


@dataclass(frozen=True)
class Sent:
    ok: bool
    error: str = ""  # scrubbed
    permanent: bool = False  # retrying cannot help (Apprise does not understand the URL)


def understood(url: str) -> bool:
    """Whether Apprise knows the service this URL names (checked when an admin saves it)."""
    return bool(url) and len(url) <= MAX_URL and apprise.Apprise().add(url)


def send(url: str, title: str, body: str) -> Sent:
    sender = apprise.Apprise()
    if not understood(url) or not sender.add(url):
        return Sent(False, "Apprise does not understand this channel's URL", permanent=True)
    with apprise.LogCapture(level=logging.WARNING) as logs:
        try:
            result = sender.notify(title=title, body=body, body_format=apprise.NotifyFormat.TEXT)
        except Exception as exc:  # a plugin's bug must not lose the row: retried, then failed
            return Sent(False, scrubbed(f"{type(exc).__name__}: {exc}", url))
        said = logs.getvalue()  # type: ignore[union-attr]
    if result:
        return Sent(True)
    lines = [line.split(" - ", 2)[-1] for line in said.splitlines() if line.strip()]
    return Sent(False, scrubbed(" ".join(lines) or "the service refused the message", url))


def secrets_of(url: str) -> list[str]:
    """The parts of ``url`` that may be secret, longest first: the whole URL, its address after
    the scheme, the user and password, every path segment and query value of 4+ characters."""
    parts = {url}
    try:
        split = urlsplit(url)
    except ValueError:
        return [url]
    rest = url.split("://", 1)[-1]
    parts.update({rest, split.netloc})
    for value in (split.username, split.password):
        if value:
            parts.update({value, unquote(value)})
    for segment in split.path.split("/"):
        if len(segment) >= 4:
            parts.update({segment, unquote(segment)})
    for _, value in parse_qsl(split.query, keep_blank_values=False):
        if len(value) >= 4:
            parts.add(value)
    return sorted((p for p in parts if p), key=len, reverse=True)


def scrubbed(text: str, url: str) -> str:
    """``text`` with every secret-looking part of ``url`` and every URL's address masked, on one
    line, at most MAX_ERROR characters."""
    for part in secrets_of(url):
        text = text.replace(part, MASK)
    text = _URLISH.sub(lambda m: f"{m.group(1)}://{MASK}", text)
    text = " ".join(text.split())
    return text if len(text) <= MAX_ERROR else text[: MAX_ERROR - 1] + "…"
