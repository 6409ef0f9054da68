# SPDX-License-Identifier: Apache-2.0
"""``pinscan audit CONFIG.toml``: scan, judge, diff, report and gate, for cron and CI.

Everything is in :mod:`pinscan.audit`; this module prints the result. Exit 0 when no threshold
is crossed, 1 when one is, 2 on a bad configuration or unreadable input (before any scan).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from pinscan.cli import exits, options

# The audit (the scanner, polars) and the progress bar (rich) are imported in the command, so
# that `pinscan audit --help` starts fast (lazy for start-up time).
if TYPE_CHECKING:
    from pinscan.audit import AuditResult, Check
    from pinscan.cli.progress import Progress
    from pinscan.records import Endpoint


@click.command("audit")
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--resume", is_flag=True, help="Finish the history's interrupted scan instead.")
@options.output_format()
@options.quiet("Print only the thresholds crossed; nothing when none is (for cron).")
def audit_command(config: Path, resume: bool, output: str, quiet: bool) -> None:
    """Scan the fleet of CONFIG into its history, judge it by its policies, compare it with the
    previous scan, write the report and check the thresholds.

    CONFIG is a TOML file (docs/audit.md): inventory, history, policies, [scan] options,
    [report] paths, [thresholds] and [lockout] (rotation scenarios); its relative paths are
    relative to it. Exits 1 when a
    threshold is crossed, 0 otherwise.
    """
    from pinscan.audit import load_config, run
    from pinscan.cli.progress import Progress, count_targets

    loaded = load_config(config)
    total = None if quiet or not sys.stderr.isatty() else count_targets(str(loaded.inventory), None)
    progress = Progress(total=total, enabled=not quiet and sys.stderr.isatty())
    with progress:
        result = run(loaded, resume=resume, on_endpoint=_advance(progress))
    if quiet and result.passed:
        return
    if output == "json":
        click.echo(json.dumps(result.to_dict(), indent=2, default=str))
    elif quiet:
        click.echo("\n".join(line for check in result.crossed for line in _check_lines(check)))
    else:
        click.echo(_text(result))
    # A crossed threshold is a finding; bad configuration or input exits 2, as every error does.
    raise SystemExit(exits.OK if result.passed else exits.FINDINGS)


def _advance(progress: Progress):  # type: ignore[no-untyped-def]
    def on_endpoint(endpoint: Endpoint) -> None:
        progress.advance(endpoint.status)

    return on_endpoint


def _text(result: AuditResult) -> str:
    d = result.to_dict()
    scan = d["scan"]
    lines = [
        f"pinscan audit {d['config']}",
        f"  scan {scan['scan_id']}: {scan['targets']} targets, {scan['endpoints']} endpoints "
        f"in {scan['seconds']:.1f} s -> {d['history']}",
        "  status: " + _counts(scan["statuses"]),
    ]
    if result.previous is None:
        lines.append("  changes: none to show, this is the first scan of the history")
    else:
        counts = _counts(result.change_counts) or "none"
        lines.append(f"  changes since {result.previous}: {counts}")
    if d["pin_verdicts"]:
        lines.append("  pin verdicts: " + _counts(d["pin_verdicts"]))
    if d["lockout"] is not None:
        played = d["lockout"]["scenarios"]
        locking = ", ".join(f"{s['scenario']} {s['locks_out']}" for s in played if s["locks_out"])
        lines.append(
            f"  lockout: {len(played)} scenarios played; endpoints locked out: {locking or 'none'}"
        )
    for kind, path in d["report"].items():
        if path:
            lines.append(f"  report ({kind}): {path}")
    for check in result.checks:
        lines += _check_lines(check)
    crossed = ", ".join(c.name for c in result.crossed)
    lines.append(f"  result: {'FAIL (' + crossed + ')' if crossed else 'ok'}")
    return "\n".join(lines)


def _check_lines(check: Check) -> list[str]:
    mark = "FAIL" if check.crossed else "ok  "
    head = f"  {mark} {check.name}: {check.value} (limit {check.limit}) {check.detail}"
    return [head, *(f"         {example}" for example in check.examples if check.crossed)]


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))
