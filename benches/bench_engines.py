# SPDX-License-Identifier: Apache-2.0
"""pinscan's two TLS engines side by side (issue 16): ``pinscan scan --engine rustls``,
``--engine openssl`` and the default ``auto``, next to the naive asyncio + ``ssl`` loop and sslyze,
against the same local nginx fleet in one run, interleaved round by round.

    flock /tmp/pinscan-bench.lock .venv/bin/python -m benches.bench_engines \\
        [--parts cpu,fleet,timeline] [--targets 4000] [--rounds 3] [--sites 500] \\
        [--fleet-rounds 5] [--sslyze-rounds 3] [--no-sslyze] [--wait-quiet SECONDS] [--quick] \\
        [--out DIR]

Every pinscan figure is the CLI in a child process, start-up included. Its CPU is that of the
whole process tree of the scan: the CLI, its verification child and, with ``--processes`` above
one, its workers (``RUSAGE_CHILDREN`` deltas around the run: the CLI waits for every process it
starts, so each one's CPU is counted; nothing is subtracted). nginx's CPU is read from ``/proc``.

1. ``cpu``: N targets ``127.0.0.1:PORT name-i.test`` against one nginx port (one worker, an
   ECDSA P-256 leaf + intermediate), every target its own SNI. Each client runs on N targets, on
   N/4 and on an empty inventory. Three figures per client: **all-in** (CPU of the N-target run
   / N: start-up included), **steady** (the marginal CPU per host between the N/4 and the N run,
   same round: start-up and everything per scan cancel out) and **start-up** (CPU of the empty
   run). pinscan runs with ``--processes 1``, plus one row with the default (one scanning
   process per core at N >= 2048). The handshake layer alone (``handshake()``, in process, 16 at
   a time) shows what the scanner adds per engine.
2. ``fleet``: nginx serving ``--sites`` sites, one port and one distinct certificate each; every
   tool scans the same ``127.0.0.1:PORT`` list: hosts/s of the whole CLI process (start-up
   included) for each engine, against ``sslyze --certinfo`` (CLI, in its own venv, as
   ``bench_scan.py`` makes it) and the naive loop. Also each pinscan engine on an empty
   inventory, so that (CPU of the fleet run - CPU of the empty run) / sites is the CPU per host
   with a distinct chain to verify per host.
3. ``timeline``: the default CLI run of part 2 (and ``--engine openssl``) cut into phases by
   a ``python -c`` wrapper around the CLI: interpreter start, imports and set-up up to the first
   connection, the handshakes (to the last endpoint's ``scanned_at``), the tail (the last
   chains' verification, closing the dataset, the summary), the exit; and the CPU of the
   scanning process before and after its first connection, against its children's. Medians of
   ``--fleet-rounds`` rounds. Where the 500-host run's time goes, when it misses 20x sslyze.

Throughputs keep each tool's best round (noise only slows down) and show the median; CPU keeps
the lowest round. A table goes to stdout, JSON to ``benches/out/``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pinscan
from pinscan.config import ScanConfig

import benches.bench_scan
from benches.bench_scan import (
    BENCHES,
    LOOPBACK,
    ensure_sslyze,
    finish,
    fmt,
    fresh,
    handshake_layer,
    in_process,
    interleave,
    machine,
    nginx_pid,
    pinscan_cli,
    sslyze_command,
    sslyze_completed,
    table,
    write_lines,
)
from benches.scan_measure import Load, run_child
from fleet import pki, real

ENGINES = ("rustls", "openssl", "auto")
FULL = {"targets": 4000, "rounds": 3, "sites": 500, "fleet_rounds": 5, "sslyze_rounds": 3}
QUICK = {"targets": 1000, "rounds": 1, "sites": 100, "fleet_rounds": 2, "sslyze_rounds": 1}
TARGETS = {
    "steady_cpu_ms_per_host": 0.8,  # client CPU per host, all processes, at most (rustls/auto)
    "cli_vs_sslyze_cli": 20.0,  # hosts/s of the 500-host CLI run over sslyze's, at least
}


def tree_run(command: list[str]) -> dict[str, Any]:
    """Run ``command`` (a child process) to the end: wall, and user + system CPU of it and of
    every process under it that was waited for (``RUSAGE_CHILDREN`` before and after)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    child = run_child(command)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if child.returncode not in (0, 1):  # 1: findings (unverified chains), still a full scan
        msg = f"{' '.join(command)} exited {child.returncode}:\n{child.stderr[-2000:]}"
        raise RuntimeError(msg)
    user, sys_ = after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime
    return {"wall_s": child.wall_s, "user_s": user, "sys_s": sys_, "cpu_s": user + sys_,
            "wait4_cpu_s": child.cpu_s, "stdout": child.stdout, "stderr": child.stderr}  # fmt: skip


