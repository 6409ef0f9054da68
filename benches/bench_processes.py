# SPDX-License-Identifier: Apache-2.0
"""``pinscan scan --processes 1`` against ``--processes 2`` (and more, if asked) on one local fleet.

The inventory: TLS targets on a local fleet (``scan_fleet_server.py``, in a process of its own,
no delay) reached under many SNI names, and closed loopback ports spread over 127.0.0.0/8
(refused at once: the scanner's own cost per target). Each run is the CLI in a child process,
start-up included, timed wall to wall; its CPU is that of the CLI and every process under it
(workers, verification children), not the fleet's. The datasets are checked to hold the same
endpoints. Best of ``--runs`` runs each, interleaved, so a neighbour's load hits every count.

    flock /tmp/pinscan-bench.lock .venv/bin/python -m benches.bench_processes \\
        [--tls 2000] [--closed 3000] [--processes 1,2] [--runs 3] [--server python|nginx] \\
        [--engine auto|rustls|openssl]

``--server nginx`` serves the TLS targets from nginx (one worker, ``--servers`` ports with an
ECDSA P-256 leaf + intermediate each, on 127.0.0.1) instead of the Python fleet: a handshake
then costs the server about a third of what it costs the Python servers, so a 100,000-target
run measures the client more than the fleet. The server's CPU over each run is printed too.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from benches.scan_measure import tree_cpu


def _closed(i: int) -> str:
    return f"127.{1 + i // 62500}.{i // 250 % 250}.{i % 250 + 1}:9"


@contextlib.contextmanager
def _fleet(kind: str, servers: int, tmp: Path) -> Iterator[tuple[int, list[tuple[str, int]]]]:
    """The TLS servers: their process id (counted with its children) and addresses."""
    if kind == "nginx":
        from fleet import pki, real

        sites = [real.Site(f"site{i}", pki.leaf(f"site{i}.delayed.test")) for i in range(servers)]
        with real.nginx(sites, tmp / "nginx", workers=1) as ng:
            assert ng.prefix is not None
            pid = int((ng.prefix / "nginx.pid").read_text())
            yield pid, [("127.0.0.1", port) for port in ng.ports.values()]
        return
    fleet = subprocess.Popen(
        [sys.executable, "-m", "benches.scan_fleet_server", "--servers", str(servers),
         "--delay", "0"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        yield fleet.pid, json.loads(fleet.stdout.readline())["endpoints"]  # type: ignore[union-attr]
    finally:
        fleet.stdin.close()  # type: ignore[union-attr]
        fleet.wait(timeout=30)


def _run(cmd: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds (user + system of the command and everything under it)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tls", type=int, default=2000, help="TLS targets on the fleet")
    parser.add_argument("--closed", type=int, default=3000, help="closed loopback ports")
    parser.add_argument("--servers", type=int, default=8)
    parser.add_argument("--processes", default="1,2")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--server", choices=("python", "nginx"), default="python")
    parser.add_argument("--engine", choices=("auto", "rustls", "openssl"), default="auto")
    args = parser.parse_args()
    counts = [int(n) for n in args.processes.split(",")]

    import pinscan

    results: dict[int, list[tuple[float, float, float]]] = {n: [] for n in counts}
    with tempfile.TemporaryDirectory(prefix="bench-processes-") as tmp:
        root = Path(tmp)
        with _fleet(args.server, args.servers, root) as (server, endpoints):
            lines = [
                f"{ip}:{port} h{i}.delayed.test"
                for i in range(args.tls)
                for ip, port in [endpoints[i % len(endpoints)]]
            ]
            lines += [_closed(i) for i in range(args.closed)]
            inventory = root / "inventory.txt"
            inventory.write_text("\n".join(lines) + "\n")
            cli = [sys.executable, "-m", "pinscan", "scan", str(inventory), "-q", "--retries", "0",
                   "--engine", args.engine]  # fmt: skip
            statuses = {}
            for run in range(args.runs):
                for n in counts:
                    out = root / f"p{n}-{run}"
                    served = tree_cpu(server)
                    wall, cpu = _run([*cli, "-o", str(out), "--processes", str(n)])
                    results[n].append((wall, cpu, tree_cpu(server) - served))
                    print(f"  run {run + 1}, {n} processes: {wall:.2f} s wall, {cpu:.2f} s CPU",
                          flush=True)  # fmt: skip
                    ds = pinscan.open(out)
                    by = ds.endpoints.group_by("status").len().sort("status").collect()
                    statuses[n] = dict(by.iter_rows())
                    assert ds.endpoints.collect()["endpoint_id"].n_unique() == len(lines)
                    shutil.rmtree(out)  # 100,000 endpoints a run: keep the disk
            assert all(s == statuses[counts[0]] for s in statuses.values()), statuses

    targets = len(lines)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}; {targets} targets ({args.tls} TLS on {args.servers} "
          f"{args.server} servers, {args.closed} closed ports), engine {args.engine}; "
          f"best of {args.runs}")  # fmt: skip
    print(f"statuses: {statuses[counts[0]]}")
    print(f"{'processes':>9} {'wall s':>8} {'targets/s':>10} {'CPU s':>7} {'CPU ms/target':>14} "
          f"{'server CPU s':>13}")  # fmt: skip
    base = min(w for w, _, _ in results[counts[0]])
    for n in counts:
        wall = min(w for w, _, _ in results[n])
        cpu = min(c for _, c, _ in results[n])
        served = min(s for _, _, s in results[n])
        print(f"{n:>9} {wall:>8.2f} {targets / wall:>10.0f} {cpu:>7.2f} "
              f"{cpu / targets * 1e3:>14.3f} {served:>13.2f}   "
              f"speed-up {base / wall:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
