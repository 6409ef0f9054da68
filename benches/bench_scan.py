# SPDX-License-Identifier: Apache-2.0
"""How fast and how lean ``pinscan scan`` is, next to the references issue 3 judges it by.

    .venv/bin/python -m benches.bench_scan [--quick] [--parts fleet,cpu,scaling,memory]
        [--profile] [--no-sslyze] [--million N] [--wait-quiet SECONDS] [--out DIR]

Every figure of a part comes from the same run, the tools interleaved round by round, so
ratios are between numbers taken under the same machine load (a shared 2-core machine is noisy:
absolute numbers drift, ratios less). Throughputs keep each tool's best round (noise only ever
slows down) and show the median too. Each measurement also records how many cores the client,
the server and everyone else kept busy; ``--wait-quiet`` waits (boundedly) for the neighbours'
jobs to leave the machine idle before each part and each round.

1. ``fleet``: nginx (1 worker) serving N sites, one port each, on 127.0.0.1, scanned by
   ``pinscan.scan`` (Python API, defaults), the ``pinscan scan`` CLI, sslyze from PyPI with only
   its certificate-info scan (CLI, and its API at 100 concurrent servers), and a naive asyncio +
   ``ssl`` loop (``scan_naive.py``; also on uvloop, for reference). sslyze pins an older
   pyca/cryptography than pinscan, so it lives in a venv of its own, ``benches/out/.venv-sslyze``,
   created on first use.
2. ``cpu``: client CPU per handshake against one nginx port, with N targets that differ by SNI:
   the whole ``pinscan scan`` process, ``pinscan.scan`` in process, pinscan's handshake layer
   alone and the part of it inside OpenSSL, next to ``openssl s_time -new`` (C, same OpenSSL).
3. ``scaling``: servers that answer each ClientHello 200 ms late (``scan_fleet_server.py``, a
   process of its own so their CPU is not the client's), scanned at several concurrencies.
4. ``memory``: a large inventory of closed loopback ports (each refused at once), scanned by the
   CLI; peak RSS from GNU time (``wait4``'s would include this process's own size at fork) and
   RSS sampled over the run.

``--profile`` (automatic when part 1 or 2 misses its target) writes cProfile hot spots of an
in-process scan. A table goes to stdout, JSON (and profiles) to benches/out/.
"""

from __future__ import annotations

import _ssl
import argparse
import contextlib
import cProfile
import datetime as dt
import functools
import gc
import hashlib
import inspect
import io
import json
import os
import platform
import pstats
import re
import resource
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import anyio
import polars as pl
import uvloop

import pinscan
from pinscan.config import ScanConfig, Timeouts
from pinscan.dataset import DatasetWriter
from pinscan.scanner.handshake import client_context, handshake
from pinscan.scanner.tls import ObservedSSLObject
from pinscan.scanner.verify import Verdict, Verifier

from benches.scan_measure import Load, run_child, wait_quiet
from fleet import pki, real

ROOT = Path(__file__).resolve().parent.parent
BENCHES = ROOT / "benches"

SSLYZE = "sslyze==6.3.1"
#: Seconds each round may wait for quiet (``--wait-quiet`` / 5); 0: no waiting.
ROUND_QUIET_S = 0.0
LOOPBACK = "127.0.0.1"
DELAY = 0.2

FULL = {
    "sites": 500,
    "rounds": 5,
    "sslyze_rounds": 3,
    "cpu_targets": 4000,
    "cpu_rounds": 3,
    "s_time_seconds": 10,
    "concurrencies": (10, 25, 50, 100, 200, 400),
    # Targets per concurrency: `waves` times the concurrency, within these bounds.
    "scaling_waves": 20,
    "scaling_targets": (500, 4000),
    "delayed_servers": 50,
    "scaling_rounds": 2,
    "million": 1_000_000,
    "profile_targets": 1000,
    "profile_refused": 20_000,
}
QUICK = {
    **FULL,
    "sites": 200,
    "rounds": 2,
    "sslyze_rounds": 1,
    "cpu_targets": 2000,
    "cpu_rounds": 1,
    "s_time_seconds": 3,
    "scaling_waves": 10,
    "scaling_targets": (250, 2000),
    "scaling_rounds": 1,
    "million": 100_000,
    "profile_targets": 500,
    "profile_refused": 5_000,
}
TARGETS = {
    "vs_sslyze": 20.0,  # pinscan hosts/s over sslyze's, at least
    "vs_naive": 1.0,  # over the naive loop's, more than
    "cpu_vs_s_time": 1.3,  # client CPU per handshake over s_time's, at most
    "latency_efficiency": 0.8,  # of concurrency / latency, until CPU-bound
    "peak_rss_mb": 300.0,
}


# Small helpers ---------------------------------------------------------------------------------


def pinscan_cli() -> list[str]:
    script = Path(sys.executable).with_name("pinscan")
    return [str(script)] if script.exists() else [sys.executable, "-m", "pinscan"]


def statuses(ds: pinscan.ScanDataset) -> dict[str, int]:
    counts = ds.endpoints.group_by("status").agg(pl.len()).collect()
    return {str(s): int(n) for s, n in counts.iter_rows()}


def write_lines(path: Path, lines: Iterator[str] | list[str]) -> Path:
    with path.open("w") as f:
        for line in lines:
            f.write(line + "\n")
    return path


def fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    return path


def shown(path: Path) -> str:
    """``path`` from the repository root when inside it (the default ``--out``), else whole."""
    path = path.resolve()
    return str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


