# SPDX-License-Identifier: Apache-2.0
"""Delayed TLS servers in a process of their own, for the latency-bound part of ``bench_scan.py``.

    python -m benches.scan_fleet_server --servers 50 --delay 0.2 --backlog 2048

Starts ``--servers`` :func:`fleet.servers.tls` servers that answer each ClientHello ``--delay``
seconds late, each on its own loopback address (127.0.2.1, 127.0.2.2, ...): pinscan caps
connections per address (16 by default), so a fleet on one address would measure that cap,
not scaling. Prints one JSON line ``{"endpoints": [[ip, port], ...], "pid": ...}`` once all
listen, then serves until its standard input closes. Its CPU time is its own, not the client's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys

from fleet import pki, servers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=50)
    parser.add_argument("--delay", type=float, default=0.2)
    parser.add_argument("--backlog", type=int, default=2048)
    args = parser.parse_args()
    try:  # uvloop makes each server-side handshake cheaper: more of the 2 cores for the client
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    issued = pki.leaf("delayed.test")
    with contextlib.ExitStack() as stack:
        running = [
            stack.enter_context(
                servers.tls(
                    issued,
                    delay=args.delay,
                    backlog=args.backlog,
                    host=f"127.0.2.{i + 1}",
                    kind="delayed",
                )
            )
            for i in range(args.servers)
        ]
        endpoints = [[s.host, s.port] for s in running]
        print(json.dumps({"endpoints": endpoints}), flush=True)
        sys.stdin.read()  # until the benchmark closes the pipe (or dies)


if __name__ == "__main__":
    main()
