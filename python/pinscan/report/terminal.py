# SPDX-License-Identifier: Apache-2.0
"""The report on a terminal: a header line and rich tables, small ones side by side; and how
every command prints tables that hold pins (:func:`new_console`, :func:`print_table`)."""

from __future__ import annotations

import polars as pl
from rich.columns import Columns
from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.measure import Measurement
from rich.table import Table

from pinscan.dataset.schema import VERDICTS
from pinscan.diffing import summary as diff_summary
from pinscan.report.lockout import Lockout
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
#: The width of a console that is not a terminal (a pipe, a file, a CI log): wider than any
#: table, so that no cell is folded and each row is one line for grep and awk, whatever COLUMNS
#: says. Nothing is padded to it.
UNFOLDED = 100_000
#: A lockout matrix cell: words first (a terminal without colour, a log), the colour second.
OUTCOME_CELL = {
    "locks_out": "[bold red]LOCKS OUT[/]",
    "untrusted": "[magenta]untrusted[/]",
    "survives": "[green]survives[/]",
    "unpinned": "[dim]unpinned[/]",
    None: "[dim]-[/]",
}


def new_console(*, stderr: bool = False) -> Console:
    """The console tables are printed on: the terminal's width in a terminal, :data:`UNFOLDED`
    elsewhere."""
    out = Console(highlight=False, soft_wrap=False, stderr=stderr)
    if not out.is_terminal:
        out.width = UNFOLDED
    return out


def print_table(out: Console, table: Table) -> None:
    """Print ``table`` without breaking a word of it: a pin or a digest is one word, and people
    copy them into pin-sets.

    On :data:`UNFOLDED` consoles nothing is narrowed. In a terminal, rich narrows columns to fit
    it, below their longest word if need be: each column is kept at least that wide (a cell of
    several digests wraps between them), and when the terminal is narrower than the table, the
    lines are written wider than the terminal, which wraps them on screen but copies each whole.
    """
    wide = out.options.update_width(UNFOLDED)
    if out.is_terminal:
        for column in table.columns:
            words = (Measurement.get(out, wide, cell).minimum for cell in column.cells)
            column.min_width = max(words, default=0) or None
    narrowest = Measurement.get(out, wide, table).minimum
    out.print(_Width(table, max(out.width, narrowest)), crop=False)


class _Width:
    """A renderable laid out at a given width, whatever the console's."""

    def __init__(self, renderable: RenderableType, width: int) -> None:
        self.renderable, self.width = renderable, width

    def __rich_console__(self, out: Console, options: ConsoleOptions) -> RenderResult:
        yield from out.render(self.renderable, options.update_width(self.width))


def print_summary(summary: Summary, console: Console | None = None) -> None:
    console = console or new_console()
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
    if summary.lockout is not None:
        print_lockout(summary.lockout, console)
    if summary.problems.height:
        problems = Table(title="top problems", title_justify="left")
        for column in ("kind", "problem", "endpoints", "e.g."):
            problems.add_column(
                column, overflow="fold", justify="right" if column == "endpoints" else "left"
            )
        for row in summary.problems.iter_rows(named=True):
            problems.add_row(row["kind"], row["problem"], f"{row['endpoints']:,}", row["example"])
        console.print(problems)
    _print_history(summary, console)


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
    console.print(
        "endpoints failing a pin check (fail or error under at least one policy): "
        f"{summary.pin_failing:,}"
    )


def print_lockout(lockout: Lockout, console: Console) -> None:
    """The riskiest pin-sets, then the matrix: a row per host (or registrable domain) and
    policy, a column per scenario, riskiest rows first."""
    by = "host" if lockout.by == "name" else "domain"
    pairs = int(lockout.outcomes["pairs"].sum()) if lockout.outcomes.height else 0
    console.print(
        f"[bold]lockout[/]: {len(lockout.scenario_names)} scenarios over {pairs:,} pinned "
        f"(endpoint, policy) pairs; endpoints a routine scenario (renew_new_key, sibling:) "
        f"locks out: {lockout.routine_locked:,}"
    )
    if lockout.matrix.is_empty():
        console.print("[dim]lockout: no pin-set covers an endpoint, nothing to lock out[/]")
        return
    if lockout.riskiest.height:
        risky = Table(
            title=f"riskiest pin-sets ({lockout.riskiest.height} of {lockout.pin_sets})",
            title_justify="left",
        )
        for column in lockout.riskiest.columns:
            numeric = lockout.riskiest.schema[column].is_numeric()
            risky.add_column(column.replace("_", " "), justify="right" if numeric else "left")
        for row in lockout.riskiest.iter_rows(named=True):
            risky.add_row(*(_risk_cell(column, value) for column, value in row.items()))
        print_table(console, risky)
    routine = set(lockout.scenarios.filter(pl.col("routine"))["scenario"])
    names = lockout.scenario_names
    shown = lockout.matrix.height
    title = f"lockout by {by} and scenario (* routine), riskiest first"
    if lockout.left_out:
        title += f": {shown} of {lockout.matrix_total}"
    grid = Table(title=title, title_justify="left")
    grid.add_column(by)
    grid.add_column("policy")
    for name in names:
        grid.add_column(f"{name}{' *' if name in routine else ''}")
    grid.add_column("locks out", justify="right")
    for row in lockout.matrix.iter_rows(named=True):
        grid.add_row(
            row[lockout.by],
            policy_label(row["policy"]),
            *(OUTCOME_CELL[row[name]] for name in names),
            f"{row['locked_out']}/{len(names)}",
        )
    print_table(console, grid)
    if lockout.left_out:
        console.print(
            f"{lockout.left_out:,} more rows left out (--lockout-rows; pinscan check "
            "--scenarios lists every endpoint)"
        )


def _risk_cell(column: str, value: object) -> str:
    if column == "policy" and isinstance(value, str):
        return policy_label(value)
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "-"
    if isinstance(value, float):
        return f"{100 * value:.0f}%" if column.endswith("share") else f"{value:.2f}"
    return "" if value is None else f"{value:,}" if isinstance(value, int) else str(value)


def _print_history(summary: Summary, console: Console) -> None:
    """The trend over the history's scans and the changes since the scan before, when the
    summary has them."""
    if summary.trend.is_empty():
        return
    trend = Table(title="over the scans of this history", title_justify="left")
    headings = ("started (UTC)", "scan", "endpoints", "ok", "failed", "not verified", "fail a pin")
    for i, heading in enumerate(headings):
        trend.add_column(heading, justify="left" if i < 2 else "right")
    for row in summary.trend.iter_rows(named=True):
        failing = row["pin_failing"]
        trend.add_row(
            f"{row['started_at']:%Y-%m-%d %H:%M}",
            row["scan_id"],
            *(
                f"{row[c]:,}"
                for c in ("endpoints", "handshake_ok", "handshake_failed", "unverified")
            ),
            "" if failing is None else f"{failing:,}",
        )
    console.print(trend)
    if summary.previous is None or summary.changes is None:
        console.print("changes: none to show, this is the first scan of the history")
        return
    counts = [f"{kind} {n:,}" for kind, n in diff_summary(summary.changes).iter_rows() if n]
    console.print(
        f"changes since {summary.previous['scan_id']}: {', '.join(counts) or 'none'} "
        "(pinscan diff lists them)"
    )