def in_process(fn: Callable[[], Any]) -> tuple[float, float, float, Any]:
    """(wall, user CPU, system CPU, result) of ``fn`` in this process, all threads included, and
    in the child processes it started and reaped (the scan's verification child)."""
    gc.collect()

    def usage() -> tuple[float, float]:
        me, kids = (resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
        return me.ru_utime + kids.ru_utime, me.ru_stime + kids.ru_stime

    (u0, s0), t0 = usage(), time.perf_counter()
    result = fn()
    t1, (u1, s1) = time.perf_counter(), usage()
    return t1 - t0, u1 - u0, s1 - s0, result


def nginx_pid(ng: real.Nginx) -> int:
    assert ng.prefix is not None
    return int((ng.prefix / "nginx.pid").read_text())


def interleave(
    rounds: dict[str, int], measures: dict[str, Callable[[], dict[str, Any]]]
) -> dict[str, list[dict[str, Any]]]:
    """Runs each measure its number of rounds, interleaved and in a rotating order, so that all
    of them meet the same background load. With ``--wait-quiet``, each round first waits (a
    little) for the neighbours' jobs to leave a core or more idle."""
    seen: dict[str, list[dict[str, Any]]] = {name: [] for name in measures}
    names = list(measures)
    for r in range(max(rounds.values())):
        quiet = wait_quiet(ROUND_QUIET_S, window_s=2.0) if ROUND_QUIET_S else None
        for name in names[r % len(names) :] + names[: r % len(names)]:
            if r < rounds[name]:
                seen[name].append({**measures[name](), "round": r + 1, "quiet_before": quiet})
                print(f"  {name} round {r + 1}: {brief(seen[name][-1])}", flush=True)
    return seen


def brief(row: dict[str, Any]) -> str:
    keys = ("hosts_per_s", "cpu_ms_per_handshake", "ok", "failed", "wall_s")
    return ", ".join(f"{k} {row[k]:.4g}" for k in keys if isinstance(row.get(k), int | float))


# 1. Hosts/s on an nginx fleet ------------------------------------------------------------------


def ensure_sslyze(out: Path) -> Path | None:
    """sslyze's interpreter, in a venv of its own under ``out`` (created on first use)."""
    venv = out / ".venv-sslyze"
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"creating {venv} with {SSLYZE} (once)", flush=True)
        base = getattr(sys, "_base_executable", sys.executable)
        try:
            subprocess.run([base, "-m", "venv", str(venv)], check=True)
            subprocess.run([str(python), "-m", "pip", "install", "-q", SSLYZE], check=True)
        except (subprocess.CalledProcessError, OSError) as exc:
            print(f"sslyze unavailable ({exc}); its rows are skipped", flush=True)
            shutil.rmtree(venv, ignore_errors=True)
            return None
    return python


def sslyze_command(sslyze: Path, inventory: Path, report: Path) -> list[str]:
    """sslyze's CLI with its certificate scan alone, over ``inventory``, its JSON to ``report``."""
    command = [str(sslyze), "-m", "sslyze", "--certinfo", "--mozilla_config", "disable"]
    return [*command, "--quiet", "--targets_in", str(inventory), "--json_out", str(report)]


def sslyze_completed(report: Path) -> int:
    """The servers of sslyze's JSON ``report`` whose certificate scan completed."""
    results = json.loads(report.read_text())["server_scan_results"]
    return sum(
        r["scan_status"] == "COMPLETED"
        and (r.get("scan_result") or {}).get("certificate_info", {}).get("status") == "COMPLETED"
        for r in results
    )


def fleet_row(name: str, n: int, wall: float, cpu: float, ok: int, load: Load, **extra: Any):
    return {
        "name": name,
        "hosts": n,
        "ok": ok,
        "failed": n - ok,
        "wall_s": wall,
        "hosts_per_s": n / wall,
        "client_cpu_ms_per_host": cpu / n * 1000,
        "nginx_cpu_ms_per_host": load.cpu_s["nginx"] / n * 1000,
        **load.record(cpu),
        **extra,
    }


def fleet_part(ng: real.Nginx, cfg: dict, tmp: Path, sslyze: Path | None) -> dict[str, Any]:
    pid = nginx_pid(ng)
    lines = [f"{LOOPBACK}:{port}" for port in ng.ports.values()]
    n = len(lines)
    inventory = write_lines(tmp / "fleet.txt", lines)
    cli = pinscan_cli()

    def api() -> dict[str, Any]:
        out = fresh(tmp / "fleet-api")
        with Load(nginx=pid) as load:
            wall, user, sys_, ds = in_process(lambda: pinscan.scan(inventory, out))
        return fleet_row(
            "pinscan.scan (API)", n, wall, user + sys_, statuses(ds).get("ok", 0), load
        )

    def cli_scan() -> dict[str, Any]:
        out = fresh(tmp / "fleet-cli")
        with Load(nginx=pid) as load:
            child = run_child([*cli, "scan", str(inventory), "-o", str(out), "--format", "json"])
        summary = json.loads(child.stdout)
        return fleet_row(
            "pinscan scan (CLI)",
            n,
            child.wall_s,
            child.cpu_s,
            summary["statuses"].get("ok", 0),
            load,
            own_hosts_per_s=n / summary["seconds"],
        )

    def naive(loop: str) -> Callable[[], dict[str, Any]]:
        def measure() -> dict[str, Any]:
            command = [sys.executable, "-m", "benches.scan_naive", str(inventory)]
            command += ["--concurrency", str(ScanConfig().concurrency)]
            with Load(nginx=pid) as load:
                child = run_child(command + (["--uvloop"] if loop == "uvloop" else []))
            result = json.loads(child.stdout)
            return fleet_row(
                f"naive {loop} + ssl",
                n,
                child.wall_s,
                child.cpu_s,
                result["ok"],
                load,
                own_hosts_per_s=n / result["seconds"],
            )

        return measure

    def sslyze_cli() -> dict[str, Any]:
        assert sslyze is not None
        report = tmp / "sslyze.json"
        with Load(nginx=pid) as load:
            child = run_child(sslyze_command(sslyze, inventory, report))
        ok = sslyze_completed(report)
        return fleet_row("sslyze --certinfo (CLI)", n, child.wall_s, child.cpu_s, ok, load)

    def sslyze_api() -> dict[str, Any]:
        assert sslyze is not None
        command = [str(sslyze), "-m", "benches.scan_sslyze_api", str(inventory)]
        with Load(nginx=pid) as load:
            child = run_child([*command, "--servers", "100"])
        result = json.loads(child.stdout)
        return fleet_row(
            "sslyze API, CERTIFICATE_INFO, 100 servers",
            n,
            child.wall_s,
            child.cpu_s,
            result["ok"],
            load,
            own_hosts_per_s=n / result["seconds"],
        )

    measures = {
        "pinscan_api": api,
        "pinscan_cli": cli_scan,
        "naive_asyncio": naive("asyncio"),
        "naive_uvloop": naive("uvloop"),
    }
    rounds = dict.fromkeys(measures, cfg["rounds"])
    if sslyze is not None:
        measures |= {"sslyze_cli": sslyze_cli, "sslyze_api_100": sslyze_api}
        rounds |= {"sslyze_cli": cfg["sslyze_rounds"], "sslyze_api_100": cfg["sslyze_rounds"]}
    api()  # warm-up: first-call imports and caches, in this process
    seen = interleave(rounds, measures)
    rows = {}
    for key, results in seen.items():
        rates = [r["hosts_per_s"] for r in results]
        rows[key] = {
            **max(results, key=lambda r: r["hosts_per_s"]),
            "rounds_hosts_per_s": rates,
            "median_hosts_per_s": statistics.median(rates),
        }

    def ratio(a: str, b: str) -> float | None:
        if a in rows and b in rows:
            return rows[a]["hosts_per_s"] / rows[b]["hosts_per_s"]
        return None

    ratios = {
        "api_vs_sslyze_cli": ratio("pinscan_api", "sslyze_cli"),
        "cli_vs_sslyze_cli": ratio("pinscan_cli", "sslyze_cli"),
        "api_vs_sslyze_api_100": ratio("pinscan_api", "sslyze_api_100"),
        "api_vs_naive_asyncio": ratio("pinscan_api", "naive_asyncio"),
        "cli_vs_naive_asyncio": ratio("pinscan_cli", "naive_asyncio"),
        "api_vs_naive_uvloop": ratio("pinscan_api", "naive_uvloop"),
    }
    verdicts = {
        "vs_sslyze": _verdict(ratios["api_vs_sslyze_cli"], TARGETS["vs_sslyze"], higher=True),
        "vs_naive": _verdict(
            ratios["api_vs_naive_asyncio"], TARGETS["vs_naive"], higher=True, strict=True
        ),
    }
    return {"sites": n, "nginx_workers": 1, "rows": rows, "ratios": ratios, "verdicts": verdicts}


