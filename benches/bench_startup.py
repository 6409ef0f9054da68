# SPDX-License-Identifier: Apache-2.0
"""How fast the command line starts: ``pinscan --help``, each ``pinscan <cmd> --help``,
``--version``, and ``python -c pass`` (the interpreter alone) in the same run, so the figures
read as what pinscan adds. CPU time (user + system of the child) is the steady figure on a shared
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
import statistics
import subprocess
import sys
import time

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
    return {
        "wall_median": statistics.median(walls),
        "wall_best": min(walls),
        "cpu_median": statistics.median(cpus),
        "cpu_best": min(cpus),
    }


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
    results = {name: measure(argv, args.runs) for name, argv in cases.items()}
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
