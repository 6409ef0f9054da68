# SPDX-License-Identifier: Apache-2.0
"""How fast the command line starts: ``pinscan --help``, each ``pinscan <cmd> --help``,
``--version``, ``pinscan scan`` of an empty inventory (all of it) and of one target up to its
first connection (the CPU the process has used when a loopback listener accepts it), and
``python -c pass`` (the interpreter alone) in the same run, so the figures read as what pinscan
adds. CPU time (user + system of the child) is the steady figure on a shared
machine; wall time is what a person waits.

    python -m benches.bench_startup [--runs 20] [--json OUT.json] [--before PYTHON]

``--before`` names the interpreter of another build (say, a worktree of an older commit with its
own ``.venv``): its pinscan runs the same commands, after this one's, in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pinscan.cli import COMMANDS


def measure(argv: list[str], runs: int) -> dict[str, float]:
    """Median and best wall and CPU seconds of ``argv`` over ``runs`` runs (after one warm-up)."""
    walls, cpus = [], []
    env = {**os.environ, "COLUMNS": "100"}
    for i in range(runs + 1):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, env=env, check=True)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        if i:  # the first run warms the file cache
            walls.append(wall)
            cpus.append(cpu)
    return _summary(walls, cpus)


def _summary(walls: list[float], cpus: list[float]) -> dict[str, float]:
    return {
        "wall_median": statistics.median(walls),
        "wall_best": min(walls),
        "cpu_median": statistics.median(cpus),
        "cpu_best": min(cpus),
    }


def first_connection(python: str, runs: int) -> dict[str, float]:
    """Median and best wall and CPU seconds of ``pinscan scan 127.0.0.1:PORT -o OUT`` from its
    start to the moment a loopback listener accepts its first connection (its CPU read from
    ``/proc`` then), over ``runs`` runs after one warm-up."""
    walls, cpus = [], []
    tick = os.sysconf("SC_CLK_TCK")
    with socket.socket() as listener, tempfile.TemporaryDirectory() as tmp:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        for i in range(runs + 1):
            out = Path(tmp) / f"out{i}"
            argv = [python, "-m", "pinscan", "scan", f"127.0.0.1:{port}", "-o", str(out), "-q",
                    "--retries", "0", "--deadline", "1"]  # fmt: skip
            started = time.perf_counter()
            proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
            conn, _ = listener.accept()
            wall = time.perf_counter() - started
            with open(f"/proc/{proc.pid}/stat", encoding="ascii") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            cpu = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
            conn.close()
            proc.wait()
            shutil.rmtree(out, ignore_errors=True)
            if i:
                walls.append(wall)
                cpus.append(cpu)
    return _summary(walls, cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--json", help="also write the figures here")
    parser.add_argument("--before", help="the Python of another build, measured alongside")
    args = parser.parse_args()
    cases = {"python -c pass": [sys.executable, "-c", "pass"]}
    for label, python in (("", sys.executable), ("before: ", args.before)):
        if python is None:
            continue
        pinscan = [python, "-m", "pinscan"]
        cases[f"{label}pinscan --version"] = [*pinscan, "--version"]
        cases[f"{label}pinscan --help"] = [*pinscan, "--help"]
        cases.update({f"{label}pinscan {c} --help": [*pinscan, c, "--help"] for c in COMMANDS})
        empty = os.path.join(tempfile.mkdtemp(prefix="bench-startup-"), "empty.txt")
        open(empty, "w").close()
        cases[f"{label}pinscan scan EMPTY (all)"] = [*pinscan, "scan", empty, "-q"]
    results = {name: measure(argv, args.runs) for name, argv in cases.items()}
    for label, python in (("", sys.executable), ("before: ", args.before)):
        if python is not None:
            results[f"{label}pinscan scan (1st connection)"] = first_connection(python, args.runs)
    print(f"{platform.processor() or platform.machine()}, Python {platform.python_version()}, "
          f"{args.runs} runs each (median / best, ms)")  # fmt: skip
    print(f"{'command':<36} {'wall':>15} {'CPU':>15}")
    for name, r in results.items():
        wall = f"{r['wall_median'] * 1e3:.0f} / {r['wall_best'] * 1e3:.0f}"
        cpu = f"{r['cpu_median'] * 1e3:.0f} / {r['cpu_best'] * 1e3:.0f}"
        print(f"{name:<36} {wall:>15} {cpu:>15}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
