# SPDX-License-Identifier: Apache-2.0
"""``pinscan scan INVENTORY -o OUT``: handshake with every endpoint, write a Parquet dataset;
``pinscan scan example.com``: handshake with a few, and print what each serves."""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from pinscan.cli import exits, options
from pinscan.cli.options import policy_options, read_policies
from pinscan.config import Bounds, ScanConfig, Timeouts, trust_stores
from pinscan.errors import ConfigError, InputError, InventoryError, ShardError
from pinscan.records import ENGINES, STARTTLS, TRUST_STORES

# The scanner, the inventory readers, polars and rich are imported in the command's body, so that
# `pinscan scan --help` starts fast (lazy for start-up time).
if TYPE_CHECKING:
    from pinscan.dataset.shards import Shard
    from pinscan.inventory import Inventory

#: ``pinscan.inventory.DEFAULT_PORT``, restated so that the help imports no inventory code
#: (tests/test_cli_start.py checks that it is still the same).
DEFAULT_PORT = 443

#: The settings' defaults, as :mod:`pinscan.config` states them.
_DEFAULTS = ScanConfig()
#: Names of inventory files: an argument named so that is no file is a typo, not a host.
_FILE_SUFFIXES = (".txt", ".csv", ".parquet", ".pq", ".lst", ".list", ".json")


class _Finite(click.FloatRange):
    """A float range that refuses ``nan`` and ``inf`` too, which range checks let through."""

    def convert(self, value, param, ctx):  # type: ignore[no-untyped-def]
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


def _bounded(bounds: Bounds) -> click.ParamType:
    """The option type of a setting, from the bounds :mod:`pinscan.config` states."""
    if bounds.kind is int:
        top = None if bounds.maximum is None else int(bounds.maximum)
        return click.IntRange(int(bounds.minimum), top)
    return _Finite(bounds.minimum, bounds.maximum)


class _Ports(click.ParamType):
    """``443``, or a comma list as tlsx takes it: ``443,8443``."""

    name = "PORT[,PORT...]"

    def convert(self, value, param, ctx):  # type: ignore[no-untyped-def]
        if isinstance(value, tuple):
            return value
        ports = []
        for text in str(value).split(","):
            text = text.strip()
            if not (text.isascii() and text.isdigit() and 1 <= int(text) <= 65535):
                hint = ""
                if os.path.isfile(value):  # `-p` is --policy in check, diff and report
                    hint = "; -p is the port here: give a pin policy as --policy FILE"
                self.fail(f"{text!r} is not a port (1-65535){hint}", param, ctx)
            ports.append(int(text))
        return tuple(dict.fromkeys(ports))


def _shard_spec(ctx: click.Context, param: click.Parameter, value: str | None) -> Shard | None:
    from pinscan.dataset.shards import Shard

    try:
        return None if value is None else Shard.parse(value)
    except ShardError as exc:
        raise click.BadParameter(str(exc)) from None


def _trust_stores(
    ctx: click.Context, param: click.Parameter, value: tuple[str, ...]
) -> tuple[str, ...]:
    """``--trust-store``, repeated or comma-separated, checked as ScanConfig checks it."""
    if not value:
        return _DEFAULTS.trust_stores
    try:
        return trust_stores(",".join(value), setting="--trust-store")
    except ConfigError as exc:
        raise click.BadParameter(exc.reason) from None


def _processes(ctx: click.Context, param: click.Parameter, value: int | None) -> int | None:
    """``--processes``, checked as ScanConfig checks it: a bad value is one line, exit 2."""
    return _SCAN["processes"].check("--processes", value)  # type: ignore[no-any-return]


_SCAN, _TIMEOUTS = ScanConfig.BOUNDS, Timeouts.BOUNDS


