"""The one rule for links built from payloads and forge answers: only http(s) URLs with a host
become links; `javascript:`, `data:` and anything else is dropped (shown as no link at all)."""

from __future__ import annotations

from urllib.parse import urlsplit

SCHEMES = ("http", "https")


def safe_url(url: object) -> str:
    """``url`` when it is an absolute http(s) URL with a host, else ""."""
    if not isinstance(url, str) or not url:
        return ""
    text = url.strip()
    if any(ord(ch) < 0x20 or ch in "\x7f\\ " for ch in text):
        return ""  # browsers drop tabs and newlines inside schemes: "java\tscript:" is a trap
    try:
        parts = urlsplit(text)
    except ValueError:
        return ""
    if parts.scheme.lower() not in SCHEMES or not parts.hostname:
        return ""
    return text