def pinscan_command(
    inventory: Path, out: Path, engine: str, processes: int | None = 1
) -> list[str]:
    command = [*pinscan_cli(), "scan", str(inventory), "-o", str(fresh(out)), "--format", "json"]
    if engine != "auto":  # auto is the default: the row runs the command as a user types it
        command += ["--engine", engine]
    if processes is not None:
        command += ["--processes", str(processes)]
    return command


def naive_command(inventory: Path, concurrency: int) -> list[str]:
    command = [sys.executable, "-m", "benches.scan_naive", str(inventory)]
    return [*command, "--concurrency", str(concurrency)]


def scan_row(name: str, n: int, run: dict[str, Any], load: Load, *, tool: str) -> dict[str, Any]:
    """One measured run of a CLI over ``n`` targets; ``ok`` from its JSON summary."""
    summary = json.loads(run["stdout"]) if n else {}
    if tool == "pinscan":
        ok = summary.get("statuses", {}).get("ok", 0) if n else 0
        engines = summary.get("engines")
        own = summary.get("seconds")
    else:  # the naive loop
        ok, engines, own = summary.get("ok", 0), None, summary.get("seconds")
    row = {k: v for k, v in run.items() if k not in ("stdout", "stderr")}
    return {
        "name": name,
        "hosts": n,
        "ok": ok,
        "engines": engines,
        "own_seconds": own,
        **row,
        "hosts_per_s": n / run["wall_s"] if n else None,
        "cpu_ms_per_host": run["cpu_s"] / n * 1000 if n else None,
        "nginx_cpu_ms_per_host": load.cpu_s["nginx"] / n * 1000 if n else None,
        **load.record(run["cpu_s"]),
    }


# 1. Client CPU per host ------------------------------------------------------------------------


