#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Builds the platform root stores pinscan ships, python/pinscan/catalog/trust_stores.parquet,
from the vendored public data (data/ca-sources.tar.xz, trust_stores_observatory's YAML files and
their certificates/<sha256>.pem).

One row per (store, certificate): the store's name as pinscan calls it, its version and date, the
certificate's SHA-256 and DER, and whether the store lists it as trusted or as blocked (a root it
distrusts: Microsoft's and OpenJDK's lists have them). The parquet's metadata records the source
repository and commit, the tarball's SHA-256, each store's platform, version, date and counts, and
the build date; trust_stores.json beside it is the same metadata, which a scan reads without
pyarrow. The build is deterministic but for that date: rows sorted, certificates checked
against their fingerprints, nothing else that changes between runs, so that a test rebuilds it
and compares (tests/test_trust_stores.py).

    .venv/bin/python scripts/build_trust_stores.py [--check]

Reads YAML with PyYAML (in the development environment through dask): only this script and its
test need it, never pinscan at run time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import io
import json
import re
import sys
import tarfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

import pinscan
from pinscan.atomic import atomic_write
from pinscan.catalog.stores import COLUMNS, FILE, METADATA_KEY

#: pinscan's name of each store -> its list in the sources. Java is OpenJDK's (see the reasons in
#: pinscan/catalog/stores.py); Oracle's list (oracle_java.yaml) is older and not shipped.
SOURCES = {
    "android": "google_aosp.yaml",
    "apple": "apple.yaml",
    "java": "openjdk.yaml",
    "microsoft": "microsoft_windows.yaml",
    "mozilla": "mozilla_nss.yaml",
}
SCHEMA = pa.schema(
    [
        ("store", pa.string()),
        ("store_version", pa.string()),
        ("store_date", pa.date32()),
        ("cert_sha256", pa.string()),
        ("blocked", pa.bool_()),
        ("subject_name", pa.string()),
        ("der", pa.binary()),
    ]
)
assert tuple(SCHEMA.names) == COLUMNS

ROOT = Path(__file__).resolve().parent.parent
TARBALL = ROOT / "data" / "ca-sources.tar.xz"
_PREFIX = "data/trust-stores/"
# The commit of trust_stores_observatory, as data/README.md gives it in the trust-stores section.
_COMMIT = re.compile(
    r"## `trust-stores/`.*?commit\s+`([0-9a-f]{40})`\s+\((\d{4}-\d\d-\d\d)\)", re.S
)


class BuildError(Exception):
    """The sources are not what this script expects."""


def build(tarball: Path = TARBALL, *, built: dt.date | None = None) -> pa.Table:
    """The shipped table, with its metadata, from the vendored tarball."""
    data = tarball.read_bytes()
    files = _members(data)
    readme = files.get("data/README.md", b"").decode()
    found = _COMMIT.search(readme)
    if found is None:
        raise BuildError("data/README.md: no commit for trust-stores/")
    rows: list[dict] = []
    stores: dict[str, dict] = {}
    for store, name in SOURCES.items():
        doc = yaml.safe_load(files[_PREFIX + name])
        version = doc.get("version")
        date = doc["date_fetched"].isoformat()
        counts = {}
        for kind in ("trusted", "blocked"):
            listed = doc.get(f"{kind}_certificates") or []
            expected = doc.get(f"{kind}_certificates_count", len(listed))
            if len(listed) != expected:
                raise BuildError(
                    f"{name}: {len(listed)} {kind} certificates, the file says {expected}"
                )
            without = 0
            for entry in listed:
                fingerprint = entry["fingerprint"].lower()
                der = _certificate(files, fingerprint, name)
                without += der is None
                rows.append(
                    {
                        "store": store,
                        "store_version": version,
                        "store_date": dt.date.fromisoformat(date),
                        "cert_sha256": fingerprint,
                        "blocked": kind == "blocked",
                        "subject_name": entry.get("subject_name"),
                        "der": der,
                    }
                )
            counts[kind] = len(listed)
            if without:
                counts[f"{kind}_without_certificate"] = without
        stores[store] = {
            "file": name,
            "platform": doc["platform"],
            "version": version,
            "date": date,
            "url": doc.get("url"),
            **counts,
        }
    # A trusted root a store also lists as blocked would be ambiguous; no store does that.
    keys = [(r["store"], r["cert_sha256"]) for r in rows]
    if len(set(keys)) != len(keys):
        raise BuildError("a certificate is listed twice in one store")
    rows.sort(key=lambda r: (r["store"], r["blocked"], r["cert_sha256"]))
    meta = {
        "source": {
            "repository": "nabla-c0d3/trust_stores_observatory",
            "commit": found.group(1),
            "date": found.group(2),
            "licence": "MIT (data/trust-stores/LICENSE in the tarball)",
        },
        "tarball_sha256": hashlib.sha256(data).hexdigest(),
        "built": (built or dt.datetime.now(dt.UTC).date()).isoformat(),
        "stores": stores,
    }
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    return table.replace_schema_metadata({METADATA_KEY: json.dumps(meta, sort_keys=True)})


