"""HTTP transport for the sandbox forge (stdlib ``ThreadingHTTPServer``).

The handler keeps the raw, still percent-encoded request path, so ``projects/group%2Fsub%2Fproj``
and ``files/ci%2Fdownstream.env/raw`` route as single segments.

    server = serve_in_thread(port=0, time_scale=20)   # tests
    server.url  # http://127.0.0.1:54321
    server.shutdown()
"""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sandbox.app import Sandbox
from sandbox.web import ApiError, Request, Response

log = logging.getLogger(__name__)


class SandboxRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "SandboxForge/1.0"
    # Answer at once on kept-alive connections instead of waiting on the client's delayed ACK.
    disable_nagle_algorithm = True
    server: SandboxServer

    def _handle(self) -> None:
        path, _, query = self.path.partition("?")
        if path.startswith(("http://", "https://")):  # absolute-form request target
            path = "/" + path.split("://", 1)[1].partition("/")[2]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            request = Request(self.command, path, query, headers, body)
        except ApiError as exc:  # unparseable body
            response: Response | None = exc.response()
        else:
            response = self.server.sandbox.handle(request)
        if response is None:  # injected fault: drop the connection without an answer
            self.close_connection = True
            return
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _handle

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("sandbox: " + format, *args)


class SandboxServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024
    allow_reuse_address = True

    def __init__(self, host: str = "127.0.0.1", port: int = 0, time_scale: float = 1.0,
                 state_file: str | None = None) -> None:
        super().__init__((host, port), SandboxRequestHandler)
        self.host = host
        self.port = int(self.server_address[1])
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else host  # noqa: S104
        self.url = f"http://{shown}:{self.port}"
        self.sandbox = Sandbox(self.url, time_scale=time_scale, state_file=state_file)
        self.sandbox.start()
        self._thread: threading.Thread | None = None

    def serve_in_background(self) -> SandboxServer:
        self._thread = threading.Thread(target=self.serve_forever, name="sandbox-http",
                                        daemon=True, kwargs={"poll_interval": 0.1})
        self._thread.start()
        return self

    def shutdown(self) -> None:
        """Stop serving (from any thread but the serving one), stop the clock and the sender."""
        if self._thread is not None and self._thread.is_alive():
            super().shutdown()
            self._thread.join(timeout=2)
        self.server_close()
        self.sandbox.stop()


def serve_in_thread(port: int = 0, host: str = "127.0.0.1", time_scale: float = 1.0,
                    state_file: str | None = None) -> SandboxServer:
    """A sandbox serving from a background thread; in memory unless ``state_file`` is given."""
    return SandboxServer(host, port, time_scale, state_file).serve_in_background()