def cpu_part(ng: real.Nginx, cfg: dict, tmp: Path) -> dict[str, Any]:
    pid = nginx_pid(ng)
    port = next(iter(ng.ports.values()))
    n, small = cfg["targets"], cfg["targets"] // 4
    per_address = ScanConfig().per_address
    inventories = {
        size: write_lines(
            tmp / f"cpu-{size}.txt",
            [f"{LOOPBACK}:{port} name-{i}.test" for i in range(size)] or ["# no targets"],
        )
        for size in (n, small, 0)
    }
    clients: dict[str, tuple[str, Callable[[Path, Path], list[str]]]] = {
        f"pinscan_{e}": (
            f"pinscan scan --engine {e} --processes 1",
            lambda inv, out, e=e: pinscan_command(inv, out, e),
        )
        for e in ENGINES
    }
    clients["pinscan_auto_default_processes"] = (
        "pinscan scan (defaults: auto, one process per core)",
        lambda inv, out: pinscan_command(inv, out, "auto", None),
    )
    clients["naive_asyncio"] = (
        f"naive asyncio + ssl, {per_address} at once",
        lambda inv, _out: naive_command(inv, per_address),
    )

    def measure(key: str, size: int) -> Callable[[], dict[str, Any]]:
        name, command = clients[key]
        tool = "naive" if key.startswith("naive") else "pinscan"

        def run() -> dict[str, Any]:
            with Load(nginx=pid) as load:
                result = tree_run(command(inventories[size], tmp / f"cpu-{key}-{size}"))
            return scan_row(name, size, result, load, tool=tool)

        return run

    def layer(engine: str) -> Callable[[], dict[str, Any]]:
        def run() -> dict[str, Any]:
            go, _ = handshake_layer(port, n, per_address, engine=engine)
            with Load(nginx=pid) as load:
                wall, user, sys_, ok = in_process(go)
            result = {"wall_s": wall, "user_s": user, "sys_s": sys_, "cpu_s": user + sys_}
            return {
                "name": f"handshake layer alone, {engine}, in process",
                "hosts": n,
                "ok": ok,
                **result,
                "hosts_per_s": n / wall,
                "cpu_ms_per_host": (user + sys_) / n * 1000,
                "nginx_cpu_ms_per_host": load.cpu_s["nginx"] / n * 1000,
                **load.record(user + sys_),
            }

        return run

    measures: dict[str, Callable[[], dict[str, Any]]] = {}
    for key in clients:
        for size in (n, small, 0):
            measures[f"{key}@{size}"] = measure(key, size)
    for engine in ("rustls", "openssl"):
        measures[f"layer_{engine}@{n}"] = layer(engine)
    # Warm-up: the file cache, and each engine's first-call costs in this process.
    tree_run(pinscan_command(inventories[small], tmp / "cpu-warm", "auto"))
    seen = interleave(dict.fromkeys(measures, cfg["rounds"]), measures)

    rows = {}
    for key in [*clients, "layer_rustls", "layer_openssl"]:
        full = seen[f"{key}@{n}"]
        best = min(full, key=lambda r: r["cpu_s"])
        row = {
            **best,
            "all_in_cpu_ms_per_host": best["cpu_ms_per_host"],
            "rounds_cpu_ms_per_host": [r["cpu_ms_per_host"] for r in full],
        }
        if f"{key}@{small}" in seen:
            quarter, empty = seen[f"{key}@{small}"], seen[f"{key}@0"]
            # Same round, one run after the other: the marginal CPU per host between N/4 and N.
            steady = [
                (a["cpu_s"] - b["cpu_s"]) / (n - small) * 1000
                for a, b in zip(full, quarter, strict=True)
            ]
            row |= {
                "steady_cpu_ms_per_host": statistics.median(steady),
                "rounds_steady_cpu_ms_per_host": steady,
                "startup_cpu_s": min(r["cpu_s"] for r in empty),
                "startup_wall_s": min(r["wall_s"] for r in empty),
                "quarter_cpu_ms_per_host": min(r["cpu_ms_per_host"] for r in quarter),
            }
        rows[key] = row
    base = rows["pinscan_openssl"]
    ratios = {
        f"{k}_vs_openssl_{f}": rows[k][f] / base[f]
        for k in ("pinscan_rustls", "pinscan_auto", "naive_asyncio")
        for f in ("all_in_cpu_ms_per_host", "steady_cpu_ms_per_host")
    }
    ratios |= {
        f"{k}_vs_naive_steady": rows[k]["steady_cpu_ms_per_host"]
        / rows["naive_asyncio"]["steady_cpu_ms_per_host"]
        for k in ("pinscan_rustls", "pinscan_openssl", "pinscan_auto")
    }
    limit = TARGETS["steady_cpu_ms_per_host"]
    verdicts = {
        f"{k}_steady_le_{limit}": "met" if rows[k]["steady_cpu_ms_per_host"] <= limit else "missed"
        for k in ("pinscan_rustls", "pinscan_auto")
    }
    return {"port": port, "targets": n, "small": small, "client_concurrency": per_address,
            "rows": rows, "ratios": ratios, "verdicts": verdicts}  # fmt: skip


# 2. Hosts/s of the CLI on the fleet, against sslyze ----------------------------------------------


