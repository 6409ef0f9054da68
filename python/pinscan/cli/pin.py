# SPDX-License-Identifier: Apache-2.0
"""``pinscan pin FILE...``: the SPKI pins of local certificates, public keys, CSRs and keys."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from click.core import ParameterSource

from pinscan.cli import exits, options
from pinscan.errors import InputError

# The certificate code (cryptography, polars) is imported in the functions that use it, so that
# `pinscan pin --help` starts fast (lazy for start-up time).
if TYPE_CHECKING:
    from pinscan.certs.keys import Item


@click.command()
# A path type (no checks: each file is read, and reported, on its own) so that shells complete it.
@click.argument("files", nargs=-1, required=True, metavar="FILE...", type=click.Path())
@options.output_format("One line per object, or one JSON array with every certificate field.")
@click.option("--sha1", is_flag=True, help="Also print the legacy OkHttp sha1/ pin.")
@click.option(
    "--password",
    envvar="PINSCAN_PASSWORD",
    show_envvar=True,
    help="Password of encrypted private keys.",
)
@click.option(
    "--password-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Read the password of encrypted private keys from the first line of this file.",
)
@options.quiet("No warnings about damaged certificates.")
@click.pass_context
def pin(
    ctx: click.Context,
    files: tuple[str, ...],
    output: str,
    sha1: bool,
    password: str | None,
    password_file: Path | None,
    quiet: bool,
) -> None:
    """Print the pin of every certificate, public key, CSR and private key in FILE...

    FILE is a PEM file of any number of blocks or one DER object; - reads standard input.
    Certificates are pinned by the SubjectPublicKeyInfo exactly as encoded. Exits 2 if any FILE
    could not be read or pinned, after reporting all the others.
    """
    from pinscan.certs.keys import csr_subject, read_items, read_path, spki_pin
    from pinscan.certs.table import certificates

    secret = _password(ctx, password, password_file)
    failed = False
    items: list[Item] = []
    for name in files:
        try:
            if name == "-":
                with click.open_file("-", "rb") as stdin:
                    data, source = stdin.read(), "<stdin>"
            else:
                data, source = read_path(name), name
            items += read_items(data, source, password=secret)
        except InputError as exc:
            _complain(str(exc))
            failed = True

    records = []
    # One call for every certificate of every file: the core parses them in parallel.
    table = certificates([item.der for item in items if item.kind == "certificate"], sha1=sha1)
    rows = table.iter_rows(named=True)
    for item in items:
        if item.kind == "certificate":
            row = next(rows)
            if row["spki_sha256"] is None:
                _complain(f"{item.source}: {row['error']}")
                failed = True
                continue
            if row["error"] is not None and not quiet:
                _complain(f"{item.source}: warning: {row['error']}")
        else:
            row = dict.fromkeys(table.columns)
            row["spki_sha256"] = spki_pin(item.spki)
            if sha1:
                row["spki_sha1"] = spki_pin(item.spki, algorithm="sha1")
            if item.kind == "csr":
                row["subject"] = csr_subject(item.der)
        records.append({"source": item.source, "kind": item.kind, **row})

    if output == "json":
        click.echo(json.dumps(records, indent=2, default=_iso8601))
    elif records:
        click.echo("\n".join(_line(record, sha1=sha1) for record in records))
    if failed:
        ctx.exit(exits.ERROR)


def _password(ctx: click.Context, password: str | None, path: Path | None) -> bytes | None:
    """The password: ``--password`` or ``PINSCAN_PASSWORD``, or the first line of a file."""
    from pinscan.certs.keys import read_path

    if path is None:
        return password.encode("utf-8") if password is not None else None
    if ctx.get_parameter_source("password") is ParameterSource.COMMANDLINE:
        msg = "give --password or --password-file, not both"
        raise click.UsageError(msg, ctx)
    try:
        lines = read_path(path).splitlines()
    except InputError as exc:
        raise click.BadParameter(str(exc), ctx, param_hint="--password-file") from None
    return lines[0] if lines else b""


def _line(record: dict[str, Any], *, sha1: bool) -> str:
    """``sha256/<pin>  [sha1/<pin>  ]<subject>  <source>``; ``-`` for a key's subject."""
    pins = [f"sha256/{record['spki_sha256']}"]
    if sha1:
        pins.append(f"sha1/{record['spki_sha1']}")
    return "  ".join([*pins, record["subject"] or "-", record["source"]])


def _iso8601(value: object) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    msg = f"cannot write {type(value).__name__} as JSON"
    raise TypeError(msg)


def _complain(message: str) -> None:
    click.echo(f"pinscan: {message}", err=True)
