# SPDX-License-Identifier: Apache-2.0
"""``pinscan scan INVENTORY -o OUT``: handshake with every endpoint, write a Parquet dataset."""

from __future__ import annotations

import base64
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from pinscan import _core
from pinscan.cli._progress import Progress, count_targets
from pinscan.cli.check import EXIT_FINDINGS, FAILING, policy_options, read_policies
from pinscan.config import ScanConfig, Timeouts
from pinscan.dataset import open as pinscan_open
from pinscan.dataset.history import scan as history_scan
from pinscan.dataset.writer import write_pin_results
from pinscan.inventory import read_inventory
from pinscan.policy.evaluate import evaluate
from pinscan.records import Endpoint
from pinscan.scanner import scan
from pinscan.shard import Shard, ShardError, scan_shard


def _shard_spec(ctx: click.Context, param: click.Parameter, value: str | None) -> Shard | None:
    try:
        return None if value is None else Shard.parse(value)
    except ShardError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command("scan")
@click.argument("inventory", metavar="INVENTORY")
@click.option(
    "-o", "--out", "out", type=click.Path(path_type=Path),
    help="Dataset directory to write (or, with --resume, to finish).",
)  # fmt: skip
@click.option(
    "--history", "history", type=click.Path(file_okay=False, path_type=Path),
    help="Instead of -o: add the scan to this history (hive-partitioned, one scan per run).",
)  # fmt: skip
@click.option("--resume", is_flag=True, help="Finish an interrupted scan in OUT (or HISTORY).")
@click.option(
    "--inventory-format", type=click.Choice(["text", "csv", "parquet"]),
    help="Inventory format; by default from the file name (text for stdin).",
)  # fmt: skip
@click.option("--strict", is_flag=True, help="Fail before any connection on a bad inventory line.")
@click.option(
    "-c", "--concurrency", type=click.IntRange(1, 100_000), default=500, show_default=True
)
@click.option("--rate", type=click.FloatRange(min=0.1), help="New connections per second, at most.")
@click.option(
    "--per-address", type=click.IntRange(1), default=16, show_default=True,
    help="Connections open at once to one address.",
)  # fmt: skip
@click.option("--retries", type=click.IntRange(0, 10), default=1, show_default=True)
@click.option("--connect-timeout", type=click.FloatRange(min=0.01), default=5.0, show_default=True)
@click.option(
    "--handshake-timeout", type=click.FloatRange(min=0.01), default=10.0, show_default=True
)
@click.option(
    "--deadline", type=click.FloatRange(min=0.01), default=30.0, show_default=True,
    help="Seconds for DNS, connect and handshake of one endpoint together, retries included.",
)  # fmt: skip
@click.option("--first-address", is_flag=True, help="Scan one address per name, not all.")
@click.option(
    "--ca-bundle", type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Trust anchors of a private PKI, verified as a store of their own.",
)  # fmt: skip
@click.option("--system-store", is_flag=True, help="Also verify against the system's CA bundle.")
@click.option(
    "--verify-processes", type=click.IntRange(0, 64),
    help="Child processes that verify chains while the scan goes on "
    "[default: 1 with two cores or more, else 0: in the scanning process].",
)  # fmt: skip
@click.option(
    "--flush-rows", type=click.IntRange(1), default=5000, show_default=True,
    help="Write a part file after this many endpoints...",
)  # fmt: skip
@click.option(
    "--flush-seconds", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
    help="...or after this many seconds, whichever comes first.",
)  # fmt: skip
@click.option("--jsonl", is_flag=True, help="Stream one JSON object per endpoint to stdout.")
@click.option("--format", "output", type=click.Choice(["text", "json"]), default="text")
@policy_options
@click.option(
    "--shard", "shard", metavar="I/N", callback=_shard_spec,
    help="Scan only shard I of N (0 to N-1) into OUT; the other shards may run anywhere else.",
)  # fmt: skip
@click.option(
    "--dask", "dask", metavar="local|ADDRESS",
    help="Scan OUT in shards on Dask: a local cluster, or a scheduler (tcp://host:8786).",
)  # fmt: skip
@click.option(
    "--shards", "shard_count", type=click.IntRange(1, 1_000_000),
    help="With --dask: the number of shards (default: 4 per worker thread).",
)  # fmt: skip
@click.option(
    "--dask-workers", type=click.IntRange(1),
    help="With --dask local: worker processes (one per core).",
)  # fmt: skip
@click.option(
    "--dask-threads", type=click.IntRange(1), default=1, show_default=True,
    help="With --dask local: threads per worker, each running one shard at a time.",
)  # fmt: skip
@click.option(
    "--dask-retries", type=click.IntRange(0, 10), default=2, show_default=True,
    help="With --dask: attempts after the first for a shard that fails.",
)  # fmt: skip
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no summary.")
def scan_command(
    inventory: str,
    out: Path | None,
    history: Path | None,
    resume: bool,
    inventory_format: str | None,
    strict: bool,
    concurrency: int,
    rate: float | None,
    per_address: int,
    retries: int,
    connect_timeout: float,
    handshake_timeout: float,
    deadline: float,
    first_address: bool,
    ca_bundle: Path | None,
    system_store: bool,
    verify_processes: int | None,
    flush_rows: int,
    flush_seconds: float,
    jsonl: bool,
    output: str,
    policies: tuple[Path, ...],
    policy_format: str | None,
    shard: Shard | None,
    dask: str | None,
    shard_count: int | None,
    dask_workers: int | None,
    dask_threads: int,
    dask_retries: int,
    quiet: bool,
) -> None:
    """Handshake with every endpoint of INVENTORY and write what each serves to OUT.

    INVENTORY holds one target per line (host, host:port, ip:port, [v6]:port, optionally
    followed by the SNI name to send), or is a CSV or Parquet file with columns host, port, sni,
    ip; - reads standard input. Every address a name resolves to is scanned. Exits 0 when the
    scan ran, whatever the endpoints did; 2 on usage errors and unreadable inputs. With
    --policy, the verdicts go into the dataset's pin_results table, and any fail or error
    exits 1, as `pinscan check` does. With --history instead of -o, the scan is added to a
    history that `pinscan.open`, `pinscan diff` and DuckDB, pyarrow or Spark read. With
    --shard I/N, only shard I of N is scanned into OUT (--resume: finish that shard); with
    --dask, every shard runs on Dask (--resume: run the shards not done). See docs/scale.md.
    """
    if (out is None) == (history is None):
        raise click.UsageError("give exactly one of -o/--out and --history")
    _check_sharding(shard, dask, history, bool(policies), jsonl, shard_count, dask_workers)
    # Policies are read first: a broken one stops the scan before anything is sent.
    loaded = read_policies(policies, policy_format)
    config = ScanConfig(
        concurrency=concurrency,
        rate=rate,
        per_address=per_address,
        retries=retries,
        timeouts=Timeouts(connect_timeout, handshake_timeout, deadline),
        first_address=first_address,
        ca_bundle=ca_bundle,
        system_store=system_store,
        verify_processes=verify_processes,
        flush_rows=flush_rows,
        flush_seconds=flush_seconds,
    )
    source: Any = click.open_file("-", "rb") if inventory == "-" else inventory
    # Opened (and, with --strict, checked line by line) before anything is sent.
    items = read_inventory(source, format=inventory_format, strict=strict)
    total = items.total if strict or inventory == "-" else count_targets(inventory, items.format)
    if shard is not None and total is not None:
        total = -(-total // shard.count)  # the hash spreads targets evenly
    progress = Progress(total=total, enabled=not quiet and sys.stderr.isatty() and dask is None)
    params = click.get_current_context().params.items()
    arguments = {k: v for k, v in params if k not in ("out", "history")}
    options: dict[str, Any] = {
        "config": config,
        "resume": resume,
        "inventory_format": inventory_format,
        "on_endpoint": _on_endpoint(progress, jsonl),
        "arguments": json.loads(json.dumps(arguments, default=str)),
    }
    verdicts: dict[str, int] = {}
    started = time.monotonic()
    if dask is not None:
        from pinscan.distributed import connect, scan_dask

        workers = dask_workers if dask == "local" else None
        with connect(dask, workers=workers, threads=dask_threads) as client:
            ds = scan_dask(
                items, out, client, shards=shard_count, config=config, resume=resume,
                arguments=options["arguments"], retries=dask_retries,
                progress=not quiet and sys.stderr.isatty(),
            )  # fmt: skip
        where = str(out)
    elif shard is not None:
        with progress:
            done = scan_shard(
                items, out, shard, config=config, resume=resume,  # type: ignore[arg-type]
                on_endpoint=options["on_endpoint"], arguments=options["arguments"],
            )  # fmt: skip
        ds = pinscan_open(out)  # type: ignore[arg-type]
        where = f"{out} (shard {shard})"
    else:
        with progress:
            if history is not None:
                ds = history_scan(items, history, policies=loaded, **options)
                where = f"{history}@{ds.meta['scan_id']}"
            else:
                ds = scan(items, out, **options)
                where = str(out)
    if loaded:
        if out is not None:
            results = evaluate(ds, loaded)
            write_pin_results(out, results)
        else:  # judged in the history's staging, before the commit
            results = ds.pin_results.collect()
        verdicts = dict(results.group_by("verdict").len().sort("verdict").iter_rows())
    if not quiet:
        counts = done["counts"] if shard is not None else ds.meta["counts"]
        summary = {**counts, **({"pin_verdicts": verdicts} if loaded else {})}
        if "shards" in ds.meta:
            summary["shards"] = {k: ds.meta["shards"][k] for k in ("count", "missing")}
        if dask is not None:  # the shards' own times add up to more than the scan took
            summary["seconds"] = round(time.monotonic() - started, 3)
        if output == "json":
            click.echo(json.dumps({"dataset": where, **summary}, indent=2), err=jsonl)
        else:
            click.echo(_summary_text(where, summary), err=jsonl)
    if any(verdicts.get(v) for v in FAILING) or any(p.error for p in loaded):
        raise SystemExit(EXIT_FINDINGS)


def _check_sharding(
    shard: Shard | None,
    dask: str | None,
    history: Path | None,
    policies: bool,
    jsonl: bool,
    shard_count: int | None,
    dask_workers: int | None,
) -> None:
    """What --shard and --dask go with, and what not, said before anything runs."""
    if shard is not None and dask is not None:
        raise click.UsageError("give --shard (one shard, here) or --dask (every shard), not both")
    if shard is None and dask is None:
        if shard_count is not None or dask_workers is not None:
            raise click.UsageError("--shards and --dask-* go with --dask")
        return
    if history is not None:
        # A history commits one plain dataset per scan; a sharded scan is N of them.
        msg = "--shard and --dask write a sharded scan to -o OUT; --history does not take them"
        raise click.UsageError(msg)
    if shard is not None and (shard_count is not None or dask_workers is not None):
        raise click.UsageError("--shards and --dask-* go with --dask, not --shard")
    if shard is not None and policies:
        msg = "--policy judges a whole scan: when every shard is done, pinscan check OUT --policy F"
        raise click.UsageError(msg)
    if dask is not None and jsonl:
        raise click.UsageError("--jsonl is not available with --dask: the workers write the rows")
    if dask is not None and dask != "local" and dask_workers is not None:
        raise click.UsageError("--dask-workers is for --dask local; a scheduler has its workers")


def _on_endpoint(progress: Progress, jsonl: bool):
    def on_endpoint(endpoint: Endpoint) -> None:
        progress.advance(endpoint.status)
        if jsonl:
            sys.stdout.write(json.dumps(_json_row(endpoint), default=str) + "\n")

    return on_endpoint


def _json_row(e: Endpoint) -> dict[str, Any]:
    row = {f: getattr(e, f) for f in e.__slots__ if f not in ("presented", "verified_chain")}
    row["endpoint_id"] = e.endpoint_id
    row["presented"] = [_cert_ref(der) for der in e.presented]
    row["verified_chain"] = [_cert_ref(der) for der in e.verified_chain]
    return row


def _cert_ref(der: bytes) -> dict[str, str | None]:
    try:
        spki = _core.locate_spki(der)[1]
        pin: str | None = base64.b64encode(hashlib.sha256(spki).digest()).decode()
    except ValueError:
        pin = None
    return {"cert_sha256": hashlib.sha256(der).hexdigest(), "spki_sha256": pin}


def _summary_text(out: str, s: dict[str, Any]) -> str:
    lines = [
        f"pinscan: scanned {s['targets']} targets, {s['endpoints']} endpoints "
        f"in {s['seconds']:.1f} s -> {out}",
    ]
    if s.get("skipped_already_done"):
        lines.append(f"  already done before --resume: {s['skipped_already_done']}")
    statuses = sorted(s["statuses"].items(), key=lambda kv: -kv[1])
    lines.append("  status: " + ", ".join(f"{k} {v}" for k, v in statuses))
    if s["tls_versions"]:
        versions = sorted(s["tls_versions"].items())
        lines.append("  TLS: " + ", ".join(f"{k} {v}" for k, v in versions))
    if "shards" in s:
        left = s["shards"]["missing"]
        done = s["shards"]["count"] - len(left)
        todo = f"; still to scan: {_ranges(left)}" if left else ""
        lines.append(f"  shards done: {done} of {s['shards']['count']}{todo}")
    lines.append(f"  unverified chains: {s['unverified']}")
    for error in s.get("chains_verified", {}).get("child_errors", []):
        lines.append(f"  verification child failed ({error}): verified in-process instead")
    lines.append(f"  certificates expiring within 30 days: {s['expiring_within_30_days']}")
    if "pin_verdicts" in s:
        verdicts = ", ".join(f"{k} {v}" for k, v in s["pin_verdicts"].items())
        lines.append(f"  pin verdicts: {verdicts or 'no endpoints'} (pinscan check {out} for more)")
    return "\n".join(lines)


def _ranges(indexes: list[int]) -> str:
    """``[0, 1, 2, 5]`` as ``0-2, 5``."""
    runs: list[list[int]] = []
    for i in indexes:
        if runs and runs[-1][-1] == i - 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    return ", ".join(str(r[0]) if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in runs)
