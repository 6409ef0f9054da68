# SPDX-License-Identifier: Apache-2.0
"""``pinscan scan --processes 1`` against ``--processes 2`` (and more, if asked) on one local fleet.

The inventory: TLS targets on a local fleet (``scan_fleet_server.py``, in a process of its own,
no delay) reached under many SNI names, and closed loopback ports spread over 127.0.0.0/8
(refused at once: the scanner's own cost per target). Each run is the CLI in a child process,
start-up included, timed wall to wall; its CPU is that of the CLI and every process under it
(workers, verification children), not the fleet's. The datasets are checked to hold the same
endpoints. Best of ``--runs`` runs each, interleaved, so a neighbour's load hits every count.

    flock /tmp/pinscan-bench.lock .venv/bin/python -m benches.bench_processes \\
        [--tls 2000] [--closed 3000] [--processes 1,2] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _closed(i: int) -> str:
    return f"127.{1 + i // 62500}.{i // 250 % 250}.{i % 250 + 1}:9"


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
    args = parser.parse_args()
    counts = [int(n) for n in args.processes.split(",")]

    import pinscan

    fleet = subprocess.Popen(
        [sys.executable, "-m", "benches.scan_fleet_server", "--servers", str(args.servers),
         "--delay", "0"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    results: dict[int, list[tuple[float, float]]] = {n: [] for n in counts}
    try:
        endpoints = json.loads(fleet.stdout.readline())["endpoints"]  # type: ignore[union-attr]
        with tempfile.TemporaryDirectory(prefix="bench-processes-") as tmp:
            root = Path(tmp)
            lines = [
                f"{ip}:{port} h{i}.delayed.test"
                for i in range(args.tls)
                for ip, port in [endpoints[i % len(endpoints)]]
            ]
            lines += [_closed(i) for i in range(args.closed)]
            inventory = root / "inventory.txt"
            inventory.write_text("\n".join(lines) + "\n")
            cli = [sys.executable, "-m", "pinscan", "scan", str(inventory), "-q", "--retries", "0"]
            statuses = {}
            for run in range(args.runs):
                for n in counts:
                    out = root / f"p{n}-{run}"
                    results[n].append(_run([*cli, "-o", str(out), "--processes", str(n)]))
                    ds = pinscan.open(out)
                    by = ds.endpoints.group_by("status").len().sort("status").collect()
                    statuses[n] = dict(by.iter_rows())
                    assert ds.endpoints.collect()["endpoint_id"].n_unique() == len(lines)
            assert all(s == statuses[counts[0]] for s in statuses.values()), statuses
    finally:
        fleet.stdin.close()  # type: ignore[union-attr]
        fleet.wait(timeout=30)

    targets = len(lines)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}; {targets} targets ({args.tls} TLS on {args.servers} "
          f"servers, {args.closed} closed ports); best of {args.runs}")  # fmt: skip
    print(f"statuses: {statuses[counts[0]]}")
    print(f"{'processes':>9} {'wall s':>8} {'targets/s':>10} {'CPU s':>7} {'CPU ms/target':>14}")
    base = min(w for w, _ in results[counts[0]])
    for n in counts:
        wall = min(w for w, _ in results[n])
        cpu = min(c for _, c in results[n])
        print(f"{n:>9} {wall:>8.2f} {targets / wall:>10.0f} {cpu:>7.2f} "
              f"{cpu / targets * 1e3:>14.3f}   speed-up {base / wall:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