def fleet_part(ng: real.Nginx, cfg: dict, tmp: Path, sslyze: Path | None) -> dict[str, Any]:
    pid = nginx_pid(ng)
    lines = [f"{LOOPBACK}:{port}" for port in ng.ports.values()]
    n = len(lines)
    inventory = write_lines(tmp / "fleet.txt", lines)
    empty = write_lines(tmp / "fleet-empty.txt", ["# no targets"])

    def pinscan_run(engine: str, inv: Path, size: int) -> Callable[[], dict[str, Any]]:
        def run() -> dict[str, Any]:
            # As a user types it: no --processes (under 2048 targets, one process anyway).
            command = pinscan_command(inv, tmp / f"fleet-{engine}-{size}", engine, None)
            with Load(nginx=pid) as load:
                result = tree_run(command)
            name = "pinscan scan" + ("" if engine == "auto" else f" --engine {engine}")
            return scan_row(name, size, result, load, tool="pinscan")

        return run

    def naive() -> dict[str, Any]:
        with Load(nginx=pid) as load:
            result = tree_run(naive_command(inventory, ScanConfig().concurrency))
        name = f"naive asyncio + ssl, {ScanConfig().concurrency} at once"
        return scan_row(name, n, result, load, tool="naive")

    def sslyze_cli() -> dict[str, Any]:
        assert sslyze is not None
        report = tmp / "sslyze.json"
        with Load(nginx=pid) as load:
            result = tree_run(sslyze_command(sslyze, inventory, report))
        ok = sslyze_completed(report)
        row = scan_row("sslyze --certinfo (CLI)", n, {**result, "stdout": "{}"}, load, tool="naive")
        return {**row, "ok": ok}

    measures: dict[str, Callable[[], dict[str, Any]]] = {}
    rounds: dict[str, int] = {}
    for engine in ENGINES:
        measures[f"pinscan_{engine}"] = pinscan_run(engine, inventory, n)
        measures[f"pinscan_{engine}_empty"] = pinscan_run(engine, empty, 0)
    measures["naive_asyncio"] = naive
    rounds = dict.fromkeys(measures, cfg["fleet_rounds"])
    if sslyze is not None:
        measures["sslyze_cli"] = sslyze_cli
        rounds["sslyze_cli"] = cfg["sslyze_rounds"]
    pinscan_run("auto", inventory, n)()  # warm-up: the file cache
    seen = interleave(rounds, measures)
    rows = {}
    for key, results in seen.items():
        if key.endswith("_empty"):
            continue
        rates = [r["hosts_per_s"] for r in results]
        rows[key] = {
            **max(results, key=lambda r: r["hosts_per_s"]),
            "median_hosts_per_s": statistics.median(rates),
            "rounds_hosts_per_s": rates,
            "least_cpu_ms_per_host": min(r["cpu_ms_per_host"] for r in results),
        }
        if f"{key}_empty" in seen:
            empties = seen[f"{key}_empty"]
            startup = min(r["cpu_s"] for r in empties)
            rows[key] |= {
                "startup_cpu_s": startup,
                "startup_wall_s": min(r["wall_s"] for r in empties),
                # CPU per host beyond an empty scan's, each host with a chain of its own.
                "beyond_startup_cpu_ms_per_host": (min(r["cpu_s"] for r in results) - startup)
                / n
                * 1000,
            }
    ratios: dict[str, float | None] = {}
    if "sslyze_cli" in rows:
        ref = rows["sslyze_cli"]
        for key in rows:
            if key != "sslyze_cli":
                ratios[f"{key}_vs_sslyze_cli"] = rows[key]["hosts_per_s"] / ref["hosts_per_s"]
                ratios[f"{key}_vs_sslyze_cli_medians"] = (
                    rows[key]["median_hosts_per_s"] / ref["median_hosts_per_s"]
                )
    ratios["auto_vs_openssl"] = (
        rows["pinscan_auto"]["hosts_per_s"] / (rows["pinscan_openssl"]["hosts_per_s"])
    )
    ratios["auto_vs_naive_asyncio"] = (
        rows["pinscan_auto"]["hosts_per_s"] / rows["naive_asyncio"]["hosts_per_s"]
    )
    target = TARGETS["cli_vs_sslyze_cli"]
    value = ratios.get("pinscan_auto_vs_sslyze_cli")
    verdict = "not measured" if value is None else ("met" if value >= target else "missed")
    return {"sites": n, "nginx_workers": 1, "rows": rows, "ratios": ratios,
            "verdicts": {"cli_vs_sslyze_cli": verdict}}  # fmt: skip


# 3. Where the wall time of the 500-host CLI run goes ---------------------------------------------

#: ``python -c`` around the CLI: the instants (and this process's CPU) at which the interpreter
#: is up, the first connection starts and the process exits, and its own and its children's CPU.
_TIMED_CLI = r"""
import atexit, json, resource, socket, sys, time
marks = {"python_up": time.time()}
connect = socket.socket.connect_ex
def first(self, address):
    if "first_connect" not in marks:
        marks["first_connect"] = time.time()
        marks["first_connect_cpu_s"] = time.process_time()
    return connect(self, address)
socket.socket.connect_ex = first
def report():
    me, kids = (resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    marks.update(exit=time.time(), self_cpu_s=me.ru_utime + me.ru_stime,
                 children_cpu_s=kids.ru_utime + kids.ru_stime)
    sys.stderr.write("PINSCAN-TIMELINE " + json.dumps(marks) + "\n")
atexit.register(report)
from pinscan.cli import run
sys.argv[0] = "pinscan"
run()  # as the `pinscan` script does: exit handlers, then the process ends
"""


