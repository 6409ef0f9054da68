# SPDX-License-Identifier: Apache-2.0
"""``pinscan check OUT --policy FILE...``: would each client's pins accept what the fleet serves?

Exit 0 when every pinned endpoint passes, 1 on any ``fail`` or ``error`` (or a policy the client
rejects), 2 on usage errors and unreadable files: a scheduled audit gates on it.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import click
import polars as pl
from rich.console import Console
from rich.table import Table

from pinscan.dataset import open as open_dataset
from pinscan.policy import FORMATS, load_policies
from pinscan.policy.evaluate import evaluate
from pinscan.policy.findings import findings
from pinscan.policy.model import Policy
from pinscan.report.terminal import VERDICT_STYLE, new_console, print_table

EXIT_FINDINGS = 1
FAILING = ("fail", "error")


class AsOf(click.ParamType):
    """``YYYY-MM-DD`` (00:00 UTC) or an ISO 8601 date and time (UTC unless it says otherwise)."""

    name = "DATE"

    def convert(self, value, param, ctx):  # type: ignore[no-untyped-def]
        if isinstance(value, dt.datetime):
            return value
        try:
            moment = dt.datetime.fromisoformat(value)
        except ValueError:
            self.fail(f"{value!r} is not a date (YYYY-MM-DD) or ISO 8601 time", param, ctx)
        return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def policy_options(command, *, short: bool = True):  # type: ignore[no-untyped-def]
    """``--policy``, ``--policy-format`` and ``--android-debug``, shared by the commands that
    judge scans; `read_policies` reads the last from the context. ``short``: ``-p`` for
    ``--policy`` (``scan`` keeps ``-p`` for ``--port``, as tlsx users expect)."""
    command = click.option(
        "--android-debug",
        is_flag=True,
        expose_value=False,
        callback=lambda ctx, _, value: ctx.meta.__setitem__("android_debug", value),
        help="Apply Android <debug-overrides>, as a debuggable build does (release builds "
        "ignore them).",
    )(command)
    command = click.option(
        "--policy-format",
        type=click.Choice(FORMATS),
        help="Read every --policy as this format instead of telling by content.",
    )(command)
    return click.option(
        *(("-p", "--policy") if short else ("--policy",)),
        "policies",
        multiple=True,
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="A pin policy: Android XML, iOS/TrustKit plist or JSON, OkHttp source, HPKP, "
        "curl, Chromium JSON or pinscan TOML. Repeat for several.",
    )(command)


def read_policies(paths: tuple[Path, ...], format: str | None) -> list[Policy]:
    debug = click.get_current_context().meta.get("android_debug", False)
    return [p for path in paths for p in load_policies(path, format, android_debug=debug)]


@click.command("check")
@click.argument("out", type=click.Path(exists=True, file_okay=False, path_type=Path))
@policy_options
@click.option("--as-of", type=AsOf(), help="Judge at this moment instead of now.")
@click.option(
    "--days", type=click.IntRange(0), default=30, show_default=True,
    help="Horizon of 'expiring soon' for pin-sets and leaves.",
)  # fmt: skip
@click.option("--all", "show_all", is_flag=True, help="Also list endpoints no rule covers.")
@click.option(
    "--findings", "show_findings", is_flag=True,
    help="Print the fleet findings instead of the verdicts (a table, or JSON with --format json).",
)  # fmt: skip
@click.option("--format", "output", type=click.Choice(["text", "json"]), default="text")
@click.option("-q", "--quiet", is_flag=True, help="Print only failures, nothing when clean.")
def check_command(
    out: Path,
    policies: tuple[Path, ...],
    policy_format: str | None,
    as_of: dt.datetime | None,
    days: int,
    show_all: bool,
    show_findings: bool,
    output: str,
    quiet: bool,
) -> None:
    """Judge every endpoint of the scan in OUT by each --policy, as its client would.

    Each verdict uses the client's own host matching, chain (the verified chain; the leaf for
    curl), positions, expiry and strictness. Exits 1 when any pinned endpoint fails or a client
    would reject its policy, 0 otherwise.
    """
    if not policies:
        raise click.UsageError("give at least one --policy FILE")
    loaded = read_policies(policies, policy_format)
    dataset = open_dataset(out, verify=True)
    results = evaluate(dataset, loaded, as_of)
    found = findings(dataset, loaded, as_of, days=days)
    shown = results if show_all else results.filter(pl.col("verdict") != "unpinned")
    failing = results.filter(pl.col("verdict").is_in(FAILING))
    rejected = [p for p in loaded if p.error]
    if quiet:
        shown = failing
    if output == "json":
        frame = found if show_findings else shown
        click.echo(json.dumps(frame.to_dicts(), indent=2, default=_json_value))
    elif show_findings:
        if not quiet or not found.is_empty() or rejected:
            _print_findings(found, loaded)
    elif not quiet or not failing.is_empty() or rejected:
        _print_text(shown, found, results, loaded, quiet=quiet)
    if not failing.is_empty() or rejected:
        raise SystemExit(EXIT_FINDINGS)


def _json_value(value: object) -> str:
    """Times as ISO 8601 (``2027-06-01T00:00:00+00:00``), as every JSON pinscan writes them."""
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _print_rejected(console: Console, policies: list[Policy]) -> None:
    for policy in policies:
        if policy.error:
            where = policy.error_location or policy.name
            console.print(f"[bold red]{where}: the client rejects this policy:[/] {policy.error}")


def _print_findings(found: pl.DataFrame, policies: list[Policy]) -> None:
    """``--findings``: the findings table alone, or that there are none."""
    console = new_console()
    _print_rejected(console, policies)
    if found.is_empty():
        console.print("no findings")
    else:
        print_table(console, _findings_table(found))


def _findings_table(found: pl.DataFrame) -> Table:
    table = Table(title="findings", title_justify="left")
    for column in ("severity", "kind", "where", "endpoints", "message"):
        table.add_column(column)
    for r in found.iter_rows(named=True):
        table.add_row(
            r["severity"],
            r["kind"],
            r["location"] or "",
            "" if r["endpoints"] is None else str(r["endpoints"]),
            r["message"],
        )
    return table


def _print_text(
    shown: pl.DataFrame,
    found: pl.DataFrame,
    results: pl.DataFrame,
    policies: list[Policy],
    *,
    quiet: bool,
) -> None:
    console = new_console()
    _print_rejected(console, policies)
    if not shown.is_empty():
        table = Table(title="pin verdicts", title_justify="left")
        for column in ("target", "ip", "policy", "verdict", "matched pin", "pos", "note"):
            table.add_column(column)
        for r in shown.iter_rows(named=True):
            verdict = r["verdict"]
            table.add_row(
                r["target"]
                if not r["name"] or r["name"] in r["target"]
                else f"{r['target']} ({r['name']})",
                r["ip"] or "",
                Path(r["policy"]).name,
                f"[{VERDICT_STYLE[verdict]}]{verdict}[/]",
                r["matched_pin"] or "",
                "" if r["matched_position"] is None else str(r["matched_position"]),
                r["note"] or "",
            )
        print_table(console, table)
    if quiet:
        return
    if not found.is_empty():
        print_table(console, _findings_table(found))
    coverage = results.group_by("policy", "verdict").len().sort("policy", "verdict").iter_rows()
    by_policy: dict[str, list[str]] = {}
    for policy, verdict, n in coverage:
        by_policy.setdefault(policy, []).append(f"{verdict} {n}")
    for policy, counts in by_policy.items():
        console.print(f"{Path(policy).name}: " + ", ".join(counts))
    for policy in policies:
        for note in policy.notes:
            console.print(f"[dim]{Path(policy.name).name}: {note}[/]")
