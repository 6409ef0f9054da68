# SPDX-License-Identifier: Apache-2.0
"""``pinscan check OUT --policy FILE...``: would each client's pins accept what the fleet serves?

Exit 0 when every pinned endpoint passes, 1 on any ``fail`` or ``error`` (or a policy the client
rejects), 2 on usage errors and unreadable files: a scheduled audit gates on it.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from pinscan.cli import exits, options
from pinscan.cli.options import POLICY_FORMATS, policy_options, read_policies
from pinscan.records import TRUST_STORES

# polars, rich, the dataset and the policy code are imported in the functions that use them, so
# that `pinscan check --help` starts fast (lazy for start-up time).
if TYPE_CHECKING:
    import polars as pl
    from rich.console import Console
    from rich.table import Table

    from pinscan.policy.model import Policy


#: The stores a verdict can be judged by (pinscan.policy.evaluate.JUDGING_STORES).
_STORES = (*TRUST_STORES, "ca_bundle", "system")


def _judging(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> dict[str, str]:
    """``--trust-store STORE`` (every format) and ``FORMAT=STORE``, in order: {format: store}."""
    out: dict[str, str] = {}
    for entry in value:
        fmt, equals, store = entry.rpartition("=")
        if store not in _STORES:
            raise click.BadParameter(f"no store named {store!r}; stores: {', '.join(_STORES)}")
        if equals and fmt not in POLICY_FORMATS:
            formats = ", ".join(POLICY_FORMATS)
            raise click.BadParameter(f"no policy format {fmt!r}; formats: {formats}")
        out.update({fmt: store} if equals else dict.fromkeys(POLICY_FORMATS, store))
    return out


@click.command("check")
@click.argument("out", type=click.Path(exists=True, file_okay=False, path_type=Path))
@policy_options
@options.as_of("Judge at this moment instead of now.")
@click.option(
    "--days", type=click.IntRange(0), default=30, show_default=True,
    help="Horizon of 'expiring soon' for pin-sets and leaves.",
)  # fmt: skip
@click.option(
    "--trust-store", "judging", multiple=True, metavar="[FORMAT=]STORE", callback=_judging,
    help="Judge every policy on the path STORE builds, instead of its platform's (Android "
    "formats: android; iOS and TrustKit: apple; curl: system, else mozilla; others: the "
    "scan's first store that verifies), or only the policies of FORMAT (okhttp=java). "
    f"Stores: {', '.join(_STORES)}. Repeat for several.",
)  # fmt: skip
@click.option(
    "--okhttp-jvm", is_flag=True,
    help="Judge OkHttp policies on Java's store: OkHttp on the JVM (not Android) builds its "
    "path there.",
)  # fmt: skip
@click.option("--all", "show_all", is_flag=True, help="Also list endpoints no rule covers.")
@click.option(
    "--findings", "show_findings", is_flag=True,
    help="Print the fleet findings instead of the verdicts (a table, or JSON with --format json).",
)  # fmt: skip
@options.output_format()
@options.quiet("Print only failures, nothing when clean.")
def check_command(
    out: Path,
    policies: tuple[Path, ...],
    policy_format: str | None,
    as_of: dt.datetime | None,
    days: int,
    judging: dict[str, str],
    okhttp_jvm: bool,
    show_all: bool,
    show_findings: bool,
    output: str,
    quiet: bool,
) -> None:
    """Judge every endpoint of the scan in OUT by each --policy, as its client would.

    Each verdict uses the client's own host matching, chain (the path its platform's trust
    store builds; the leaf for curl), positions, expiry and strictness; the store column says
    which store's path judged it. Exits 1 when any pinned endpoint fails or a client would
    reject its policy, 0 otherwise.
    """
    import polars as pl

    from pinscan.dataset import open as open_dataset
    from pinscan.policy.evaluate import evaluate
    from pinscan.policy.findings import findings

    if not policies:
        raise click.UsageError("give at least one --policy FILE")
    loaded = read_policies(policies, policy_format)
    dataset = open_dataset(out, verify=True)
    stores = judging or None
    results = evaluate(dataset, loaded, as_of, stores=stores, okhttp_jvm=okhttp_jvm)
    found = findings(dataset, loaded, as_of, days=days, stores=stores, okhttp_jvm=okhttp_jvm)
    shown = results if show_all else results.filter(pl.col("verdict") != "unpinned")
    failing = results.filter(pl.col("verdict").is_in(exits.FAILING))
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
        raise SystemExit(exits.FINDINGS)


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
    from pinscan.report.terminal import new_console, print_table

    console = new_console()
    _print_rejected(console, policies)
    if found.is_empty():
        console.print("no findings")
    else:
        print_table(console, _findings_table(found))


def _findings_table(found: pl.DataFrame) -> Table:
    from rich.table import Table

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
    from rich.table import Table

    from pinscan.report.terminal import VERDICT_STYLE, new_console, print_table

    console = new_console()
    _print_rejected(console, policies)
    if not shown.is_empty():
        table = Table(title="pin verdicts", title_justify="left")
        for column in ("target", "ip", "policy", "verdict", "store", "matched pin", "pos", "note"):
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
                r["store"] or "",
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