def _verdict(value: float | None, target: float, *, higher: bool, strict: bool = False) -> str:
    if value is None:
        return "not measured"
    met = (value > target if strict else value >= target) if higher else value <= target
    return "met" if met else "missed"


# 2. Client CPU per handshake -------------------------------------------------------------------


def s_time(port: int, seconds: int, pid: int) -> dict[str, Any]:
    command = ["openssl", "s_time", "-connect", f"{LOOPBACK}:{port}", "-new", "-time", str(seconds)]
    with Load(nginx=pid) as load:
        child = run_child(command)
    match = re.search(
        r"(\d+) connections in ([\d.]+)s; ([\d.]+) connections/user sec", child.stdout
    )
    if match is None:
        msg = f"unexpected `openssl s_time` output:\n{child.stdout}\n{child.stderr}"
        raise RuntimeError(msg)
    count, per_user_s = int(match.group(1)), float(match.group(3))
    return cpu_row(
        "openssl s_time -new (C, serial)",
        count,
        child.wall_s,
        child.user_s,
        child.sys_s,
        count,
        load,
        s_time_user_ms=1000 / per_user_s,  # s_time's own figure: user CPU per connection
    )


def cpu_row(
    name: str, n: int, wall: float, user: float, sys_: float, ok: int, load: Load, **extra: Any
) -> dict[str, Any]:
    return {
        "name": name,
        "handshakes": n,
        "ok": ok,
        "failed": n - ok,
        "wall_s": wall,
        "hosts_per_s": n / wall,
        "cpu_ms_per_handshake": (user + sys_) / n * 1000,
        "user_ms_per_handshake": user / n * 1000,
        "sys_ms_per_handshake": sys_ / n * 1000,
        **load.record(user + sys_),
        **extra,
    }


def handshake_layer(
    port: int, n: int, concurrency: int, *, msg_callback: bool = True, engine: str = "openssl"
):
    """``pinscan.scanner.handshake.handshake`` alone, ``concurrency`` at a time on uvloop, as the
    scanner drives it: no resolver, verifier, rows or dataset. With the OpenSSL ``engine``, a
    subclass of pinscan's SSLObject adds up the thread CPU time inside ``do_handshake`` and
    ``unwrap``, which is OpenSSL's work (and the TLS message callback's, which OpenSSL calls from
    inside); with ``rustls`` (or ``auto``) that sum stays 0."""
    inside = [0.0]

    class Timed(ObservedSSLObject):
        def do_handshake(self) -> None:
            t = time.thread_time()
            try:
                super().do_handshake()
            finally:
                inside[0] += time.thread_time() - t

        def unwrap(self) -> Any:
            t = time.thread_time()
            try:
                return super().unwrap()
            finally:
                inside[0] += time.thread_time() - t

    context = client_context()
    context.sslobject_class = Timed
    if not msg_callback:
        _ssl._SSLContext._msg_callback.__set__(context, None)
    timeouts = Timeouts()

    async def main() -> int:
        ok = 0
        slots = anyio.Semaphore(concurrency)

        async def one(i: int) -> None:
            nonlocal ok
            try:
                result = await handshake(
                    LOOPBACK,
                    port,
                    f"name-{i}.test",
                    connect_timeout=timeouts.connect,
                    handshake_timeout=timeouts.handshake,
                    engine=engine,
                    context=context,
                )
                ok += result.status == "ok"
            finally:
                slots.release()

        async with anyio.create_task_group() as tg:
            for i in range(n):
                await slots.acquire()
                tg.start_soon(one, i)
        return ok

    def run() -> int:
        return anyio.run(main, backend_options={"use_uvloop": True})

    return run, inside