def write(table: pa.Table, path: Path) -> None:
    """One row group, zstd at its strongest, the DER column deduplicated by its dictionary (a root
    several stores trust is stored once)."""

    def fill(tmp: Path) -> None:
        pq.write_table(
            table,
            tmp,
            compression="zstd",
            compression_level=19,
            use_dictionary=["store", "store_version", "der"],
            row_group_size=len(table) or None,
        )

    atomic_write(path, fill)


def _members(data: bytes) -> dict[str, bytes]:
    out = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:xz") as tar:
        for member in tar:
            wanted = member.name == "data/README.md" or member.name.startswith(_PREFIX)
            if wanted and member.isfile():
                extracted = tar.extractfile(member)
                assert extracted is not None
                out[member.name] = extracted.read()
    return out


def _certificate(files: dict[str, bytes], fingerprint: str, listed_in: str) -> bytes | None:
    """The DER of a listed certificate, checked against its fingerprint; None when the sources
    have no PEM for it (19 of OpenJDK's blocked certificates)."""
    pem = files.get(f"{_PREFIX}certificates/{fingerprint}.pem")
    if pem is None:
        return None
    (der,) = pinscan.read_certificates(pem)
    if hashlib.sha256(der).hexdigest() != fingerprint:
        raise BuildError(f"{listed_in}: certificates/{fingerprint}.pem has another fingerprint")
    return der


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tarball", type=Path, default=TARBALL)
    parser.add_argument("--out", type=Path, default=FILE)
    parser.add_argument(
        "--check", action="store_true", help="compare with the shipped file, write nothing"
    )
    args = parser.parse_args(argv)
    table = build(args.tarball)
    if args.check:
        shipped = pq.read_table(args.out)
        beside = json.loads(args.out.with_suffix(".json").read_text(encoding="utf-8"))
        footer = json.loads(shipped.schema.metadata[METADATA_KEY.encode()])
        same = _comparable(shipped) == _comparable(table) and beside == footer
        print(f"{args.out}: {'up to date' if same else 'differs from a fresh build'}")
        return 0 if same else 1
    write(table, args.out)
    about = args.out.with_suffix(".json")
    text = table.schema.metadata[METADATA_KEY.encode()].decode()
    atomic_write(about, lambda tmp: tmp.write_text(text + "\n", encoding="utf-8"))
    print(f"{args.out}: {len(table)} rows, {args.out.stat().st_size:,} bytes; {about}")
    return 0


def _comparable(table: pa.Table) -> tuple[list[dict], dict]:
    """The rows and the metadata but the build date."""
    meta = json.loads(table.schema.metadata[METADATA_KEY.encode()])
    meta.pop("built")
    return table.to_pylist(), meta


if __name__ == "__main__":
    sys.exit(main())
