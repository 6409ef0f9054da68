# SPDX-License-Identifier: Apache-2.0
"""``pinscan report OUT [--html FILE]``: the state of a fleet at a glance.

The report describes; it does not judge: it exits 0 whatever the fleet looks like (``check``,
``diff`` and ``audit`` are the gates), and 2 on usage errors and unreadable input.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import click

from pinscan.cli import options
from pinscan.cli.options import policy_options, read_policies

# The dataset and the report code (polars, rich) are imported in the command, so that
# `pinscan report --help` starts fast (lazy for start-up time).


@click.command("report")
@click.argument("out")
@click.option(
    "--html", "html_path", type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the report as one self-contained HTML page (plots and a sortable table).",
)  # fmt: skip
@policy_options
@options.as_of("Count expiry and judge pins at this moment, not now.")
@click.option(
    "--top", type=click.IntRange(1), default=10, show_default=True,
    help="How many issuers, problems and soonest-expiring certificates to list.",
)  # fmt: skip
@click.option(
    "--rows", type=click.IntRange(0), default=5000, show_default=True,
    help="Endpoints in the HTML table: problems first, then the soonest to expire.",
)  # fmt: skip
@options.scenario_options
@click.option(
    "--lockout-rows", type=click.IntRange(1), default=50, show_default=True,
    help="Rows of the lockout matrix, the riskiest (by host, or by registrable domain when the "
    "fleet has more hosts than this).",
)  # fmt: skip
@options.output_format()
@options.quiet("Print nothing (for cron, with --html).")
def report_command(
    out: str,
    html_path: Path | None,
    policies: tuple[Path, ...],
    policy_format: str | None,
    as_of: dt.datetime | None,
    top: int,
    rows: int,
    scenarios: str | None,
    switch_to: tuple[str, ...],
    backup_keys: tuple[Path, ...],
    password: str | None,
    ca_catalogs: tuple[Path, ...],
    lockout_rows: int,
    output: str,
    quiet: bool,
) -> None:
    """Summarise the scan OUT (a dataset, a history's latest scan, or HISTORY@SCAN_ID or
    HISTORY@-2 for an earlier one): status, TLS versions, keys, issuers, expiry in 7/30/90 days,
    unverified endpoints, pin verdicts and coverage, and the most common problems; for a scan of
    a history, also the trend over its scans and what changed since the scan before.

    Pin verdicts come from each --policy (judged now, or at --as-of), or else from the verdicts
    `scan --policy` stored in OUT. With --policy, the lockout section says which pin-sets the
    next renewal, CA switch or key change would lock out: a matrix of hosts by scenario (a heat
    map on the page), the riskiest first. A report is for reading: it plays every scenario
    unless --scenarios says otherwise (--scenarios none leaves the section out; on a large
    fleet it is the slowest part).
    """
    from pinscan.dataset import select
    from pinscan.errors import ConfigError
    from pinscan.report.page import write_html
    from pinscan.report.summary import summarize
    from pinscan.report.terminal import print_summary
    from pinscan.rotation.scenarios import parse_scenarios

    # Parsed and read first: a misspelt kind or an unreadable key exits 2 before any work.
    selection = parse_scenarios(scenarios or "all", option="--scenarios")
    inputs = (switch_to, backup_keys, password, ca_catalogs)
    rotation = options.scenario_inputs(*inputs) if policies else {}
    dataset = select(out, verify=True)
    loaded = read_policies(policies, policy_format) if policies else None
    try:
        summary = summarize(
            dataset,
            loaded,
            as_of,
            top=top,
            table_rows=rows if html_path else 0,
            history=True,
            scenarios=selection,
            lockout_rows=lockout_rows,
            **rotation,
        )
    except ConfigError as exc:  # named as the library names it: say the option instead
        option = options.SCENARIO_INPUTS.get(exc.setting, exc.setting)
        raise ConfigError(option, exc.reason) from None
    if html_path is not None:
        write_html(summary, html_path)
    if quiet:
        return
    if output == "json":
        click.echo(json.dumps(summary.to_dict(), indent=2, default=str))
        return
    print_summary(summary)
    if html_path is not None:
        click.echo(f"wrote {html_path}")
