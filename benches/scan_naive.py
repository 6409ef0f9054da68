# SPDX-License-Identifier: Apache-2.0
"""The baseline of ``bench_scan.py``: the asyncio + ``ssl`` loop anyone would write first.

    python -m benches.scan_naive INVENTORY --concurrency N [--uvloop] [--abort]

Reads ``ip:port [sni]`` lines, opens ``asyncio.open_connection(ip, port, ssl=ctx,
server_hostname=sni)`` for each under a semaphore, takes the peer certificate DER, closes, and
prints one JSON line: ``{"targets", "ok", "failed", "seconds"}``. No verification, no dataset:
the least a scanner can do. Run in a process of its own so that its CPU time is its own.

``--abort`` drops each connection instead of ``close()`` + ``wait_closed()``: asyncio's TLS
transport (3.11) waits up to 30 s for the server's close_notify, and the in-process fleet
servers close without one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import time


def context() -> ssl.SSLContext:
    # Accept anything, as a scanner must; the same choices as pinscan's client context.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


async def grab(
    ip: str, port: int, sni: str | None, ctx: ssl.SSLContext, *, abort: bool = False
) -> bytes | None:
    # server_hostname="" sends no SNI (an IP-only target), as pinscan does.
    _, writer = await asyncio.open_connection(ip, port, ssl=ctx, server_hostname=sni or "")
    try:
        return writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    finally:
        if abort:
            writer.transport.abort()
        else:
            writer.close()
            await writer.wait_closed()


async def main(
    targets: list[tuple[str, int, str | None]], concurrency: int, *, abort: bool = False
) -> dict:
    ctx = context()
    limit = asyncio.Semaphore(concurrency)
    ok = failed = 0

    async def one(ip: str, port: int, sni: str | None) -> None:
        nonlocal ok, failed
        async with limit:
            try:
                async with asyncio.timeout(10):
                    der = await grab(ip, port, sni, ctx, abort=abort)
            except (OSError, ssl.SSLError, TimeoutError):
                der = None
        if der:
            ok += 1
        else:
            failed += 1

    started = time.perf_counter()
    await asyncio.gather(*(one(*t) for t in targets))
    return {
        "targets": len(targets),
        "ok": ok,
        "failed": failed,
        "seconds": time.perf_counter() - started,
    }


def read(path: str) -> list[tuple[str, int, str | None]]:
    targets = []
    with open(path) as f:
        for line in f:
            address, _, sni = line.strip().partition(" ")
            if address:
                ip, _, port = address.rpartition(":")
                targets.append((ip, int(port), sni or None))
    return targets


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inventory")
    parser.add_argument("--concurrency", type=int, default=500)
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop, not asyncio's loop")
    parser.add_argument("--abort", action="store_true", help="drop connections, no close_notify")
    args = parser.parse_args()
    targets = read(args.inventory)
    run = main(targets, args.concurrency, abort=args.abort)
    if args.uvloop:
        import uvloop

        result = uvloop.run(run)
    else:
        result = asyncio.run(run)
    print(json.dumps(result))
