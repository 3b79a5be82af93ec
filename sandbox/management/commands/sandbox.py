"""``python manage.py sandbox --port N``: run the sandbox forge in the foreground until Ctrl-C."""

from __future__ import annotations

import signal
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from sandbox.server import SandboxServer

DEFAULT_STATE = "var/sandbox-state.pickle"


class Command(BaseCommand):
    help = ("Run the sandbox forge (GitLab REST v4 at /api/v4, GitHub REST v3 at /api/v3, "
            "control API at /_sandbox).")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=8090)
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--time-scale", type=float, default=1.0,
                            help="divide every simulated pipeline duration by this factor")
        parser.add_argument("--state", default=DEFAULT_STATE, metavar="FILE",
                            help="keep the forge's world in FILE across restarts (ids are never "
                            f"reused; default {DEFAULT_STATE}); '' keeps it in memory only")

    def handle(self, *args: Any, **options: Any) -> None:
        server = SandboxServer(options["host"], options["port"], options["time_scale"],
                               options["state"] or None)

        def stop(signum: int, frame: FrameType | None) -> None:
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, stop)
        self.stdout.write(
            f"Sandbox forge on {server.url} (GitLab API {server.url}/api/v4, "
            f"GitHub API {server.url}/api/v3, "
            f"control {server.url}/_sandbox, time scale {options['time_scale']}, "
            f"state {options['state'] or 'in memory'}). Ctrl-C stops."
        )
        try:
            server.serve_forever(poll_interval=0.2)
        except KeyboardInterrupt:
            pass
        finally:
            server.shutdown()
            self.stdout.write("Sandbox forge stopped.")