def cpu_part(ng: real.Nginx, cfg: dict, tmp: Path) -> dict[str, Any]:
    pid = nginx_pid(ng)
    port = next(iter(ng.ports.values()))
    n = cfg["cpu_targets"]
    # Distinct SNI names: otherwise the inventory's dedupe would leave one target.
    lines = [f"{LOOPBACK}:{port} name-{i}.test" for i in range(n)]
    inventory = write_lines(tmp / "cpu.txt", lines)
    empty = write_lines(tmp / "empty.txt", ["# no targets"])
    per_address = ScanConfig().per_address
    cli = pinscan_cli()

    def cli_scan() -> dict[str, Any]:
        out = fresh(tmp / "cpu-cli")
        with Load(nginx=pid) as load:
            child = run_child([*cli, "scan", str(inventory), "-o", str(out), "-q"])
        ok = statuses(pinscan.open(out)).get("ok", 0)
        return cpu_row(
            "pinscan scan (CLI), whole process",
            n,
            child.wall_s,
            child.user_s,
            child.sys_s,
            ok,
            load,
        )

    def startup() -> dict[str, Any]:
        out = fresh(tmp / "cpu-empty")
        with Load(nginx=pid) as load:
            child = run_child([*cli, "scan", str(empty), "-o", str(out), "-q"])
        # Per handshake of the N-target scan: what startup adds to the figure above.
        return cpu_row(
            f"  of which CLI startup, amortized over {n}",
            n,
            child.wall_s,
            child.user_s,
            child.sys_s,
            n,
            load,
        )

    def api() -> dict[str, Any]:
        out = fresh(tmp / "cpu-api")
        with Load(nginx=pid) as load:
            wall, user, sys_, ds = in_process(lambda: pinscan.scan(inventory, out))
        ok = statuses(ds).get("ok", 0)
        return cpu_row("pinscan.scan (API), in process", n, wall, user, sys_, ok, load)

    def layer(msg_callback: bool) -> Callable[[], dict[str, Any]]:
        def measure() -> dict[str, Any]:
            run, inside = handshake_layer(port, n, per_address, msg_callback=msg_callback)
            with Load(nginx=pid) as load:
                wall, user, sys_, ok = in_process(run)
            name = "handshake layer alone, OpenSSL" + ("" if msg_callback else ", msg callback off")
            return cpu_row(
                name, n, wall, user, sys_, ok, load, inside_openssl_ms=inside[0] / n * 1000
            )

        return measure

    def naive(loop: str) -> Callable[[], dict[str, Any]]:
        def measure() -> dict[str, Any]:
            command = [sys.executable, "-m", "benches.scan_naive", str(inventory)]
            command += ["--concurrency", str(per_address)]
            with Load(nginx=pid) as load:
                child = run_child(command + (["--uvloop"] if loop == "uvloop" else []))
            ok = json.loads(child.stdout)["ok"]
            return cpu_row(
                f"naive {loop} + ssl, whole process",
                n,
                child.wall_s,
                child.user_s,
                child.sys_s,
                ok,
                load,
            )

        return measure

    measures = {
        "s_time": lambda: s_time(port, cfg["s_time_seconds"], pid),
        "pinscan_cli": cli_scan,
        "cli_startup": startup,
        "pinscan_api": api,
        "handshake_layer": layer(True),
        "handshake_layer_no_msg_callback": layer(False),
        "naive_asyncio": naive("asyncio"),
        "naive_uvloop": naive("uvloop"),
    }
    seen = interleave(dict.fromkeys(measures, cfg["cpu_rounds"]), measures)
    # Least CPU per handshake over the rounds: contention only ever adds (cache misses, etc.).
    rows = {k: min(v, key=lambda r: r["cpu_ms_per_handshake"]) for k, v in seen.items()}
    ref = rows["s_time"]

    def ratio(key: str, field: str = "cpu_ms_per_handshake") -> float:
        return rows[key][field] / ref[field]

    ratios = {
        "cli_total_vs_s_time_total": ratio("pinscan_cli"),
        "cli_user_vs_s_time_user": rows["pinscan_cli"]["user_ms_per_handshake"]
        / ref["s_time_user_ms"],
        "api_total_vs_s_time_total": ratio("pinscan_api"),
        "handshake_layer_vs_s_time_total": ratio("handshake_layer"),
        "inside_openssl_vs_s_time_user": rows["handshake_layer"]["inside_openssl_ms"]
        / ref["s_time_user_ms"],
        "naive_asyncio_vs_s_time_total": ratio("naive_asyncio"),
    }
    limit = TARGETS["cpu_vs_s_time"]
    verdicts = {
        "cpu_vs_s_time": _verdict(ratios["cli_total_vs_s_time_total"], limit, higher=False),
        "cpu_vs_s_time_user": _verdict(ratios["cli_user_vs_s_time_user"], limit, higher=False),
    }
    return {
        "port": port,
        "targets": n,
        "client_concurrency": per_address,
        "rows": rows,
        "ratios": ratios,
        "verdicts": verdicts,
    }


# 3. Latency-bound scaling ----------------------------------------------------------------------


@contextlib.contextmanager
def delayed_fleet(servers: int) -> Iterator[tuple[int, list[tuple[str, int]]]]:
    command = [sys.executable, "-m", "benches.scan_fleet_server", "--servers", str(servers)]
    command += ["--delay", str(DELAY), "--backlog", "2048"]
    proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        endpoints = [tuple(e) for e in json.loads(proc.stdout.readline())["endpoints"]]
        yield proc.pid, endpoints  # type: ignore[misc]
    finally:
        assert proc.stdin is not None
        proc.stdin.close()  # it serves until its stdin closes
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def scaling_part(cfg: dict, tmp: Path, sslyze: Path | None) -> dict[str, Any]:
    with delayed_fleet(cfg["delayed_servers"]) as (pid, endpoints):

        def lines(count: int) -> list[str]:
            return [
                f"{endpoints[i % len(endpoints)][0]}:{endpoints[i % len(endpoints)][1]} n{i}.test"
                for i in range(count)
            ]

        pinscan.scan(lines(100), fresh(tmp / "scaling-warm"))
        rows = []
        for concurrency in cfg["concurrencies"]:
            low, high = cfg["scaling_targets"]
            n = min(max(cfg["scaling_waves"] * concurrency, low), high)
            inventory = write_lines(tmp / f"scaling-{concurrency}.txt", lines(n))
            seen = interleave(
                dict.fromkeys(("pinscan", "naive"), cfg["scaling_rounds"]),
                {
                    "pinscan": functools.partial(
                        _scaling_pinscan, inventory, n, concurrency, pid, tmp
                    ),
                    "naive": functools.partial(_scaling_naive, inventory, n, concurrency, pid),
                },
            )
            best = {k: max(v, key=lambda r: r["hosts_per_s"]) for k, v in seen.items()}
            row = {
                **best["pinscan"],
                "median_hosts_per_s": statistics.median(r["hosts_per_s"] for r in seen["pinscan"]),
                "naive_uvloop_hosts_per_s": best["naive"]["hosts_per_s"],
                "naive_uvloop_efficiency": best["naive"]["hosts_per_s"] / (concurrency / DELAY),
                "naive_uvloop_cores": best["naive"]["client_cores"],
            }
            rows.append(row)
        tools = _delayed_tools(lines(cfg["sites"]), pid, cfg, tmp, sslyze)
    latency_bound = [r for r in rows if not r["cpu_bound"]]
    if not latency_bound:
        verdict = "not measured (CPU-bound at every concurrency)"
    else:
        worst = min(r["efficiency"] for r in latency_bound)
        verdict = _verdict(worst, TARGETS["latency_efficiency"], higher=True)
    return {
        "delay_s": DELAY,
        "servers": len(endpoints),
        "rows": rows,
        "tools": tools,
        "verdicts": {"latency_efficiency": verdict},
    }


