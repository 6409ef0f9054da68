# SPDX-License-Identifier: Apache-2.0
"""``pinscan scan INVENTORY -o OUT``: handshake with every endpoint, write a Parquet dataset."""

from __future__ import annotations

import base64
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import click

from pinscan import _core
from pinscan.cli._progress import Progress, count_targets
from pinscan.cli.check import EXIT_FINDINGS, FAILING, policy_options, read_policies
from pinscan.config import ScanConfig, Timeouts
from pinscan.dataset.history import scan as history_scan
from pinscan.dataset.writer import write_pin_results
from pinscan.inventory import read_inventory
from pinscan.policy.evaluate import evaluate
from pinscan.records import Endpoint
from pinscan.scanner import scan


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
    flush_rows: int,
    flush_seconds: float,
    jsonl: bool,
    output: str,
    policies: tuple[Path, ...],
    policy_format: str | None,
    quiet: bool,
) -> None:
    """Handshake with every endpoint of INVENTORY and write what each serves to OUT.

    INVENTORY holds one target per line (host, host:port, ip:port, [v6]:port, optionally
    followed by the SNI name to send), or is a CSV or Parquet file with columns host, port, sni,
    ip; - reads standard input. Every address a name resolves to is scanned. Exits 0 when the
    scan ran, whatever the endpoints did; 2 on usage errors and unreadable inputs. With
    --policy, the verdicts go into the dataset's pin_results table, and any fail or error
    exits 1, as `pinscan check` does. With --history instead of -o, the scan is added to a
    history that `pinscan.open`, `pinscan diff` and DuckDB, pyarrow or Spark read.
    """
    if (out is None) == (history is None):
        raise click.UsageError("give exactly one of -o/--out and --history")
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
        flush_rows=flush_rows,
        flush_seconds=flush_seconds,
    )
    source: Any = click.open_file("-", "rb") if inventory == "-" else inventory
    # Opened (and, with --strict, checked line by line) before anything is sent.
    items = read_inventory(source, format=inventory_format, strict=strict)
    total = items.total if strict or inventory == "-" else count_targets(inventory, items.format)
    progress = Progress(total=total, enabled=not quiet and sys.stderr.isatty())
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
        summary = {**ds.meta["counts"], **({"pin_verdicts": verdicts} if loaded else {})}
        if output == "json":
            click.echo(json.dumps({"dataset": where, **summary}, indent=2), err=jsonl)
        else:
            click.echo(_summary_text(where, summary), err=jsonl)
    if any(verdicts.get(v) for v in FAILING) or any(p.error for p in loaded):
        raise SystemExit(EXIT_FINDINGS)


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
    lines.append(f"  unverified chains: {s['unverified']}")
    lines.append(f"  certificates expiring within 30 days: {s['expiring_within_30_days']}")
    if "pin_verdicts" in s:
        verdicts = ", ".join(f"{k} {v}" for k, v in s["pin_verdicts"].items())
        lines.append(f"  pin verdicts: {verdicts or 'no endpoints'} (pinscan check {out} for more)")
    return "\n".join(lines)
