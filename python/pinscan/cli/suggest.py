# SPDX-License-Identifier: Apache-2.0
"""``pinscan suggest OUT --domain D --policy-format FMT``: a complete policy file with a safe
pin-set, proven to pass ``pinscan check`` on the same scan before it is written, and what it
survives: every rotation scenario judged on it (``pinscan.rotation.analyse``)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from pinscan.cli import options

if TYPE_CHECKING:
    import polars as pl

    from pinscan.policy.model import Suggestion

# The dataset and the policy code (polars) are imported in the command, so that
# `pinscan suggest --help` starts fast (lazy for start-up time).

# What --policy-format accepts: pinscan.policy.SUGGEST_FORMATS, restated for the same reason
# (tests/test_cli_start.py checks it is still the library's).
SUGGEST_FORMATS = ("android", "ios", "trustkit", "okhttp", "hpkp", "curl", "toml")

# The outcomes a scenario is lost by (``unpinned``, a pin-set no longer enforced, is neither).
_LOST = ("locks_out", "untrusted")
# Why a scenario cannot be survived, by kind and outcome, for the line that says so.
_CANNOT = {
    ("switch", "locks_out"): "another CA family's keys are in no pin",
    ("switch", "untrusted"): "that family's chain reaches no root the store trusts",
    ("root_removed", "untrusted"): "no other path to a trusted root: no pin can help",
    ("root_removed", "locks_out"): "the other path to a trusted root misses every pin",
    ("renew_new_key", "locks_out"): "only leaf keys are pinned: renew with the spare key",
    ("sibling", "locks_out"): "only leaf keys are pinned: renew with the spare key",
}


class _OutputFormat(click.Choice):
    """``text`` or ``json``; a policy format too, as ``--format`` was ``--policy-format``'s
    first name (kept, with a warning)."""

    def __init__(self) -> None:
        super().__init__(["text", "json"])

    def convert(self, value, param, ctx):  # type: ignore[no-untyped-def]
        if value in SUGGEST_FORMATS:
            return value
        return super().convert(value, param, ctx)


@click.command("suggest")
@click.argument("out", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("-d", "--domain", required=True, help="The domain to pin, e.g. api.example.com.")
@click.option(
    "--policy-format", type=click.Choice(SUGGEST_FORMATS), default=None,
    help="The client format of the file to write.  [default: toml]",
)  # fmt: skip
@click.option(
    "--format", "output", type=_OutputFormat(), default="text", show_default=True,
    help="What the scenarios report is: text on standard error, or one JSON document on "
    "standard output (the file's text in it, unless -o writes it).",
)  # fmt: skip
@click.option(
    "-b", "--backup-key", "backup_keys", multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A spare key, public key or CSR kept offline: its pin is the backup. Repeatable.",
)  # fmt: skip
@click.option("--password", envvar="PINSCAN_PASSWORD", help="Password of encrypted backup keys.")
@options.ca_catalogs()
@click.option(
    "--switch-to", multiple=True, metavar="FAMILY",
    help="A CA family (or issuing CA) the report judges a switch to, besides the families "
    "the scan uses. Repeatable.",
)  # fmt: skip
@click.option(
    "--subdomains/--exact", "include_subdomains", default=None,
    help="Cover the names below the domain too (default: when the scan has any).",
)  # fmt: skip
@click.option(
    "--expires", type=click.DateTime(["%Y-%m-%d"]),
    help="Expiration of the pin-set, where the format has one (default: one year).",
)  # fmt: skip
@click.option(
    "-o", "--output-file", type=click.Path(dir_okay=False, path_type=Path),
    help="Write here (atomically) instead of to standard output.",
)  # fmt: skip
@options.quiet("No warnings and no scenarios report on standard error.")
def suggest_command(
    out: Path,
    domain: str,
    policy_format: str | None,
    output: str,
    backup_keys: tuple[Path, ...],
    password: str | None,
    ca_catalogs: tuple[Path, ...],
    switch_to: tuple[str, ...],
    include_subdomains: bool | None,
    expires: dt.datetime | None,
    output_file: Path | None,
    quiet: bool,
) -> None:
    """Write a pin policy for DOMAIN from what its endpoints serve in the scan in OUT.

    The CA pins come from the CA catalog: the fewest keys that every chain from every sibling
    of today's issuing CA passes (Let's Encrypt's active and backup intermediates, say), so
    that a renewal from any of them passes. The pin-set always has two pins or more, one of
    them a key in no current chain when --backup-key gives one; without, it says which pins it
    chose instead and why that is weaker. The file parses back with pinscan's own reader and
    passes `pinscan check` on the same scan: when no pin-set can (an endpoint whose chain does
    not verify has no CA key to pin), nothing is written and the endpoints are named (exit 2).
    Then every scenario of `pinscan check --scenarios all` is judged on it, and the report
    says which it survives and why it cannot survive the others.
    """
    from pinscan.atomic import atomic_write
    from pinscan.catalog.graph import Catalog
    from pinscan.dataset import open as open_dataset
    from pinscan.policy import load_policies
    from pinscan.policy.suggest import BackupKey, render, suggest
    from pinscan.rotation import analyse
    from pinscan.rotation.suggested import survival

    old_format = output if output in SUGGEST_FORMATS else None
    if old_format:
        if policy_format and old_format != policy_format:
            raise click.UsageError("--format is the old name of --policy-format: give one")
        if not quiet:
            click.echo("pinscan: warning: suggest --format is now --policy-format", err=True)
        output = "text"
    written = policy_format or old_format or "toml"
    secret = password.encode() if password else None
    catalog = Catalog.shipped()
    if ca_catalogs:
        catalog = catalog.with_pems(ca_catalogs)
    dataset = open_dataset(out, verify=True)
    spares = [BackupKey.read(path, secret) for path in backup_keys]
    suggestion, warnings = suggest(
        dataset,
        domain,
        backup_keys=spares,
        include_subdomains=include_subdomains,
        expires=expires.date() if expires else None,
        leaf_only=written == "curl",
        catalog=catalog,
    )
    text = render(dataset, suggestion, written)
    policies = load_policies(text.encode(), written)
    analysis = analyse(
        dataset, policies, "all", catalog=catalog, switch_to=switch_to, backup_keys=spares
    )
    scenarios = survival(analysis)
    if not quiet:
        for warning in warnings:
            click.secho(f"pinscan: warning: {warning}", err=True, fg="yellow", bold=True)
    if output_file is not None:
        atomic_write(output_file, lambda tmp: tmp.write_text(text, encoding="utf-8"))
        if not quiet:
            click.echo(f"pinscan: wrote {output_file}", err=True)
    if output == "json":
        document = _document(suggestion, written, output_file, text, warnings, scenarios)
        click.echo(json.dumps(document, indent=2, default=str))
        return
    if output_file is None:
        click.echo(text, nl=not text.endswith("\n"))
    if not quiet:
        _report(suggestion, scenarios)


def _document(
    suggestion: Suggestion,
    written: str,
    output_file: Path | None,
    text: str,
    warnings: list[str],
    scenarios: pl.DataFrame,
) -> dict[str, Any]:
    """The JSON document: the pin-set, why, and what it survives."""
    rows = scenarios.to_dicts()
    return {
        "domain": suggestion.domain,
        "include_subdomains": suggestion.include_subdomains,
        "policy_format": written,
        "output_file": str(output_file) if output_file else None,
        "expires": suggestion.expires.isoformat() if suggestion.expires else None,
        "pins": [
            {"pin": p.pin.label, "role": p.role, "comment": p.comment} for p in suggestion.pins
        ],
        "coverage": list(suggestion.coverage),
        "warnings": warnings,
        "scenarios": rows,
        "survives": [r["scenario"] for r in rows if r["outcome"] == "survives"],
        "cannot_survive": [r["scenario"] for r in rows if r["outcome"] in _LOST],
        "policy": None if output_file else text,
    }


def _report(suggestion: Suggestion, scenarios: pl.DataFrame) -> None:
    """The scenarios report on standard error: why these pins, then a line per scenario."""
    for note in suggestion.coverage:
        click.echo(f"pinscan: {note}", err=True)
    if scenarios.is_empty():
        click.echo("pinscan: no endpoint has a chain to judge scenarios on", err=True)
        return
    endpoints = int(scenarios["endpoints"].max())
    click.echo(
        f"pinscan: the pin-set for {suggestion.domain} under each rotation scenario "
        f"({endpoints} endpoint{'s' if endpoints != 1 else ''}):",
        err=True,
    )
    width = max(len(s) for s in scenarios["scenario"])
    colours = {"survives": "green", "locks_out": "red", "untrusted": "red"}
    for row in scenarios.iter_rows(named=True):
        outcome = row["outcome"]
        label = click.style(f"{outcome.replace('_', ' '):<10}", fg=colours.get(outcome))
        click.echo(f"  {label} {row['scenario']:<{width}}  {row['detail'] or ''}", err=True)
    failing = scenarios.filter(scenarios["outcome"].is_in(_LOST))
    survived = scenarios.filter(scenarios["outcome"] == "survives").height
    summary = f"pinscan: survives {survived} of {scenarios.height} scenarios"
    if failing.is_empty():
        click.echo(summary, err=True)
        return
    reasons: dict[str, list[str]] = {}
    for r in failing.iter_rows(named=True):
        why = _CANNOT.get((r["kind"], r["outcome"]), r["outcome"].replace("_", " "))
        reasons.setdefault(why, []).append(r["scenario"])
    said = "; ".join(f"{', '.join(names)} ({why})" for why, names in reasons.items())
    click.echo(f"{summary}; not {said}", err=True)
