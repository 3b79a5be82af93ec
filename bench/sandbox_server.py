"""The sandbox forge in its own process for the benchmarks: `python -m bench.sandbox_server PORT`.

Same server as `manage.py sandbox`, except that with ``--nodelay`` (what the benchmarks use) the
handler sets TCP_NODELAY: as shipped, the sandbox writes headers and body in two segments and a
keep-alive client (python-gitlab, requests) then waits for the delayed ACK, about 40 ms per call,
which would be counted on top of the latency the benchmark injects. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import signal
from types import FrameType

from sandbox.server import SandboxRequestHandler, SandboxServer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--nodelay", action="store_true", help="set TCP_NODELAY on connections")
    parser.add_argument("--time-scale", type=float, default=1.0, help="sandbox clock speed-up")
    args = parser.parse_args()
    if args.nodelay:
        SandboxRequestHandler.disable_nagle_algorithm = True
    server = SandboxServer("127.0.0.1", args.port, time_scale=args.time_scale)

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()


if __name__ == "__main__":
    main()
