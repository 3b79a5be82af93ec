"""Escaping for everything Baton writes on a forge (replies, the summary comment).

Labels, keys, refs, usernames and forge error messages are hostile text: written raw they could
mention `@all`, open HTML, break a table or a code span, or become a `javascript:` link. Every
piece of such text goes through one of these helpers on its way out.
"""

from __future__ import annotations

from chains.safe_url import safe_url

ZWJ = "\u200d"  # after `@`, so `@all` reads the same and notifies no one
_ENTITIES = {
    "&": "&amp;",
    "<": "&lt;",
    ">": "&gt;",
    "`": "&#96;",
    "[": "&#91;",
    "]": "&#93;",
    "*": "&#42;",
    "~": "&#126;",
    "|": "&#124;",
    "\\": "&#92;",
    "!": "&#33;",
    "#": "&#35;",
    "@": "@" + ZWJ,
    "\r": " ",
    "\n": " ",
}
_TABLE = str.maketrans(_ENTITIES)


def text(value: object) -> str:
    """Plain text that renders as itself in GitLab and GitHub markdown, tables included: no
    mention, no HTML, no emphasis, link, code or line break."""
    return _underscores(str(value).translate(_TABLE)).strip()


def _underscores(escaped: str) -> str:
    """`_` between two letters or digits never starts or ends emphasis (CommonMark, GFM and
    GitLab alike), so `RELEASE_STREAM` stays as it is; every other `_` becomes an entity."""
    if "_" not in escaped:
        return escaped
    last = len(escaped) - 1
    return "".join(
        "&#95;"
        if ch == "_"
        and not (0 < i < last and escaped[i - 1].isalnum() and escaped[i + 1].isalnum())
        else ch
        for i, ch in enumerate(escaped)
    )


def code(value: object) -> str:
    """``value`` as an inline code span; text that would break out of one (a backtick or a
    line break) is written as escaped plain text instead."""
    raw = str(value)
    if not raw or "`" in raw or "\n" in raw or "\r" in raw:
        return text(raw)
    return "`" + raw.replace("|", "\\|") + "`"  # `\|` keeps a table cell whole in both forges


def link(label: str, url: object) -> str:
    """A markdown link when ``url`` is http(s), else nothing. ``label`` is Baton's own words."""
    target = safe_url(url)
    if not target:
        return ""
    safe = target.replace("<", "%3C").replace(">", "%3E").replace("|", "%7C")
    return f"[{text(label)}](<{safe}>)"


def truncate(body: str, limit: int) -> str:
    """``body`` cut at a line boundary to at most ``limit`` characters, with a note saying so."""
    if len(body) <= limit:
        return body
    note = f"\n\n… cut: this reply had {len(body)} characters; at most {limit} are shown.\n"
    keep = body[: max(0, limit - len(note))]
    if "\n" in keep:
        keep = keep[: keep.rindex("\n")]
    return keep + note
