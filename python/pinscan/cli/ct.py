# SPDX-License-Identifier: Apache-2.0
"""``pinscan ct --watch DOMAIN --state DIR``: watch Certificate Transparency logs for keys nobody
authorized.

Exit 0 when no new alert, 1 when new alerts were found (printed and added to the state's alerts
table), 2 on usage errors, unreadable input or any log that failed to read or verify (the other
logs' results still count and are printed).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from pinscan.cli import exits, options
from pinscan.errors import InputError

# pinscan.ct (anyio, httpx, polars) and rich are imported in the functions that use them, so that
# `pinscan ct --help` starts fast (lazy for start-up time).
if TYPE_CHECKING:
    from pinscan.ct import Log, RunResult

# What the help shows of pinscan.ct, restated for the same reason (tests/test_cli_start.py checks
# they are still the library's): its DEFAULT_LOG_LIST, and loglist's RFC6962 and STATIC.
DEFAULT_LOG_LIST = "https://www.gstatic.com/ct/log_list/v3/log_list.json"
LOG_TYPES = ("rfc6962", "static")
_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.command("ct")
@click.option(
    "-w", "--watch", "watch", multiple=True, required=True, metavar="DOMAIN",
    help="example.com: the domain and every name under it; =host.example.com: exactly that name.",
)  # fmt: skip
@click.option(
    "--state", "state_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
    help="State directory: positions per log, verified trees, the alerts table.",
)  # fmt: skip
@click.option(
    "--log-list", metavar="FILE|URL",
    help=f"Chrome v3 log list (logs and tiled_logs). Default: {DEFAULT_LOG_LIST}",
)  # fmt: skip
@click.option(
    "--log", "log_urls", multiple=True, metavar="URL",
    help="Only this log (RFC 6962 URL or static-ct monitoring prefix); repeatable.",
)  # fmt: skip
@click.option(
    "--log-key", metavar="BASE64",
    help="With one --log not in the log list: its public key (base64 DER SubjectPublicKeyInfo).",
)  # fmt: skip
@click.option(
    "--log-type", type=click.Choice(LOG_TYPES), default=LOG_TYPES[0], show_default=True,
    help="With --log-key: the log's read protocol.",
)  # fmt: skip
@click.option("--allow-pins", multiple=True, type=_FILE, help="Allowed pins, one per line.")
@click.option("--allow-policy", multiple=True, type=_FILE, help="Allowed pins from a pin policy.")
@click.option(
    "--allow-dataset", multiple=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Allow every key this scan dataset saw served.",
)  # fmt: skip
@click.option("--start-at-end", is_flag=True, help="On a log's first run, skip what it holds.")
@click.option("--crtsh", is_flag=True, help="Also backfill from crt.sh (unverified).")
@click.option("--crtsh-url", hidden=True)  # default: pinscan.ct.crtsh.DEFAULT_URL
@click.option("--retries", type=click.IntRange(0, 20), default=5, show_default=True)
@click.option("--backoff", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="First retry delay in seconds; doubles per retry.")  # fmt: skip
@click.option("--timeout", type=click.FloatRange(min=0.1), default=30.0, show_default=True)
@click.option(
    "--rate", type=click.FloatRange(min=0), default=0, help="Requests/s per log (0: any)."
)
@click.option("--parallel", type=click.IntRange(1, 64), default=4, show_default=True,
              help="Requests in flight per log.")  # fmt: skip
@options.output_format()
@options.quiet("Print only new alerts and errors.")
def ct_command(
    watch: tuple[str, ...],
    state_dir: Path,
    log_list: str | None,
    log_urls: tuple[str, ...],
    log_key: str | None,
    log_type: str,
    allow_pins: tuple[Path, ...],
    allow_policy: tuple[Path, ...],
    allow_dataset: tuple[Path, ...],
    start_at_end: bool,
    crtsh: bool,
    crtsh_url: str | None,
    retries: int,
    backoff: float,
    timeout: float,
    rate: float,
    parallel: int,
    output: str,
    quiet: bool,
) -> None:
    """Report certificates for watched names whose key is not allowed, from CT logs.

    Every tree head signature is verified and every root recomputed from the entries before a
    position is saved, so a run resumes exactly where the last verified one ended.
    """
    import anyio

    from pinscan.ct import FetchPolicy, Options, StateDir, Watchlist, run
    from pinscan.ct.crtsh import DEFAULT_URL as CRTSH_URL
    from pinscan.ct.watch import pins_from_dataset, pins_from_file, pins_from_policy

    watchlist = Watchlist.parse(watch)
    allowed: set[str] = set()
    for path in allow_pins:
        allowed |= pins_from_file(path)
    for path in allow_policy:
        allowed |= pins_from_policy(path)
    for path in allow_dataset:
        allowed |= pins_from_dataset(path)
    logs = _select_logs(log_list, log_urls, log_key, log_type)
    options = Options(
        watchlist=watchlist,
        allowed=frozenset(allowed),
        start_at_end=start_at_end,
        fetch=FetchPolicy(
            retries=retries, backoff=backoff, timeout=timeout, rate=rate, parallel=parallel
        ),
        crtsh_url=(crtsh_url or CRTSH_URL) if crtsh else None,
    )
    with StateDir(state_dir) as state:
        result = anyio.run(run, logs, state, options)
    _print(result, output, quiet)
    if result.errors:
        raise SystemExit(exits.ERROR)
    if not result.alerts.is_empty():
        raise SystemExit(exits.FINDINGS)


def _select_logs(
    log_list: str | None, urls: tuple[str, ...], key: str | None, log_type: str
) -> list[Log]:
    from pinscan.ct import Log, LogKey, load_log_list

    if key is not None:
        if len(urls) != 1 or log_list:
            raise click.UsageError("--log-key needs exactly one --log and no --log-list")
        url = urls[0].rstrip("/") + "/"
        return [Log(url, log_type, url, LogKey.from_base64(key))]
    logs = load_log_list(log_list or DEFAULT_LOG_LIST)
    if urls:
        wanted = {u.rstrip("/") + "/" for u in urls}
        chosen = [log for log in logs if log.url in wanted]
        missing = wanted - {log.url for log in chosen}
        if missing:
            raise InputError(log_list or DEFAULT_LOG_LIST, f"no monitored log at {sorted(missing)}")
        logs = chosen
    if not logs:
        raise InputError(log_list or DEFAULT_LOG_LIST, "no log to monitor")
    return logs


def _print(result: RunResult, output: str, quiet: bool) -> None:
    from rich.table import Table

    from pinscan.report.terminal import new_console, print_table

    alerts = result.alerts
    if output == "json":
        for row in alerts.iter_rows(named=True):
            click.echo(json.dumps(row, default=_iso8601))
    elif not alerts.is_empty():
        table = Table(title="unauthorized keys in CT", title_justify="left")
        for column in ("log", "index", "type", "names", "issuer", "valid", "pin", "tbs_sha256"):
            table.add_column(column, overflow="fold")
        for r in alerts.iter_rows(named=True):
            table.add_row(
                r["log"] + ("" if r["verified"] else " (unverified)"),
                str(r["index"]),
                r["entry_type"],
                ", ".join(r["names"]),
                r["issuer"] or "",
                f"{_day(r['not_before'])} .. {_day(r['not_after'])}",
                r["spki_sha256"],
                r["tbs_sha256"],
            )
        print_table(new_console(), table)
    for report in result.reports:
        if not quiet and report.error is None:
            click.echo(
                f"pinscan: {report.log.label}: entries {report.start}..{report.end} verified, "
                f"{report.alerts} new alerts"
                + (f", {report.unreadable} unreadable entries" if report.unreadable else ""),
                err=True,
            )
    for error in result.errors:
        click.echo(f"pinscan: {error}", err=True)


def _iso8601(value: object) -> str:
    """Times as ISO 8601 with their offset (``2025-03-01T12:00:00+00:00``), not ``str``'s
    space-separated form."""
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    msg = f"cannot write {type(value).__name__} as JSON"
    raise TypeError(msg)


def _day(value: object) -> str:
    return str(value)[:10] if value is not None else "?"
