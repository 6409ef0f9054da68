# SPDX-License-Identifier: Apache-2.0
"""``pinscan scan`` in one process versus ``--dask local`` with 2 workers, on 100,000 targets.

The inventory is mostly closed loopback ports spread over 127.0.0.0/8 (refused at once: the
scanner's own CPU cost per target) plus a local TLS fleet (``scan_fleet_server.py``, in a process
of its own, no delay) reached under many SNI names. Each run is the CLI in a child process, timed
wall to wall; the two datasets are checked to hold the same endpoints and statuses. The Dask
overhead is measured twice: the fixed cost (cluster start, split, teardown) as the wall time of
a 16-target run, and the cost per shard as the time the two workers were not inside a shard's
scanner, spread over the shards.

    flock /tmp/pinscan-bench.lock .venv/bin/python -m benches.bench_dask [--targets 100000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _closed(i: int) -> str:
    """The i-th closed port: port 9 of 127.1.0.1, 127.1.0.2, ..., 250 addresses per /24."""
    return f"127.{1 + i // 62500}.{i // 250 % 250}.{i % 250 + 1}:9"


def _run(cmd: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=100_000)
    parser.add_argument("--fleet-targets", type=int, default=4_000)
    parser.add_argument("--shards", type=int, default=8)
    args = parser.parse_args()

    import pinscan

    fleet = subprocess.Popen(
        [sys.executable, "-m", "benches.scan_fleet_server", "--servers", "20", "--delay", "0"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        endpoints = json.loads(fleet.stdout.readline())["endpoints"]  # type: ignore[union-attr]
        with tempfile.TemporaryDirectory(prefix="bench-dask-") as tmp:
            root = Path(tmp)
            lines = [
                f"{ip}:{port} h{i}.delayed.test"
                for i in range(args.fleet_targets)
                for ip, port in [endpoints[i % len(endpoints)]]
            ]
            closed = args.targets - len(lines)
            lines += [_closed(i) for i in range(closed)]
            inventory = root / "inventory.txt"
            inventory.write_text("\n".join(lines) + "\n")
            tiny = root / "tiny.txt"
            tiny.write_text("\n".join(lines[-16:]) + "\n")

            pinscan_cli = [sys.executable, "-m", "pinscan", "scan", "-q", "--retries", "0"]
            dask = ["--dask", "local", "--dask-workers", "2", "--shards", str(args.shards)]
            single_s = _run([*pinscan_cli, str(inventory), "-o", str(root / "single")])
            dask_s = _run([*pinscan_cli, str(inventory), "-o", str(root / "dask"), *dask])
            fixed_s = _run([*pinscan_cli, str(tiny), "-o", str(root / "tiny"), *dask])

            single, sharded = pinscan.open(root / "single"), pinscan.open(root / "dask")
            a = single.endpoints.group_by("status").len().sort("status").collect()
            b = sharded.endpoints.group_by("status").len().sort("status").collect()
            assert a.equals(b), (a, b)
            shard_seconds = [
                json.loads(p.read_text())["counts"]["seconds"]
                for p in (root / "dask" / "shards").glob("*/scan.json")
            ]
    finally:
        fleet.stdin.close()  # type: ignore[union-attr]
        fleet.wait(timeout=30)

    busy = sum(shard_seconds)
    per_shard = (2 * (dask_s - fixed_s) - busy) / len(shard_seconds)
    result = {
        "targets": args.targets,
        "tls_targets": args.fleet_targets,
        "shards": args.shards,
        "statuses": dict(a.iter_rows()),
        "single_process_s": round(single_s, 2),
        "dask_local_2_workers_s": round(dask_s, 2),
        "speedup": round(single_s / dask_s, 2),
        "single_targets_per_s": round(args.targets / single_s),
        "dask_targets_per_s": round(args.targets / dask_s),
        "dask_fixed_overhead_s": round(fixed_s, 2),
        "shard_scanner_seconds": sorted(round(s, 2) for s in shard_seconds),
        "overhead_per_shard_s": round(per_shard, 3),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
