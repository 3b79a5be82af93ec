"""The image's HEALTHCHECK: GET /healthz on the local web server, exit 0 when it answers 200.

Django answers only to the host names in ALLOWED_HOSTS, so the request names the first of them
(a leading dot or a "*" taken as "localhost").
"""

from __future__ import annotations

import http.client
import os
import sys


def host_header() -> str:
    for name in os.environ.get("ALLOWED_HOSTS", "localhost").split(","):
        name = name.strip().lstrip(".")
        if name and name != "*":
            return name
    return "localhost"


def main() -> int:
    port = int(os.environ.get("PORT", "8000"))
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=4)
    try:
        conn.request("GET", "/healthz", headers={"Host": host_header()})
        status = conn.getresponse().status
    except OSError as exc:
        print(f"healthcheck: no answer on port {port}: {exc}", file=sys.stderr)
        return 1
    finally:
        conn.close()
    if status != 200:
        print(f"healthcheck: /healthz answered {status}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