@click.command("scan")
@click.argument("sources", nargs=-1, metavar="INVENTORY | TARGET...")
@click.option(
    "-o", "--out", "out", type=click.Path(path_type=Path),
    help="Dataset directory to write (or, with --resume, to finish). Without -o or --history, "
    "the endpoints are printed and nothing is kept.",
)  # fmt: skip
@click.option(
    "--history", "history", type=click.Path(file_okay=False, path_type=Path),
    help="Instead of -o: add the scan to this history (hive-partitioned, one scan per run).",
)  # fmt: skip
@click.option("--resume", is_flag=True, help="Finish an interrupted scan in OUT (or HISTORY).")
@click.option(
    "-p", "--port", "ports", type=_Ports(),
    help="Port of the targets that name none, or a comma list (443,8443: each on every one) "
    f"[default: {DEFAULT_PORT}; a URL's, its scheme's].",
)  # fmt: skip
@click.option(
    "--starttls", type=click.Choice(list(STARTTLS)),
    help="Speak this protocol before TLS on every target that is no URL (a URL says its own: "
    "smtp://mx.example.com, imap://host, https://host); its port is then the default.",
)  # fmt: skip
@click.option(
    "--engine", type=click.Choice(list(ENGINES)), default=_DEFAULTS.engine, show_default=True,
    envvar="PINSCAN_ENGINE", show_envvar=True,
    help="TLS engine: rustls (in pinscan's Rust core; TLS 1.3 and 1.2, a third of OpenSSL's CPU), "
    "openssl (TLS 1.0 to 1.3, every legacy suite), or auto: rustls, then OpenSSL for a server "
    "rustls cannot reach. The engine column says which one served each endpoint.",
)  # fmt: skip
@click.option(
    "--inventory-format", type=click.Choice(["text", "csv", "parquet"]),
    help="Inventory format; by default from the file name (text for stdin).",
)  # fmt: skip
@click.option("--strict", is_flag=True, help="Fail before any connection on a bad inventory line.")
@click.option(
    "-c", "--concurrency", type=_bounded(_SCAN["concurrency"]), default=_DEFAULTS.concurrency,
    show_default=True, help="Endpoints in flight at once.",
)  # fmt: skip
@click.option(
    "--rate", type=_bounded(_SCAN["rate"]), default=_DEFAULTS.rate,
    help="New connections per second, at most [default: no limit].",
)  # fmt: skip
@click.option(
    "--per-address", type=_bounded(_SCAN["per_address"]), default=_DEFAULTS.per_address,
    show_default=True, help="Connections open at once to one address.",
)  # fmt: skip
@click.option(
    "--retries", type=_bounded(_SCAN["retries"]), default=_DEFAULTS.retries, show_default=True,
    help="Extra attempts after a timeout, reset or refusal.",
)  # fmt: skip
@click.option(
    "--connect-timeout", type=_bounded(_TIMEOUTS["connect"]),
    default=_DEFAULTS.timeouts.connect, show_default=True, help="Seconds.",
)  # fmt: skip
@click.option(
    "--handshake-timeout", type=_bounded(_TIMEOUTS["handshake"]),
    default=_DEFAULTS.timeouts.handshake, show_default=True, help="Seconds.",
)  # fmt: skip
@click.option(
    "--deadline", type=_bounded(_TIMEOUTS["deadline"]), default=_DEFAULTS.timeouts.deadline,
    show_default=True,
    help="Seconds for DNS, connect and handshake of one endpoint together, retries included.",
)  # fmt: skip
@click.option("--first-address", is_flag=True, help="Scan one address per name, not all.")
@click.option(
    "--ca-bundle", type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Trust anchors of a private PKI, verified as a store of their own.",
)  # fmt: skip
@click.option(
    "--anchor-store", type=click.Choice(["system", "user"]), default="system", show_default=True,
    help="Where the --ca-bundle roots sit on an Android device, for the config's <trust-anchors>: "
    "the system store (src=\"system\" trusts them, its overridePins applies) or the user store "
    "(only src=\"user\" trusts them). Recorded with the scan.",
)  # fmt: skip
@click.option("--system-store", is_flag=True, help="Also verify against the system's CA bundle.")
@click.option(
    "--trust-store", "trust_stores", metavar="STORE[,STORE...]", multiple=True,
    callback=_trust_stores,
    help="Platform root stores to verify every chain against, each on its own, in this order "
    f"(shipped with pinscan: {', '.join(TRUST_STORES)}); NAME=FILE takes a PEM bundle for "
    "that platform's store. Comma-separated or repeated [default: all, in that order].",
)  # fmt: skip
@click.option(
    "--processes", type=click.INT, default=_DEFAULTS.processes, callback=_processes,
    help="Scanning processes, each with its share of the inventory (split as --shard splits "
    "it), folded into one dataset at the end; the limits (-c, --rate, --per-address) are shared "
    "out among them [default: one per core, one alone below 2048 targets; 1: this process].",
)  # fmt: skip
@click.option(
    "--verify-processes", type=_bounded(_SCAN["verify_processes"]),
    default=_DEFAULTS.verify_processes,
    help="Child processes that verify chains while the scan goes on "
    "[default: 1 with two cores or more, else 0: in the scanning process].",
)  # fmt: skip
@click.option(
    "--flush-rows", type=_bounded(_SCAN["flush_rows"]), default=_DEFAULTS.flush_rows,
    show_default=True, help="Write a part file after this many endpoints...",
)  # fmt: skip
@click.option(
    "--flush-seconds", type=_bounded(_SCAN["flush_seconds"]),
    default=_DEFAULTS.flush_seconds, show_default=True,
    help="...or after this many seconds, whichever comes first.",
)  # fmt: skip
@click.option(
    "--jsonl", is_flag=True,
    help="Stream one JSON object per endpoint to stdout, as it is scanned.",
)  # fmt: skip
@options.output_format("The closing summary (and, without -o, the endpoints) as text or as JSON.")
@partial(policy_options, short=False)
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
@options.quiet("No progress bar and no summary.")
def scan_command(
    sources: tuple[str, ...],
    out: Path | None,
    history: Path | None,
    resume: bool,
    ports: tuple[int, ...] | None,
    starttls: str | None,
    engine: str,
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
    anchor_store: str,
    system_store: bool,
    trust_stores: tuple[str, ...],
    processes: int | None,
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
    """Handshake with every endpoint of INVENTORY, or of the TARGETs, and write what each serves
    to OUT; without -o, print it.

    INVENTORY holds one target per line (host, host:port, ip:port, [v6]:port, an https:// URL
    or a STARTTLS one such as smtp://mx.example.com, optionally followed by the SNI name to
    send), or is a CSV or Parquet file with columns host, port, sni, ip; - reads standard input.
    Instead of a file, give the targets themselves:
    `pinscan scan example.com example.org:8443`. An argument is the inventory when a file of
    that name exists, a target otherwise. Every address a name resolves to is scanned.

    Without -o or --history nothing is kept: the endpoints are printed, as a table (--format
    json: a JSON document; --jsonl: a JSON object per endpoint as it is scanned).

    Exits 0 when the scan ran, whatever the endpoints did; 2 on usage errors and unreadable
    inputs. With --policy, the verdicts go into the dataset's pin_results table, and any fail or
    error exits 1, as `pinscan check` does. With --history instead of -o, the scan is added to a
    history that `pinscan.open`, `pinscan diff` and DuckDB, pyarrow or Spark read. With
    --shard I/N, only shard I of N is scanned into OUT (--resume: finish that shard); with
    --dask, every shard runs on Dask (--resume: run the shards not done). See docs/scale.md.
    """
    from pinscan.scanner import verify_child

    # The verification child starts first thing, its interpreter and imports beside this
    # process's own, where this process is to verify an inventory file's chains (targets on the
    # command line are a short scan, verified in-process; workers and Dask have their own).
    single = not (processes is not None and processes > 1) and dask is None
    if verify_processes != 0 and single and len(_files(sources)) == 1:
        verify_child.start_standby()
        click.get_current_context().call_on_close(verify_child.drop_standby)

    from pinscan.cli import scan_summary
    from pinscan.cli.progress import Progress, count_targets
    from pinscan.dataset.meta import read_meta
    from pinscan.dataset.shards import shard_dir
    from pinscan.inventory import without_userinfo
    from pinscan.scanner.router import Route, scan_to

    kept = out is not None or history is not None
    if not kept and (resume or shard is not None or dask is not None):
        raise click.UsageError("--resume, --shard and --dask go with a dataset: give -o OUT")
    _check_dask_options(dask, jsonl, dask_workers)
    if processes is not None and processes > 1:
        if jsonl:
            raise click.UsageError("--jsonl streams from one process: give --processes 1 or none")
        if shard is not None or dask is not None:
            msg = "--processes splits the scan on this machine; --shard and --dask split it already"
            raise click.UsageError(msg)
    # Where the scan goes, checked before anything is read, sent or started (a Dask cluster).
    route = Route(
        out=out, history=history, shard=shard, dask=dask, shards=shard_count, resume=resume
    )
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
        anchor_store=anchor_store,
        system_store=system_store,
        trust_stores=trust_stores,
        processes=processes,
        verify_processes=verify_processes,
        flush_rows=flush_rows,
        flush_seconds=flush_seconds,
        starttls=starttls,
        engine=engine,
    )
    ports = ports or (STARTTLS[starttls] if starttls else DEFAULT_PORT,)
    # Opened (and, with --strict or targets, checked) before anything is sent.
    items, file = _inventory(sources, inventory_format, strict, ports, starttls)
    if file is None or file == "-" or items.total is not None:
        total = items.total
    else:
        lines = count_targets(file, items.format)
        total = None if lines is None else lines * len(ports)
    if shard is not None and total is not None:
        total = -(-total // shard.count)  # the hash spreads targets evenly
    progress = Progress(total=total, enabled=not quiet and sys.stderr.isatty() and dask is None)
    params = click.get_current_context().params.items()
    arguments = {k: v for k, v in params if k not in ("out", "history", "sources")}
    arguments["inventory"] = file if file is not None else items.name
    if file is None:
        arguments["targets"] = [without_userinfo(t) for t in sources]
    lines_out = _printing().JsonLines() if jsonl else None
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        if not kept:  # a dataset all the same, for the verdicts and the table; removed after
            out = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pinscan-"))) / "scan"
            stack.enter_context(_printing().nothing_to_resume())
        client = None
        if dask is not None:
            workers = dask_workers if dask == "local" else None
            from pinscan.scanner.dask import connect

            client = stack.enter_context(connect(dask, workers=workers, threads=dask_threads))
        with progress:
            written = scan_to(
                items, out, config=config, history=history, shard=route.shard, dask=client,
                shards=route.shards, resume=resume, policies=loaded,
                on_endpoint=None if lines_out is None else lines_out.put,
                on_status=None if dask else progress.advance,
                arguments=json.loads(json.dumps(arguments, default=str)),
                dask_retries=dask_retries, progress=not quiet and sys.stderr.isatty(),
            )  # fmt: skip
        if lines_out is not None:
            lines_out.close()
        # Opened (polars) only for what is printed from its tables: verdicts, endpoints.
        ds = written.open() if loaded or not kept else None
        meta = ds.meta if ds is not None else written.meta()
        if history is not None:
            where = f"{history}@{meta['scan_id']}"
        else:
            where = f"{out} (shard {shard})" if shard is not None else str(out)
        results = ds.pin_results.collect() if ds is not None and loaded else None
        verdicts: dict[str, int] = {}
        if results is not None:
            verdicts = dict(results.group_by("verdict").len().sort("verdict").iter_rows())
        # A shard's run says what it scanned; the dataset, what all the shards did.
        counts = read_meta(shard_dir(out, shard))["counts"] if shard is not None else meta["counts"]
        summary = {**counts, **({"pin_verdicts": verdicts} if loaded else {})}
        if "shards" in meta:
            summary["shards"] = {k: meta["shards"][k] for k in ("count", "missing")}
            if loaded and not meta["complete"]:  # judged once the last shard is done
                summary["pin_verdicts"] = None
        if dask is not None:  # the shards' own times add up to more than the scan took
            summary["seconds"] = round(time.monotonic() - started, 3)
        if not kept and not jsonl:
            printing = _printing()
            assert ds is not None  # opened above: nothing kept
            rows = printing.endpoint_rows(ds, results)
            if output == "json":
                document = {"dataset": None, **summary, "results": rows}
                click.echo(json.dumps(document, indent=2, default=scan_summary.json_value))
            else:
                printing.print_endpoints(rows, bool(loaded))
                if not quiet:
                    click.echo(scan_summary.summary_text(None, summary), err=True)
        elif not quiet:
            place = where if kept else None
            if output == "json":
                document = {"dataset": place, **summary}
                text = json.dumps(document, indent=2, default=scan_summary.json_value)
                click.echo(text, err=jsonl)
            else:
                click.echo(scan_summary.summary_text(place, summary), err=jsonl)
    if any(verdicts.get(v) for v in exits.FAILING) or any(p.error for p in loaded):
        raise SystemExit(exits.FINDINGS)


def _printing() -> Any:
    """:mod:`pinscan.cli.scan_output` (polars, rich), imported when something is printed: a scan
    with -o and -q reaches its first connection without them."""
    from pinscan.cli import scan_output

    return scan_output


def _files(sources: tuple[str, ...]) -> list[str]:
    """The arguments that name an inventory file: ``-`` (stdin), a file or a pipe."""
    return [s for s in sources if s == "-" or (os.path.exists(s) and not os.path.isdir(s))]


def _inventory(
    sources: tuple[str, ...],
    fmt: str | None,
    strict: bool,
    ports: tuple[int, ...],
    starttls: str | None = None,
) -> tuple[Inventory, str | None]:
    """The inventory the arguments give, and its file (``-`` for stdin; ``None`` for targets).

    One argument that names an existing file (or a pipe: ``<(grep ... hosts)``) is the
    inventory; otherwise every argument is a target, checked here so that a typo is a usage
    error before anything is sent."""
    from pinscan.inventory import read_inventory

    if not sources:
        msg = "give an inventory file (- for stdin), or targets: pinscan scan example.com:443"
        raise click.UsageError(msg)
    files = _files(sources)
    if files:
        if len(sources) > 1:
            msg = f"{files[0]} is an inventory file: give one inventory file, or targets"
            raise click.UsageError(msg)
        source: Any = click.open_file("-", "rb") if files[0] == "-" else files[0]
        inventory = read_inventory(
            source, format=fmt, strict=strict, ports=ports, starttls=starttls
        )
        return inventory, files[0]
    for text in sources:
        if ("/" in text and "://" not in text) or text.lower().endswith(_FILE_SUFFIXES):
            raise InputError(text, "no such file")
    if fmt not in (None, "text"):
        raise click.UsageError("--inventory-format is for an inventory file, not for targets")
    lines = io.BytesIO("\n".join(sources).encode())
    lines.name = "<arguments>"
    try:
        return read_inventory(
            lines, format="text", strict=True, ports=ports, starttls=starttls
        ), None
    except InventoryError as exc:  # its line is the argument's place
        reason = exc.message.removeprefix(f"line {exc.line}: ")
        raise InputError(f"target {exc.line}", reason) from None


def _check_dask_options(dask: str | None, jsonl: bool, dask_workers: int | None) -> None:
    """What the Dask options of the command line go with (the rest of the routing rule is the
    router's: :class:`pinscan.scanner.router.Route`)."""
    if dask is None and dask_workers is not None:
        raise click.UsageError("--dask-workers goes with --dask local")
    if dask is not None and jsonl:
        raise click.UsageError("--jsonl is not available with --dask: the workers write the rows")
    if dask is not None and dask != "local" and dask_workers is not None:
        raise click.UsageError("--dask-workers is for --dask local; a scheduler has its workers")
