# SPDX-License-Identifier: Apache-2.0
"""Process accounting for ``bench_scan.py``: child processes timed with their own rusage, CPU
time of running processes read from ``/proc``, peak and sampled RSS, and the machine's other
load during a measurement.

Linux only (``/proc``, ``os.wait4``). The machine the benchmarks run on is shared, so every
measurement also records how busy the whole machine was: a ratio taken while a neighbour ate
a core says so next to it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

TICK = os.sysconf("SC_CLK_TCK")


def machine_busy() -> float:
    """Seconds of CPU the whole machine spent busy since boot, all cores (``/proc/stat``)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    # user nice system idle iowait irq softirq: steal is another VM's, and guest time is
    # already inside user and nice.
    return (sum(fields[:7]) - fields[3] - fields[4]) / TICK


def wait_quiet(limit_s: float, idle_cores: float = 1.5, window_s: float = 5.0) -> dict[str, float]:
    """Wait, at most ``limit_s``, for a ``window_s`` in which the machine left ``idle_cores``
    idle: a neighbour's build or fuzzer then is not mid-run. Returns what was seen."""
    started = time.monotonic()
    while True:
        before = machine_busy()
        time.sleep(window_s)
        idle = (os.cpu_count() or 1) - (machine_busy() - before) / window_s
        waited = time.monotonic() - started
        if idle >= idle_cores or waited >= limit_s:
            return {"waited_s": round(waited, 1), "idle_cores": round(idle, 2)}


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a running process (all its threads); 0 once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    fields = stat.rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def tree_pids(pid: int) -> list[int]:
    """``pid`` and its children, recursively (an nginx master and its workers)."""
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        try:
            children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        todo.extend(int(c) for c in children)
    return pids


def tree_cpu(pid: int) -> float:
    return sum(process_cpu(p) for p in tree_pids(pid))


def rss_mb(pid: int, field: str = "VmRSS") -> float | None:
    """``VmRSS`` (now) or ``VmHWM`` (the peak so far of the running program) of ``pid``."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    match = re.search(rf"^{field}:\s+(\d+) kB", status, re.M)
    return int(match.group(1)) / 1024 if match else None


TIME = "/usr/bin/time"
_PEAK = "pinscan-bench-peak-rss-kb"


@dataclasses.dataclass
class Child:
    """A finished child process: its exit code, output, wall time and its own rusage.

    ``maxrss_mb`` is ``wait4``'s ``ru_maxrss``, which Linux takes as the larger of the program's
    peak and the RSS of *this* process when it forked the child: a benchmark that has grown
    reports its own size there. ``peak_rss_mb`` is the program's own peak, from GNU time (a
    small process in between) or, without it, the last ``VmHWM`` sampled."""

    returncode: int
    stdout: str
    stderr: str
    wall_s: float
    user_s: float
    sys_s: float
    maxrss_mb: float
    peak_rss_mb: float | None = None
    #: (seconds since start, RSS MB), when sampled.
    rss_samples: list[tuple[float, float]] = dataclasses.field(default_factory=list)

    @property
    def cpu_s(self) -> float:
        return self.user_s + self.sys_s


def run_child(
    command: Sequence[str],
    *,
    sample_rss: float | None = None,
    timeout: float = 3600.0,
    env: dict[str, str] | None = None,
) -> Child:
    """Run ``command`` to completion and account for it alone: ``os.wait4`` gives its CPU time
    (not ours, not its siblings'). ``sample_rss`` seconds: also sample its RSS, to tell a flat
    line from slow growth, and measure its true peak (see :class:`Child`). ``timeout`` kills it
    (the benchmark must end)."""
    timed = bool(sample_rss) and os.path.exists(TIME)
    if timed:
        # GNU time waits for the program; wait4 on time includes the program's CPU time.
        command = [TIME, "-f", f"{_PEAK} %M", *command]
    hwm = [0.0]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env)
        samples: list[tuple[float, float]] = []
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(sample_rss):
                # Under GNU time, the program is time's only child.
                pid = proc.pid
                if timed:
                    children = Path(f"/proc/{pid}/task/{pid}/children")
                    with contextlib.suppress(OSError, ValueError, IndexError):
                        pid = int(children.read_text().split()[0])
                rss = rss_mb(pid)
                if rss is not None:
                    samples.append((round(time.perf_counter() - started, 2), round(rss, 1)))
                hwm[0] = max(hwm[0], rss_mb(pid, "VmHWM") or 0.0)

        def kill() -> None:
            if not stop.wait(timeout):
                proc.kill()

        threads = [threading.Thread(target=kill, daemon=True)]
        if sample_rss:
            threads.append(threading.Thread(target=sample, daemon=True))
        for t in threads:
            t.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        stop.set()
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        out.seek(0)
        err.seek(0)
        stderr = err.read().decode(errors="replace")
        peak = hwm[0] or None
        if timed:
            match = re.search(rf"^{_PEAK} (\d+)$", stderr, re.M)
            if match:
                peak = int(match.group(1)) / 1024
                stderr = stderr[: match.start()] + stderr[match.end() + 1 :]
        return Child(
            returncode=proc.returncode,
            stdout=out.read().decode(errors="replace"),
            stderr=stderr,
            wall_s=wall,
            user_s=usage.ru_utime,
            sys_s=usage.ru_stime,
            maxrss_mb=usage.ru_maxrss / 1024,
            peak_rss_mb=peak,
            rss_samples=samples,
        )


class Load:
    """CPU seconds spent, over one measurement, by the watched processes (``pids``: name ->
    pid, counted with their children) and by the machine as a whole. ``other_cores`` is what
    was left for everything else: neighbours' jobs, and our own short-lived children."""

    def __init__(self, **pids: int) -> None:
        self._pids = pids
        self._start: dict[str, float] = {}

    def __enter__(self) -> Load:
        self._start = {name: tree_cpu(pid) for name, pid in self._pids.items()}
        self._busy = machine_busy()
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall_s = time.perf_counter() - self._t0
        self.machine_s = machine_busy() - self._busy
        self.cpu_s = {n: tree_cpu(p) - self._start[n] for n, p in self._pids.items()}

    def record(self, client_cpu_s: float) -> dict[str, Any]:
        """Cores busy on average: the client's, each watched process's, everyone else's."""
        wall = max(self.wall_s, 1e-9)
        watched = sum(self.cpu_s.values())
        return {
            "client_cores": client_cpu_s / wall,
            **{f"{n}_cores": s / wall for n, s in self.cpu_s.items()},
            "other_cores": max(self.machine_s - client_cpu_s - watched, 0.0) / wall,
            "machine_cores": self.machine_s / wall,
            **{f"{n}_cpu_s": s for n, s in self.cpu_s.items()},
        }