def timeline_part(ng: real.Nginx, cfg: dict, tmp: Path) -> dict[str, Any]:
    """The CLI's fleet run cut into phases, wall and CPU: the interpreter's start, imports and
    set-up up to the first connection, the handshakes (first connection to the last endpoint's
    end, from the dataset's ``scanned_at``), the tail (the last chains' verification, closing
    the dataset, the summary) and the exit; CPU of the scanning process against its children's
    (the verification child)."""
    lines = [f"{LOOPBACK}:{port}" for port in ng.ports.values()]
    n = len(lines)
    inventory = write_lines(tmp / "timeline.txt", lines)

    def measure(engine: str) -> Callable[[], dict[str, Any]]:
        def run() -> dict[str, Any]:
            out = tmp / f"timeline-{engine}"
            command = pinscan_command(inventory, out, engine, None)
            command = [sys.executable, "-c", _TIMED_CLI, *command[command.index("scan") :]]
            spawned = time.time()
            result = tree_run(command)
            ended = spawned + result["wall_s"]
            found = re.search(r"^PINSCAN-TIMELINE (.+)$", result["stderr"], re.M)
            if found is None:
                raise RuntimeError(f"no timeline from the CLI:\n{result['stderr'][-2000:]}")
            marks = json.loads(found.group(1))
            done = pinscan.open(out).endpoints.select("scanned_at").collect()["scanned_at"]
            last = done.max().timestamp()  # type: ignore[union-attr]
            first = marks["first_connect"]
            return {
                "name": "pinscan scan" + ("" if engine == "auto" else f" --engine {engine}"),
                "wall_s": result["wall_s"],
                "hosts_per_s": n / result["wall_s"],
                "interpreter_s": marks["python_up"] - spawned,
                "to_first_connection_s": first - marks["python_up"],
                "handshakes_s": last - first,
                "tail_s": marks["exit"] - last,
                "exit_s": ended - marks["exit"],
                "cpu_s": result["cpu_s"],
                "startup_cpu_s": marks["first_connect_cpu_s"],
                "scanning_process_cpu_s": marks["self_cpu_s"] - marks["first_connect_cpu_s"],
                "children_cpu_s": marks["children_cpu_s"],
                "exit_cpu_s": result["cpu_s"] - marks["self_cpu_s"] - marks["children_cpu_s"],
            }

        return run

    measures = {e: measure(e) for e in ("auto", "openssl")}
    seen = interleave(dict.fromkeys(measures, cfg["fleet_rounds"]), measures)
    medians = {
        k: {f: statistics.median(r[f] for r in v) for f, x in v[0].items() if isinstance(x, float)}
        | {"name": v[0]["name"]}
        for k, v in seen.items()
    }
    return {"hosts": n, "rows": medians, "rounds": seen}


# Report ----------------------------------------------------------------------------------------


