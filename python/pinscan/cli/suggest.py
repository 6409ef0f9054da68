# SPDX-License-Identifier: Apache-2.0
"""``pinscan suggest OUT --domain D --policy-format FMT``: a complete policy file with a safe
pin-set, proven to pass ``pinscan check`` on the same scan before it is written."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from pinscan.cli import options

# The dataset and the policy code (polars) are imported in the command, so that
# `pinscan suggest --help` starts fast (lazy for start-up time).

# What --policy-format accepts: pinscan.policy.SUGGEST_FORMATS, restated for the same reason
# (tests/test_cli_start.py checks it is still the library's).
SUGGEST_FORMATS = ("android", "ios", "trustkit", "okhttp", "hpkp", "curl", "toml")


@click.command("suggest")
@click.argument("out", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("-d", "--domain", required=True, help="The domain to pin, e.g. api.example.com.")
@click.option(
    "--policy-format", type=click.Choice(SUGGEST_FORMATS), default=None,
    help="The client format of the file to write.  [default: toml]",
)  # fmt: skip
@click.option(
    # Its first name: every other command's --format says text or json.
    "--format", "old_format", type=click.Choice(SUGGEST_FORMATS), hidden=True,
)  # fmt: skip
@click.option(
    "-b", "--backup-key", "backup_keys", multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A spare key, public key or CSR kept offline: its pin is the backup. Repeatable.",
)  # fmt: skip
@click.option("--password", envvar="PINSCAN_PASSWORD", help="Password of encrypted backup keys.")
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
@options.quiet("No warnings on standard error.")
def suggest_command(
    out: Path,
    domain: str,
    policy_format: str | None,
    old_format: str | None,
    backup_keys: tuple[Path, ...],
    password: str | None,
    include_subdomains: bool | None,
    expires: dt.datetime | None,
    output_file: Path | None,
    quiet: bool,
) -> None:
    """Write a pin policy for DOMAIN from what its endpoints serve in the scan in OUT.

    The pin-set always has two pins or more, one of them a key in no current chain when
    --backup-key gives one; without, it says which pins it chose instead and why that is weaker.
    The file parses back with pinscan's own reader and passes `pinscan check` on the same scan:
    when no pin-set can (an endpoint whose chain does not verify has no CA key to pin), nothing
    is written and the endpoints are named (exit 2).
    """
    from pinscan.atomic import atomic_write
    from pinscan.dataset import open as open_dataset
    from pinscan.policy.suggest import BackupKey, render, suggest

    if old_format and policy_format and old_format != policy_format:
        raise click.UsageError("--format is the old name of --policy-format: give one")
    if old_format and not quiet:
        click.echo("pinscan: warning: suggest --format is now --policy-format", err=True)
    output = policy_format or old_format or "toml"
    secret = password.encode() if password else None
    dataset = open_dataset(out, verify=True)
    suggestion, warnings = suggest(
        dataset,
        domain,
        backup_keys=[BackupKey.read(path, secret) for path in backup_keys],
        include_subdomains=include_subdomains,
        expires=expires.date() if expires else None,
        leaf_only=output == "curl",
    )
    text = render(dataset, suggestion, output)
    if not quiet:
        for warning in warnings:
            click.secho(f"pinscan: warning: {warning}", err=True, fg="yellow", bold=True)
    if output_file is None:
        click.echo(text, nl=not text.endswith("\n"))
    else:
        atomic_write(output_file, lambda tmp: tmp.write_text(text, encoding="utf-8"))
        if not quiet:
            click.echo(f"pinscan: wrote {output_file}", err=True)
