"""A start that explains itself: every problem that stops Baton from starting becomes one line
naming the setting and what is wrong, without a traceback (docs/operations.md, "Starting").

`settings_or_exit()` runs before any command, worker or web server uses the settings; the other
checks are what `make run` looks at before it says "running".
"""

from __future__ import annotations

import socket
import sys
from typing import NoReturn
from urllib.parse import urlsplit, urlunsplit

from django.core.exceptions import ImproperlyConfigured

PREFIX = "baton: "


def fail(message: str) -> NoReturn:
    """Print one line to stderr and stop with exit status 2 (a usage/configuration error)."""
    sys.stderr.write(f"{PREFIX}{first_line(message)}\n")
    raise SystemExit(2)


def first_line(text: object) -> str:
    lines = [line.strip() for line in str(text).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(text).__name__


def settings_or_exit() -> None:
    """Load the settings; a bad value becomes one line naming the variable (no traceback)."""
    from django.conf import settings

    try:
        settings.INSTALLED_APPS  # noqa: B018 - touching a setting loads the module
    except ImproperlyConfigured as exc:
        fail(f"configuration error: {exc}")


def without_password(url: str) -> str:
    """The URL as it may be shown: the password (if any) replaced by ***."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        user = parts.username or ""
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
    except ValueError:
        return "(unparseable URL)"


def database_problem() -> str | None:
    """Why the database cannot be used, in one line, or None when it answers."""
    from django.db import DatabaseError, connection

    try:
        connection.ensure_connection()
    except DatabaseError as exc:
        url = without_password(_setting_text("DATABASE_URL", "the embedded SQLite file"))
        return f"cannot reach the database (DATABASE_URL={url}): {first_line(exc)}"
    return None


def broker_problem(timeout: int = 3) -> str | None:
    """Why the Celery broker cannot be used, in one line, or None when it answers."""
    from django.conf import settings
    from kombu import Connection

    url = settings.CELERY_BROKER_URL
    if url.startswith(("filesystem://", "memory://")):
        return None
    try:
        with Connection(url, connect_timeout=timeout) as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=timeout)
    except Exception as exc:  # kombu and its transports raise many kinds
        return (
            f"cannot reach the broker (CELERY_BROKER_URL={without_password(url)}): "
            f"{first_line(exc)}"
        )
    return None


def port_problem(port: int, host: str = "127.0.0.1", *, setting: str = "PORT") -> str | None:
    """Why nothing of ours can listen on host:port, or None when the port is free. As our
    servers do, the probe reuses the address: connections of a server just stopped, still in
    TIME_WAIT, do not make the port busy (a restart right after Ctrl-C), a listener does."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            return (
                f"port {port} on {host} is in use or not allowed ({exc.strerror}); "
                f"choose another with `make run {setting}=<port>`"
            )
    return None


def _setting_text(name: str, default: str) -> str:
    import os

    return os.environ.get(name, default)