def report(result: dict[str, Any]) -> str:
    parts = []
    if "cpu" in result:
        c = result["cpu"]
        header = ["client", "all-in ms/host", "steady ms/host", "start-up CPU s", "user", "sys"]
        header += ["ok", "hosts/s", "nginx ms/host", "client cores", "other cores"]
        rows = [
            [
                r["name"],
                r["all_in_cpu_ms_per_host"],
                r.get("steady_cpu_ms_per_host"),
                r.get("startup_cpu_s"),
                r["user_s"] / r["hosts"] * 1000,
                r["sys_s"] / r["hosts"] * 1000,
                f"{r['ok']}/{r['hosts']}",
                r["hosts_per_s"],
                r["nginx_cpu_ms_per_host"],
                r["client_cores"],
                r["other_cores"],
            ]
            for r in c["rows"].values()
        ]
        title = f"1. client CPU per host, one nginx port, {c['targets']} targets (steady: "
        title += f"{c['small']} -> {c['targets']})"
        parts.append(title + "\n" + table(header, rows))
        parts.append(_ratios(c))
    if "fleet" in result:
        f = result["fleet"]
        header = ["tool", "hosts/s best", "median", "own timer", "ok", "CPU ms/host"]
        header += ["beyond start-up", "start-up CPU s", "nginx ms/host", "client cores"]
        header += ["other cores"]
        rows = [
            [
                r["name"],
                r["hosts_per_s"],
                r["median_hosts_per_s"],
                r["hosts"] / r["own_seconds"] if r.get("own_seconds") else None,
                f"{r['ok']}/{r['hosts']}",
                r["least_cpu_ms_per_host"],
                r.get("beyond_startup_cpu_ms_per_host"),
                r.get("startup_cpu_s"),
                r["nginx_cpu_ms_per_host"],
                r["client_cores"],
                r["other_cores"],
            ]
            for r in f["rows"].values()
        ]
        title = f"2. CLI hosts/s, nginx fleet of {f['sites']} sites (1 worker), start-up included"
        parts.append(title + "\n" + table(header, rows))
        parts.append(_ratios(f))
    if "timeline" in result:
        t = result["timeline"]
        keys = ["wall_s", "hosts_per_s", "interpreter_s", "to_first_connection_s", "handshakes_s"]
        keys += ["tail_s", "exit_s", "cpu_s", "startup_cpu_s", "scanning_process_cpu_s"]
        keys += ["children_cpu_s", "exit_cpu_s"]
        rows = [[r["name"], *(r[k] for k in keys)] for r in t["rows"].values()]
        title = f"3. the CLI's run over {t['hosts']} fleet hosts, by phase (medians)"
        parts.append(title + "\n" + table(["tool", *keys], rows))
    return "\n\n".join(parts)


def _ratios(part: dict[str, Any]) -> str:
    lines = [f"  {k}: {fmt(v)}" for k, v in part["ratios"].items()]
    lines += [f"  target {k}: {v}" for k, v in part["verdicts"].items()]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default="cpu,fleet,timeline")
    parser.add_argument("--quick", action="store_true", help="small sizes, one round")
    for key in FULL:
        parser.add_argument(f"--{key.replace('_', '-')}", type=int, dest=key)
    parser.add_argument("--no-sslyze", action="store_true", help="skip sslyze (no venv made)")
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before each round, wait up to this long for 1.5 idle cores (a shared machine)",
    )
    parser.add_argument("--out", type=Path, default=BENCHES / "out")
    args = parser.parse_args()
    cfg = {k: getattr(args, k) or v for k, v in (QUICK if args.quick else FULL).items()}
    parts = set(args.parts.split(","))
    benches.bench_scan.ROUND_QUIET_S = args.wait_quiet  # read by interleave()
    args.out.mkdir(parents=True, exist_ok=True)
    sslyze = ensure_sslyze(args.out) if "fleet" in parts and not args.no_sslyze else None
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    result: dict[str, Any] = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "config": cfg,
        "targets": TARGETS,
        "machine": machine(sslyze) | {"sha_ni": " sha_ni" in Path("/proc/cpuinfo").read_text()},
        "started": stamp,
    }
    print(json.dumps(result["machine"], indent=1), flush=True)
    path = args.out / f"bench_engines-{stamp}.json"
    with tempfile.TemporaryDirectory(prefix="pinscan-bench-engines-") as tmp_name:
        tmp = Path(tmp_name)
        sites = [
            real.Site(f"site{i:03}", pki.leaf(f"site{i:03}.bench.test"))
            for i in range(max(cfg["sites"], 1))
        ]
        with real.nginx(sites, tmp / "nginx", workers=1) as ng:
            for key, title, run in (
                ("cpu", "1. client CPU per host", lambda: cpu_part(ng, cfg, tmp)),
                ("fleet", "2. CLI hosts/s on the fleet", lambda: fleet_part(ng, cfg, tmp, sslyze)),
                ("timeline", "3. the CLI run by phase", lambda: timeline_part(ng, cfg, tmp)),
            ):
                if key in parts:
                    print(title, flush=True)
                    started = time.perf_counter()
                    result[key] = {**run(), "part_wall_s": time.perf_counter() - started}
                    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    return finish(result, path, report)


if __name__ == "__main__":
    sys.exit(main())
