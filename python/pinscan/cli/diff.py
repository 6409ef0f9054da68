# SPDX-License-Identifier: Apache-2.0
"""``pinscan diff OLD NEW``: what changed per endpoint between two scans.

Exit 1 when a change of a ``--fail-on`` kind is present (by default a rotated key or an endpoint
that stopped working), 0 otherwise, 2 on usage errors and unreadable scans: a scheduled job
gates on it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from pinscan.cli import exits, options
from pinscan.cli.options import policy_options, read_policies

# polars, rich, the dataset and the diff are imported in the functions that use them, so that
# `pinscan diff --help` starts fast (lazy for start-up time).
if TYPE_CHECKING:
    import polars as pl

# pinscan.diffing.DEFAULT_FAIL_ON, which the help shows, restated for the same reason
# (tests/test_cli_start.py checks it is still the library's).
DEFAULT_FAIL_ON = ("key_rotated", "new_failure")

_STYLE = {
    "key_rotated": "bold red",
    "new_failure": "bold red",
    "issuer_changed": "yellow",
    "chain_changed": "yellow",
    "verification_changed": "yellow",
    "verdict_changed": "yellow",
    "status_changed": "yellow",
    "renewed": "green",
    "recovered": "green",
    "address_changed": "dim",
    "appeared": "cyan",
    "vanished": "magenta",
}


class Kinds(click.ParamType):
    """A comma list of change kinds; ``all``, or ``none`` (or nothing) for no kind."""

    name = "KINDS"

    def convert(self, value, param, ctx):  # type: ignore[no-untyped-def]
        from pinscan.diffing import CHANGES

        if isinstance(value, tuple):
            return value
        words = [w.strip() for w in value.split(",") if w.strip()]
        if words == ["all"]:
            return CHANGES
        if words == ["none"]:
            return ()
        unknown = [w for w in words if w not in CHANGES]
        if unknown:
            kinds = ", ".join(CHANGES)
            self.fail(f"unknown change kind {unknown[0]!r}; kinds: {kinds}", param, ctx)
        return tuple(words)


@click.command("diff")
@click.argument("old", metavar="OLD")
@click.argument("new", metavar="[NEW]", required=False)
@policy_options
@click.option(
    "--fail-on", type=Kinds(), default=",".join(DEFAULT_FAIL_ON), show_default=True,
    help="Exit 1 when a change of these kinds is present (comma list, 'all' or 'none').",
)  # fmt: skip
@click.option(
    "--limit", type=click.IntRange(0), default=200, show_default=True,
    help="Rows shown in the table (0: all); --format json lists every change.",
)  # fmt: skip
@options.output_format()
@options.quiet("Print only --fail-on changes; nothing if none.")
def diff_command(
    old: str,
    new: str | None,
    policies: tuple[Path, ...],
    policy_format: str | None,
    fail_on: tuple[str, ...],
    limit: int,
    output: str,
    quiet: bool,
) -> None:
    """What changed per endpoint from scan OLD to scan NEW.

    OLD and NEW are dataset directories (pinscan scan -o) or scans of a history (--history):
    H is its latest scan, H@-2 the one before, H@<scan_id> any. With OLD alone, a history,
    its two latest scans are compared. Changes: key_rotated, renewed (same key), issuer_changed,
    chain_changed, new_failure, recovered, status_changed, verification_changed, with --policy
    verdict_changed, and address_changed, appeared, vanished.
    """
    import polars as pl

    from pinscan.dataset import select
    from pinscan.diffing import diff

    if new is None:
        if "@" in old and not Path(old).exists():
            raise click.UsageError("with one argument, give a history directory (H, not H@...)")
        before, after = select(f"{old}@-2", verify=True), select(f"{old}@-1", verify=True)
    else:
        before, after = select(old, verify=True), select(new, verify=True)
    loaded = read_policies(policies, policy_format)
    changes = diff(before, after, loaded or None)
    failing = changes.filter(pl.col("change").is_in(fail_on))
    shown = failing if quiet else changes
    if output == "json":
        click.echo(json.dumps(shown.to_dicts(), indent=2, default=str))
    elif not quiet or not failing.is_empty():
        _print_text(shown, changes, before.meta, after.meta, limit=limit, quiet=quiet)
    if not failing.is_empty():
        raise SystemExit(exits.FINDINGS)


def _print_text(
    shown: pl.DataFrame,
    changes: pl.DataFrame,
    before: dict,
    after: dict,
    *,
    limit: int,
    quiet: bool,
) -> None:
    from rich.table import Table

    from pinscan.diffing import summary
    from pinscan.report.terminal import new_console, print_table

    console = new_console()
    title = f"changes from {before['scan_id']} to {after['scan_id']}"
    if shown.is_empty():
        console.print(f"{title}: none")
        return
    table = Table(title=title, title_justify="left")
    for column in ("change", "target", "ip", "old", "new", "detail"):
        table.add_column(column, overflow="fold")
    rows = shown if limit == 0 else shown.head(limit)
    for r in rows.iter_rows(named=True):
        change = r["change"]
        table.add_row(
            f"[{_STYLE[change]}]{change}[/]",
            r["target"] or "",
            "" if r["ip"] is None else f"{r['ip']}:{r['port']}",
            r["old"] or "",
            r["new"] or "",
            r["detail"] or "",
        )
    # Pins and digests whole: people copy them into pin-sets.
    print_table(console, table)
    if rows.height < shown.height:
        more = shown.height - rows.height
        console.print(f"... {more} more (--limit 0 shows all, --format json lists them)")
    if quiet:
        return
    counts = [f"{c} {n}" for c, n in summary(changes).iter_rows() if n]
    console.print("changes: " + ", ".join(counts))
