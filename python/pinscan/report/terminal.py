# SPDX-License-Identifier: Apache-2.0
"""The report on a terminal: a header line and rich tables, small ones side by side."""

from __future__ import annotations

import polars as pl
from rich.columns import Columns
from rich.console import Console
from rich.table import Table

from pinscan.dataset.schema import VERDICTS
from pinscan.report.summary import Summary, policy_label, scan_state

VERDICT_STYLE = {
    "pass": "green",
    "fail": "bold red",
    "error": "bold red",
    "report-only": "yellow",
    "expired": "yellow",
    "no_chain": "magenta",
    "unpinned": "dim",
}


def print_summary(summary: Summary, console: Console | None = None) -> None:
    console = console or Console(highlight=False, soft_wrap=False)
    scan = summary.scan
    state = scan_state(scan)
    console.print(
        f"[bold]pinscan report[/] {scan['path']}: scan {scan.get('scan_id')} "
        f"({scan.get('started_at')}, {state}), as of {summary.as_of:%Y-%m-%d %H:%M} UTC"
    )
    console.print(
        f"{summary.endpoints:,} endpoints, {summary.with_chain:,} presented a certificate, "
        f"{summary.distinct_issuers:,} issuers"
    )
    console.print(
        Columns(
            [
                _table("status", summary.status, "status", share_of=summary.endpoints),
                _table("TLS versions", summary.tls_versions, "tls_version"),
                _table("key types", summary.key_types, "key"),
            ],
            padding=(0, 2),
        )
    )
    expiring = Table(title="leaf certificates expiring", title_justify="left")
    for column in ("window", "endpoints", "certificates"):
        expiring.add_column(column, justify="left" if column == "window" else "right")
    for row in summary.expiring.iter_rows(named=True):
        style = "bold red" if row["days"] <= 7 and row["endpoints"] else ""
        expiring.add_row(
            f"[{style}]{row['window']}[/]" if style else row["window"],
            f"{row['endpoints']:,}",
            f"{row['certificates']:,}",
        )
    unverified = _table("unverified", summary.unverified, "reason")
    console.print(Columns([expiring, unverified], padding=(0, 2)))
    if summary.soonest.height:
        soonest = Table(title="expiring first", title_justify="left")
        for column in ("not after", "days", "subject", "endpoints", "e.g."):
            soonest.add_column(
                column,
                overflow="fold",
                justify="right" if column in ("days", "endpoints") else "left",
            )
        for row in summary.soonest.iter_rows(named=True):
            soonest.add_row(
                f"{row['not_after']:%Y-%m-%d}",
                str(row["days"]),
                row["subject"] or "",
                f"{row['endpoints']:,}",
                row["example"],
            )
        console.print(soonest)
    if summary.issuers.height:
        issuers = Table(title="issuers", title_justify="left")
        for column in ("issuer", "endpoints", "certificates"):
            issuers.add_column(
                column, overflow="fold", justify="left" if column == "issuer" else "right"
            )
        for row in summary.issuers.iter_rows(named=True):
            issuers.add_row(
                row["issuer"] or "(unreadable)", f"{row['endpoints']:,}", f"{row['certificates']:,}"
            )
        console.print(issuers)
    _print_pins(summary, console)
    if summary.problems.height:
        problems = Table(title="top problems", title_justify="left")
        for column in ("kind", "problem", "endpoints", "e.g."):
            problems.add_column(
                column, overflow="fold", justify="right" if column == "endpoints" else "left"
            )
        for row in summary.problems.iter_rows(named=True):
            problems.add_row(row["kind"], row["problem"], f"{row['endpoints']:,}", row["example"])
        console.print(problems)


def _table(title: str, frame: pl.DataFrame, column: str, share_of: int = 0) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column(column.replace("_", " "))
    table.add_column("endpoints", justify="right")
    if share_of:
        table.add_column("%", justify="right")
    for value, count in frame.select(column, "endpoints").iter_rows():
        cells = [str(value) if value is not None else "(none)", f"{count:,}"]
        if share_of:
            cells.append(f"{100 * count / share_of:.1f}")
        table.add_row(*cells)
    return table


def _print_pins(summary: Summary, console: Console) -> None:
    if summary.verdict_source == "none":
        console.print("[dim]pin verdicts: none (give --policy, or scan with --policy)[/]")
        return
    present = set(summary.verdicts["verdict"].cast(pl.String))
    shown = [v for v in VERDICTS if v in present]
    table = Table(title=f"pin verdicts (from {summary.verdict_source})", title_justify="left")
    table.add_column("policy", overflow="fold")
    for verdict in shown:
        table.add_column(f"[{VERDICT_STYLE[verdict]}]{verdict}[/]", justify="right")
    table.add_column("coverage", justify="right")
    counts = {(policy, str(verdict)): n for policy, verdict, n in summary.verdicts.iter_rows()}
    for row in summary.coverage.iter_rows(named=True):
        policy = row["policy"]
        table.add_row(
            policy_label(policy),
            *(f"{counts.get((policy, v), 0):,}" for v in shown),
            f"{row['pinned']:,}/{row['endpoints']:,} ({100 * row['coverage']:.0f}%)",
        )
    console.print(table)