def _scaling_pinscan(inventory: Path, n: int, concurrency: int, pid: int, tmp: Path) -> dict:
    out = fresh(tmp / f"scaling-{concurrency}")
    config = ScanConfig(concurrency=concurrency)
    with Load(server=pid) as load:
        wall, user, sys_, ds = in_process(lambda: pinscan.scan(inventory, out, config=config))
    frame = ds.endpoints.select("status", "scanned_at", "connect_ms", "handshake_ms").collect()
    done = frame["scanned_at"].sort()
    # Completions between the 10th and 90th percentile: ramp-up and tail left out.
    steady = 0.8 * n / max((done[9 * n // 10] - done[n // 10]).total_seconds(), 1e-9)
    ideal = concurrency / DELAY
    cpu = user + sys_
    row = {
        "concurrency": concurrency,
        "targets": n,
        "ok": int((frame["status"] == "ok").sum()),
        "wall_s": wall,
        "hosts_per_s": n / wall,
        "steady_hosts_per_s": steady,
        "ideal_hosts_per_s": ideal,
        "efficiency": n / wall / ideal,
        "steady_efficiency": steady / ideal,
        "client_cpu_ms_per_host": cpu / n * 1000,
        # The most one event-loop thread could do with a whole core to itself.
        "client_ceiling_hosts_per_s": n / cpu,
        "handshake_ms_p50": frame["handshake_ms"].median(),
        "handshake_ms_p99": frame["handshake_ms"].quantile(0.99),
        "connect_ms_p99": frame["connect_ms"].quantile(0.99),
        **load.record(cpu),
    }
    # CPU-bound: the ideal rate needs 80% or more of a core of client CPU (one event loop
    # thread), or the client kept 80% of a core busy, or the machine had less than 10% of its
    # cores idle (neighbours included).
    row["cpu_bound"] = (
        ideal >= 0.8 * row["client_ceiling_hosts_per_s"]
        or row["client_cores"] > 0.8
        or row["machine_cores"] > 0.9 * (os.cpu_count() or 1)
    )
    return row


def _scaling_naive(inventory: Path, n: int, concurrency: int, pid: int) -> dict[str, Any]:
    """The naive loop on uvloop at the same concurrency: what this fleet, on this machine, gives
    a client that does nothing but handshake."""
    command = [sys.executable, "-m", "benches.scan_naive", str(inventory), "--uvloop"]
    command += ["--abort", "--concurrency", str(concurrency)]
    with Load(server=pid) as load:
        child = run_child(command)
    result = json.loads(child.stdout)
    return {
        "hosts_per_s": n / result["seconds"],
        "ok": result["ok"],
        **load.record(child.cpu_s),
    }


def _delayed_tools(
    lines: list[str], pid: int, cfg: dict, tmp: Path, sslyze: Path | None
) -> dict[str, Any]:
    """Part 1's comparison again, against the 200 ms servers: what the tools' concurrency
    designs give when latency, not CPU, is the limit. Same targets for every tool."""
    n = len(lines)
    inventory = write_lines(tmp / "delayed-tools.txt", lines)

    def api() -> dict[str, Any]:
        out = fresh(tmp / "delayed-api")
        wall, _, _, ds = in_process(lambda: pinscan.scan(inventory, out))
        ok = statuses(ds).get("ok", 0)
        return {"name": "pinscan.scan (API)", "hosts_per_s": n / wall, "ok": ok, "wall_s": wall}

    def naive() -> dict[str, Any]:
        command = [sys.executable, "-m", "benches.scan_naive", str(inventory), "--abort"]
        child = run_child([*command, "--concurrency", str(ScanConfig().concurrency)])
        ok = json.loads(child.stdout)["ok"]
        name = "naive asyncio + ssl (abort)"
        return {"name": name, "hosts_per_s": n / child.wall_s, "ok": ok, "wall_s": child.wall_s}

    def sslyze_cli() -> dict[str, Any]:
        assert sslyze is not None
        # sslyze's own syntax for "this SNI at this address": name:port{ip}.
        names = []
        for line in lines:
            address, sni = line.split()
            ip, _, port = address.rpartition(":")
            names.append(f"{sni}:{port}{{{ip}}}")
        targets = write_lines(tmp / "delayed-sslyze.txt", names)
        report = tmp / "delayed-sslyze.json"
        command = [str(sslyze), "-m", "sslyze", "--certinfo", "--mozilla_config", "disable"]
        command += ["--quiet", "--targets_in", str(targets), "--json_out", str(report)]
        child = run_child(command)
        results = json.loads(report.read_text())["server_scan_results"]
        ok = sum(r["scan_status"] == "COMPLETED" for r in results)
        name = "sslyze --certinfo (CLI)"
        return {"name": name, "hosts_per_s": n / child.wall_s, "ok": ok, "wall_s": child.wall_s}

    measures = {"pinscan_api": api, "naive_asyncio": naive}
    rounds = dict.fromkeys(measures, cfg["scaling_rounds"])
    if sslyze is not None:
        measures["sslyze_cli"] = sslyze_cli
        rounds["sslyze_cli"] = 1  # tens of seconds a round at 200 ms a handshake
    seen = interleave(rounds, measures)
    rows = {k: max(v, key=lambda r: r["hosts_per_s"]) for k, v in seen.items()}
    ratios = {
        f"api_vs_{k}": rows["pinscan_api"]["hosts_per_s"] / rows[k]["hosts_per_s"]
        for k in rows
        if k != "pinscan_api"
    }
    return {"targets": n, "rows": rows, "ratios": ratios}


# 4. Memory -------------------------------------------------------------------------------------


def closed_targets(count: int) -> Iterator[str]:
    """``count`` distinct loopback addresses across 127/8, port 9 (discard: nothing listens), so
    every target is its own endpoint and refused at once."""
    for i in range(count):
        block, host = divmod(i, 254)
        # From 127.16.0.1 up: clear of 127.0.0.1 and of the delayed fleet on 127.0.2.x.
        yield f"127.{16 + (block >> 8)}.{block & 255}.{host + 1}:9"


def memory_part(cfg: dict, tmp: Path, count: int) -> dict[str, Any]:
    inventory = write_lines(tmp / "closed.txt", closed_targets(count))
    out = fresh(tmp / "closed-out")
    with Load() as load:
        child = run_child(
            [*pinscan_cli(), "scan", str(inventory), "-o", str(out), "-q"],
            sample_rss=0.25,
            timeout=3600,
        )
    result: dict[str, Any] = {
        "targets": count,
        "returncode": child.returncode,
        "wall_s": child.wall_s,
        "targets_per_s": count / child.wall_s,
        "cpu_ms_per_target": child.cpu_s / count * 1000,
        # The scan's own peak (GNU time, else VmHWM): wait4's figure counts this process's size
        # at fork, kept below for the record.
        "peak_rss_mb": child.peak_rss_mb,
        "peak_rss_source": "/usr/bin/time %M" if os.path.exists("/usr/bin/time") else "VmHWM",
        "wait4_maxrss_mb": child.maxrss_mb,
        "rss_samples": child.rss_samples[:: max(1, len(child.rss_samples) // 60)],
        # The peak from wait4 can be a transient shorter than the sampling: where was RSS highest?
        "rss_top_samples": sorted(child.rss_samples, key=lambda x: -x[1])[:5],
        **load.record(child.cpu_s),
    }
    if child.returncode == 0:
        result["statuses"] = statuses(pinscan.open(out))
        result["endpoints"] = sum(result["statuses"].values())
    else:
        result["stderr"] = child.stderr[-2000:]
    samples = child.rss_samples
    if len(samples) >= 4:
        result["rss_mb_at_quarter"] = samples[len(samples) // 4][1]
        result["rss_mb_at_end"] = samples[-1][1]
    shutil.rmtree(out, ignore_errors=True)
    inventory.unlink()
    peak = child.peak_rss_mb
    met = child.returncode == 0 and peak is not None and peak <= TARGETS["peak_rss_mb"]
    result["verdicts"] = {"peak_rss": "met" if met else "missed"}
    return result


# Profiles --------------------------------------------------------------------------------------


def profile(fn: Callable[[], Any], path: Path, top: int = 25) -> list[dict[str, Any]]:
    """cProfile ``fn``; write the top functions by own time to ``path``, return them."""
    profiler = cProfile.Profile()
    profiler.enable()
    fn()
    profiler.disable()
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    path.write_text(text.getvalue())
    total = stats.total_tt  # type: ignore[attr-defined]
    rows = []
    entries = stats.stats.items()  # type: ignore[attr-defined]
    for (file, line, func), (_, calls, own, cum, _) in sorted(entries, key=lambda e: -e[1][2]):
        rows.append(
            {
                "function": f"{_short(file)}:{line}({func})",
                "calls": calls,
                "own_s": round(own, 4),
                "own_pct": round(100 * own / total, 1),
                "cumulative_s": round(cum, 4),
            }
        )
        if len(rows) == top:
            break
    return rows


def _short(file: str) -> str:
    for marker in ("site-packages/", "python3.11/", str(ROOT) + "/"):
        if marker in file:
            return file.split(marker, 1)[1]
    return file


def profile_part(ng: real.Nginx | None, cfg: dict, tmp: Path, out: Path, stamp: str) -> dict:
    result: dict[str, Any] = {}
    if ng is not None:
        port = next(iter(ng.ports.values()))
        lines = [f"{LOOPBACK}:{port} prof-{i}.test" for i in range(cfg["profile_targets"])]
        inventory = write_lines(tmp / "profile.txt", lines)
        path = out / f"bench_scan-profile-handshake-{stamp}.txt"
        result["handshake"] = profile(
            lambda: pinscan.scan(inventory, fresh(tmp / "profile-out")), path
        )
        result["handshake_file"] = shown(path)
        result["breakdown"] = breakdown(ng, cfg, tmp)
    inventory = write_lines(tmp / "profile-closed.txt", closed_targets(cfg["profile_refused"]))
    path = out / f"bench_scan-profile-refused-{stamp}.txt"
    result["refused"] = profile(
        lambda: pinscan.scan(inventory, fresh(tmp / "profile-closed-out")), path
    )
    result["refused_file"] = shown(path)
    return result


def breakdown(ng: real.Nginx, cfg: dict, tmp: Path) -> dict[str, Any]:
    """Where the scanner's CPU per target goes beyond the handshake layer, without a profiler's
    distortion: the same in-process scan with chain verification, then the dataset writer,
    then both, replaced by stubs (patched here only, for the measurement)."""
    port = next(iter(ng.ports.values()))
    n = cfg["cpu_targets"] // 2
    lines = [f"{LOOPBACK}:{port} cut-{i}.test" for i in range(n)]
    inventory = write_lines(tmp / "breakdown.txt", lines)
    unverified = Verdict(False, "not verified (benchmark stub)", None, None, None, ())

    def scan(*, verify: bool, write: bool) -> Callable[[], dict[str, Any]]:
        def measure() -> dict[str, Any]:
            with contextlib.ExitStack() as stack:
                if not verify:
                    stub = mock.patch.object(Verifier, "verify", lambda *_: unverified)
                    stack.enter_context(stub)
                if not write:
                    stack.enter_context(mock.patch.object(DatasetWriter, "write", lambda *_: None))
                out = fresh(tmp / "breakdown-out")
                wall, user, sys_, _ = in_process(lambda: pinscan.scan(inventory, out))
            return {"cpu_ms_per_target": (user + sys_) / n * 1000, "wall_s": wall}

        return measure

    run, _ = handshake_layer(port, n, ScanConfig().per_address, engine=ScanConfig().engine)

    def layer() -> dict[str, Any]:
        wall, user, sys_, _ = in_process(run)
        return {"cpu_ms_per_target": (user + sys_) / n * 1000, "wall_s": wall}

    measures = {
        "scan": scan(verify=True, write=True),
        "scan_without_verify": scan(verify=False, write=True),
        "scan_without_dataset": scan(verify=True, write=False),
        "scan_without_both": scan(verify=False, write=False),
        "handshake_layer": layer,
    }
    seen = interleave(dict.fromkeys(measures, cfg["cpu_rounds"]), measures)
    best = {k: min(r["cpu_ms_per_target"] for r in v) for k, v in seen.items()}
    return {
        "targets": n,
        "cpu_ms_per_target": best,
        "verify_ms": best["scan"] - best["scan_without_verify"],
        "dataset_ms": best["scan"] - best["scan_without_dataset"],
        "orchestration_ms": best["scan_without_both"] - best["handshake_layer"],
    }


# Machine and report ----------------------------------------------------------------------------


def machine(sslyze: Path | None) -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)

    def version(*command: str) -> str:
        try:
            done = subprocess.run(command, capture_output=True, text=True, check=False)
        except OSError:
            return "-"
        lines = (done.stdout + done.stderr).strip().splitlines()
        return lines[0] if lines else "-"

    git = version("git", "-C", str(ROOT), "describe", "--always", "--dirty")
    # From the modules themselves, wherever the handshake layer lives.
    handshake_py = Path(inspect.getfile(handshake))
    tls_py = Path(inspect.getfile(ObservedSSLObject))
    return {
        "cpu": model.group(1) if model else platform.processor(),
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "python_ssl": ssl.OPENSSL_VERSION,
        "uvloop": uvloop.__version__,
        "pinscan": pinscan.__version__,
        "git": git,
        # The handshake layer is being tuned while this runs: which version was measured.
        "handshake_py_sha256": hashlib.sha256(handshake_py.read_bytes()).hexdigest()[:16],
        "tls_py_sha256": hashlib.sha256(tls_py.read_bytes()).hexdigest()[:16],
        "openssl": version("openssl", "version"),
        "nginx": version(real.find("nginx") or "nginx", "-v"),
        "sslyze": version(
            str(sslyze), "-c", "import importlib.metadata as m; print(m.version('sslyze'))"
        )
        if sslyze
        else None,
        "loadavg_start": os.getloadavg(),
    }


def fmt(value: Any, spec: str = ".3g") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return format(value, spec)
    return str(value)


def table(header: list[str], rows: list[list[Any]]) -> str:
    cells = [[fmt(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(header)]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |"]
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in cells:
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
    return "\n".join(lines)


def report(result: dict[str, Any]) -> str:
    parts = []
    if "fleet" in result:
        f = result["fleet"]
        rows = [
            [
                r["name"],
                r["hosts_per_s"],
                r["median_hosts_per_s"],
                r.get("own_hosts_per_s"),
                f"{r['ok']}/{r['hosts']}",
                r["client_cpu_ms_per_host"],
                r["nginx_cpu_ms_per_host"],
                r["client_cores"],
                r["nginx_cores"],
                r["other_cores"],
            ]
            for r in f["rows"].values()
        ]
        header = ["tool", "hosts/s best", "median", "own timer", "ok", "client CPU ms/host"]
        header += ["nginx CPU ms/host", "client cores", "nginx cores", "other cores"]
        parts.append(f"1. nginx fleet: {f['sites']} sites, 1 worker\n" + table(header, rows))
        parts.append(_ratios(f["ratios"], f["verdicts"]))
    if "cpu" in result:
        c = result["cpu"]
        rows = [
            [
                r["name"],
                r["cpu_ms_per_handshake"],
                r["user_ms_per_handshake"],
                r["sys_ms_per_handshake"],
                r.get("inside_openssl_ms", r.get("s_time_user_ms")),
                f"{r['ok']}/{r['handshakes']}",
                r["hosts_per_s"],
                r["client_cores"],
                r["nginx_cores"],
                r["other_cores"],
            ]
            for r in c["rows"].values()
        ]
        header = ["client", "CPU ms/hs", "user", "sys", "OpenSSL ms/hs", "ok", "hs/s"]
        header += ["client cores", "nginx cores", "other cores"]
        title = f"2. client CPU per handshake, one nginx port, {c['targets']} targets"
        parts.append(title + "\n" + table(header, rows))
        parts.append(_ratios(c["ratios"], c["verdicts"]))
    if "scaling" in result:
        s = result["scaling"]
        rows = [
            [
                r["concurrency"],
                r["targets"],
                r["hosts_per_s"],
                r["steady_hosts_per_s"],
                r["ideal_hosts_per_s"],
                f"{r['efficiency']:.0%}",
                f"{r['steady_efficiency']:.0%}",
                f"{r['naive_uvloop_efficiency']:.0%}",
                r["client_ceiling_hosts_per_s"],
                r["handshake_ms_p50"],
                r["handshake_ms_p99"],
                r["client_cores"],
                r["server_cores"],
                r["other_cores"],
                "yes" if r["cpu_bound"] else "no",
            ]
            for r in s["rows"]
        ]
        header = ["concurrency", "targets", "hosts/s", "steady", "ideal", "eff", "steady eff"]
        header += ["naive uvloop eff", "client ceiling", "hs p50 ms", "hs p99 ms"]
        header += ["client cores", "server cores", "other cores", "CPU-bound"]
        title = f"3. latency-bound: {s['servers']} servers, {s['delay_s'] * 1000:.0f} ms each"
        parts.append(title + "\n" + table(header, rows))
        t = s["tools"]
        rows = [
            [r["name"], r["hosts_per_s"], f"{r['ok']}/{t['targets']}"] for r in t["rows"].values()
        ]
        title = f"3b. the tools of part 1 against the same servers, {t['targets']} targets"
        parts.append(title + "\n" + table(["tool", "hosts/s best", "ok"], rows))
        parts.append(_ratios(t["ratios"], s["verdicts"]))
    if "memory" in result:
        m = result["memory"]
        rows = [
            [
                m["targets"],
                m.get("endpoints"),
                json.dumps(m.get("statuses")),
                m["wall_s"],
                m["targets_per_s"],
                m["cpu_ms_per_target"],
                m["peak_rss_mb"],
                m.get("rss_mb_at_quarter"),
                m.get("rss_mb_at_end"),
            ]
        ]
        header = ["targets", "endpoints", "statuses", "wall s", "targets/s", "CPU ms/target"]
        header += ["peak RSS MB", "RSS at 1/4", "RSS at end"]
        parts.append("4. memory: closed loopback ports, CLI -q\n" + table(header, rows))
        parts.append(_ratios({}, m["verdicts"]))
    if "profile" in result and "breakdown" in result["profile"]:
        b = result["profile"]["breakdown"]
        rows = [[k, v] for k, v in b["cpu_ms_per_target"].items()]
        rows += [["=> chain verification", b["verify_ms"]], ["=> dataset", b["dataset_ms"]]]
        rows += [["=> orchestration (tasks, scopes, rows)", b["orchestration_ms"]]]
        title = f"scanner CPU beyond the handshake layer, {b['targets']} targets, in process"
        parts.append(title + "\n" + table(["variant", "CPU ms/target"], rows))
    if "profile" in result:
        for key in ("handshake", "refused"):
            if key in result["profile"]:
                rows = [
                    [p["function"], p["calls"], p["own_s"], f"{p['own_pct']}%", p["cumulative_s"]]
                    for p in result["profile"][key][:15]
                ]
                header = ["function", "calls", "own s", "own %", "cumulative s"]
                parts.append(f"profile ({key}), by own time\n" + table(header, rows))
    return "\n\n".join(parts)


def _ratios(ratios: dict[str, float | None], verdicts: dict[str, str]) -> str:
    lines = [f"  {k}: {fmt(v)}" for k, v in ratios.items()]
    lines += [f"  target {k} ({TARGETS.get(k, '')}): {v}" for k, v in verdicts.items()]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer rounds")
    parser.add_argument("--parts", default="fleet,cpu,scaling,memory")
    parser.add_argument("--profile", action="store_true", help="cProfile hot spots, always")
    parser.add_argument("--no-sslyze", action="store_true", help="skip sslyze (no venv made)")
    parser.add_argument("--million", type=int, help="targets of the memory part")
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before each part, wait up to this long for 1.5 idle cores (a shared machine)",
    )
    parser.add_argument("--out", type=Path, default=BENCHES / "out")
    args = parser.parse_args()
    cfg = QUICK if args.quick else FULL
    global ROUND_QUIET_S
    ROUND_QUIET_S = args.wait_quiet / 5
    parts = set(args.parts.split(","))
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    wants_sslyze = not args.no_sslyze and parts & {"fleet", "scaling"}
    sslyze = ensure_sslyze(args.out) if wants_sslyze else None
    result: dict[str, Any] = {
        "mode": "quick" if args.quick else "full",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "config": cfg,
        "targets": TARGETS,
        "machine": machine(sslyze),
        "started": stamp,
    }
    print(json.dumps(result["machine"], indent=1), flush=True)
    path = args.out / f"bench_scan-{result['mode']}-{stamp}.json"

    def run_part(key: str, title: str, measure: Callable[[], dict[str, Any]]) -> None:
        quiet = wait_quiet(args.wait_quiet) if args.wait_quiet else None
        print(f"{title} (machine: {quiet or 'not waited for'})", flush=True)
        result[key] = {**measure(), "quiet_before": quiet}
        # Written after every part: a long run cut short keeps what it measured.
        path.write_text(json.dumps(result, indent=2, default=str) + "\n")

    with tempfile.TemporaryDirectory(prefix="pinscan-bench-scan-") as tmp_name:
        tmp = Path(tmp_name)
        if parts & {"fleet", "cpu"} or args.profile:
            sites = [
                real.Site(f"site{i:03}", pki.leaf(f"site{i:03}.bench.test"))
                for i in range(cfg["sites"])
            ]
            with real.nginx(sites, tmp / "nginx", workers=1) as ng:
                if "fleet" in parts:
                    title = f"1. fleet: {len(sites)} nginx sites"
                    run_part("fleet", title, lambda: fleet_part(ng, cfg, tmp, sslyze))
                if "cpu" in parts:
                    title = "2. client CPU per handshake"
                    run_part("cpu", title, lambda: cpu_part(ng, cfg, tmp))
                verdicts = [
                    v
                    for k in ("fleet", "cpu")
                    for v in result.get(k, {}).get("verdicts", {}).values()
                ]
                if args.profile or "missed" in verdicts:
                    title = "profiles (cProfile)"
                    run_part("profile", title, lambda: profile_part(ng, cfg, tmp, args.out, stamp))
        if "scaling" in parts:
            title = "3. latency-bound scaling"
            run_part("scaling", title, lambda: scaling_part(cfg, tmp, sslyze))
        if "memory" in parts:
            count = args.million or cfg["million"]
            title = f"4. memory: {count} closed ports"
            run_part("memory", title, lambda: memory_part(cfg, tmp, count))
    return finish(result, path, report)


def finish(result: dict[str, Any], path: Path, report: Callable[[dict[str, Any]], str]) -> int:
    """The end of a benchmark run: the load at the end, the JSON written, the table printed."""
    result["machine"]["loadavg_end"] = os.getloadavg()
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print()
    print(report(result))
    print(f"\nJSON: {shown(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
