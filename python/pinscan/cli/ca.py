# SPDX-License-Identifier: Apache-2.0
"""``pinscan ca QUERY``: a CA's family from the catalog (siblings, parents, roots and the stores
that trust them), or the CAs in a scan's chains.

Exit 0 when the query found something, 2 when it matches nothing or cannot be read.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from pinscan.cli import options
from pinscan.errors import InputError

# polars, rich and the catalog are imported in the functions that use them, so that
# `pinscan ca --help` starts fast (lazy for start-up time).
if TYPE_CHECKING:
    import polars as pl
    from rich.console import Console

    from pinscan.catalog.graph import Catalog


@click.command("ca")
@click.argument("query")
@options.ca_catalogs()
@options.as_of("Say which CAs are valid at this moment instead of now.")
@click.option(
    "--limit", type=click.IntRange(0), default=10, show_default=True,
    help="CAs shown when a name matches many, and a root's CAs shown (0: all).",
)  # fmt: skip
@options.output_format()
def ca_command(
    query: str,
    ca_catalogs: tuple[Path, ...],
    as_of: dt.datetime | None,
    limit: int,
    output: str,
) -> None:
    """Print the family of the CA QUERY names, or the CAs in the chains of the scan QUERY.

    QUERY is a CA's name (its common name, else a part of its subject or owner; any case), a
    pin (sha256/... or bare base64), a certificate's SHA-256 fingerprint (hex), or a scan (a
    dataset directory, a history, HISTORY@SCAN_ID). A family is the CA's siblings (the valid
    CAs under the same issuing key that may issue TLS server certificates; for Let's Encrypt,
    the intermediates it issues from), its parents, and its roots with the stores that trust
    them. For a scan: every intermediate and root its chains hold, with how many endpoints.
    Exits 2 when QUERY matches nothing.
    """
    from pinscan.catalog.graph import Catalog

    catalog = Catalog.shipped()
    if ca_catalogs:
        catalog = catalog.with_pems(ca_catalogs)
    moment = as_of or dt.datetime.now(dt.UTC)
    if not query.strip():
        raise click.BadParameter("an empty query names no CA", param_hint="QUERY")
    if _is_scan(query):
        _print_issuers(catalog, query, output)
        return
    found = catalog.lookup(query)
    if found.is_empty():
        raise InputError("ca", _nothing(query))
    shown = found if limit == 0 else found.head(limit)
    families = [_family(catalog, row, moment, limit) for row in shown.iter_rows(named=True)]
    if output == "json":
        document = {
            "query": query,
            "as_of": moment,
            "matches": found.height,
            "cas": families,
        }
        click.echo(json.dumps(document, indent=2, default=_json))
        return
    _print_families(families, found.height, moment)


def _is_scan(query: str) -> bool:
    """A path that exists, or HISTORY@SCAN whose history exists, is a scan."""
    base, at, _ = query.rpartition("@")
    return Path(query).exists() or (bool(at) and bool(base) and Path(base).is_dir())


def _nothing(query: str) -> str:
    from pinscan.catalog.graph import parse_query

    kind, _ = parse_query(query.strip())
    what = {
        "pin": "no CA in the catalog has the pin",
        "fingerprint": "no certificate in the catalog has the fingerprint",
        "name": "no CA in the catalog matches the name",
    }[kind]
    return (
        f"{what} {query!r} (a private CA? give its certificates with --ca-catalog; a scan? "
        "no such directory)"
    )


def _family(catalog: Catalog, ca: dict[str, Any], moment: dt.datetime, limit: int) -> dict:
    pin = ca["spki_sha256"]
    family: dict[str, Any] = {
        "ca": ca,
        "parents": catalog.parents(pin, moment).to_dicts(),
        "siblings": catalog.siblings(pin, moment).to_dicts(),
        "roots": catalog.roots(pin, moment).to_dicts(),
    }
    if ca["is_root"]:
        children = catalog.children(pin, moment).filter("valid")
        family["children"] = (children if limit == 0 else children.head(limit)).to_dicts()
        family["valid_children"] = children.height
    return family


def _print_families(families: list[dict], matches: int, moment: dt.datetime) -> None:
    from pinscan.report.terminal import new_console

    console = new_console()
    for number, family in enumerate(families):
        if number:
            console.print()
        _print_family(console, family, moment)
    if matches > len(families):
        more = matches - len(families)
        console.print(f"\n... {more} more CAs match (a longer name, a pin, or --limit 0)")


def _print_family(console: Console, family: dict, moment: dt.datetime) -> None:
    from rich.table import Table

    from pinscan.report.terminal import print_table

    ca = family["ca"]
    day = moment.date().isoformat()
    console.print(f"[bold]{ca['name']}[/]  sha256/{ca['spki_sha256']}")
    facts = [
        ("subject", ca["subject"]),
        ("owner", ca["owner"] or "unknown"),
        ("key", " ".join(str(v) for v in (ca["key_type"], ca["key_bits"], ca["curve"]) if v)),
        ("valid", f"{_day(ca['not_before'])} to {_day(ca['not_after'])}"),
        ("role", _role(ca)),
    ]
    if ca["le_status"]:
        facts.append(("Let's Encrypt", f"{ca['le_name']}: {ca['le_status']}"))
    if ca["trusted_by"]:
        facts.append(("trusted by", ", ".join(ca["trusted_by"])))
    if ca["distrusted_by"]:
        facts.append(("distrusted by", ", ".join(ca["distrusted_by"])))
    facts.append(("certificates", "\n".join(ca["certificates"])))
    width = max(len(name) for name, _ in facts)
    for name, value in facts:
        lines = value.splitlines() or [""]
        console.print(f"  {name:<{width}}  {lines[0]}")
        for line in lines[1:]:
            console.print(f"  {'':<{width}}  {line}")

    def table(title: str, columns: list[str], rows: list[list[str]]) -> None:
        if not rows:
            return
        out = Table(title=title, title_justify="left")
        for column in columns:
            out.add_column(column, overflow="fold")
        for row in rows:
            out.add_row(*row)
        print_table(console, out)

    table(
        "parents (issuing keys)",
        ["name", "pin", "valid until", f"valid {day}"],
        [
            [p["name"], f"sha256/{p['spki_sha256']}", _day(p["valid_until"]), _yes(p["valid"])]
            for p in family["parents"]
        ],
    )
    if not ca["is_root"]:
        table(
            f"siblings on {day} (where its next certificate may come from)",
            ["name", "pin", "status", "valid until", ""],
            [
                [
                    s["name"],
                    f"sha256/{s['spki_sha256']}",
                    s["le_status"] or "",
                    _day(s["valid_until"]),
                    "this CA" if s["is_self"] else "",
                ]
                for s in family["siblings"]
            ],
        )
    else:
        children = family["children"]
        more = family["valid_children"] - len(children)
        table(
            f"CAs it signs, valid on {day}" + (f" ({more} more: --limit 0)" if more else ""),
            ["name", "pin", "owner", "valid until", "issues TLS"],
            [
                [
                    c["name"],
                    f"sha256/{c['spki_sha256']}",
                    c["owner"] or "",
                    _day(c["valid_until"]),
                    _yes(c["can_issue_tls"]),
                ]
                for c in children
            ],
        )
    table(
        "roots",
        ["name", "pin", "hops", f"valid {day}", "trusted by"],
        [
            [
                r["name"],
                f"sha256/{r['spki_sha256']}",
                str(r["hops"]),
                _yes(r["valid"]),
                ", ".join(r["trusted_by"]) or "no store",
            ]
            for r in family["roots"]
        ],
    )
    if not family["roots"]:
        console.print("  roots: none in the catalog")


def _print_issuers(catalog: Catalog, spec: str, output: str) -> None:
    import polars as pl

    from pinscan.dataset import select

    dataset = select(spec, verify=True)
    columns = ["endpoint_id", "position", "spki_sha256", "subject", "issuer"]
    served = pl.concat(
        [dataset.served(source).select(columns).collect() for source in ("presented", "verified")]
    )
    issuers = catalog.issuers(served)
    if output == "json":
        document = {
            "scan": str(dataset.path),
            "scan_id": dataset.meta.get("scan_id"),
            "issuers": issuers.to_dicts(),
        }
        click.echo(json.dumps(document, indent=2, default=_json))
        return
    _print_issuer_table(issuers, dataset.path, dataset.meta.get("scan_id"))


def _print_issuer_table(issuers: pl.DataFrame, path: Path, scan_id: str | None) -> None:
    from rich.table import Table

    from pinscan.report.terminal import new_console, print_table

    console = new_console()
    title = f"CAs in the chains of {path}" + (f" (scan {scan_id})" if scan_id else "")
    if issuers.is_empty():
        console.print(f"{title}: none (no chain holds a certificate above its leaf)")
        return
    table = Table(title=title, title_justify="left")
    for column in ("endpoints", "role", "name", "pin", "owner", "status"):
        table.add_column(
            column, overflow="fold", justify="right" if column == "endpoints" else "left"
        )
    for row in issuers.iter_rows(named=True):
        status = row["le_status"] or ("" if row["in_catalog"] else "not in the catalog")
        table.add_row(
            str(row["endpoints"]),
            row["role"],
            row["name"] or "",
            f"sha256/{row['spki_sha256']}",
            row["owner"] or "",
            status,
        )
    print_table(console, table)


def _role(ca: dict[str, Any]) -> str:
    if ca["is_root"]:
        return "root (self-signed)"
    if ca["can_issue_tls"] is None:
        return "intermediate; its EKU cannot be read"
    may = "may" if ca["can_issue_tls"] else "may not (its EKU)"
    return f"intermediate; {may} issue TLS server certificates"


def _day(value: dt.datetime | None) -> str:
    return value.date().isoformat() if value is not None else "?"


def _yes(value: bool | None) -> str:
    return {True: "yes", False: "no", None: "?"}[value]


def _json(value: object) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    msg = f"cannot write {type(value).__name__} as JSON"
    raise TypeError(msg)


__all__ = ["ca_command"]
