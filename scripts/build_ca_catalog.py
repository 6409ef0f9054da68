#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Builds the CA catalog pinscan ships (python/pinscan/catalog/ca_catalog.parquet) from the
public CA data: data/ca-sources.tar.xz, or a directory holding its data/ (such as ../shared).

    .venv/bin/python scripts/build_ca_catalog.py [SOURCE] [-o OUT]     (or: make catalog)

One row per CA certificate: every one disclosed to the CCADB (2012-2026), Let's Encrypt's
production hierarchy (its staging hierarchy and the OCSP responder are left out), and every
certificate of the platform root stores. The rows are derived by pinscan.catalog.derive, as a
PEM bundle given to `--ca-catalog` is; this script adds what only the sources say: Let's
Encrypt's names and statuses (its certificates.md), the certificates it lists as revoked, and
which stores trust or block each certificate (trust_stores_observatory's YAML files).

The output is deterministic: sorted rows, and metadata that depends only on the sources except
`built` (the date, SOURCE_DATE_EPOCH if set) and `builder`.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import hashlib
import json
import os
import re
import sys
import tarfile
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import polars as pl

import pinscan
from pinscan.catalog import derive
from pinscan.catalog.graph import METADATA_KEY, SHIPPED
from pinscan.certs.keys import read_certificates
from pinscan.certs.pem import read_pem

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = ROOT / "data" / "ca-sources.tar.xz"
#: The catalog's layout version: bumped when its columns or their meaning change.
FORMAT = 1

#: trust_stores_observatory's file -> the platform name the catalog uses. OpenJDK is Java's
#: store (Oracle's file, JDK 13 of 2020, is older and not used); its certificates are still rows.
STORE_FILES = {
    "google_aosp.yaml": "android",
    "apple.yaml": "apple",
    "openjdk.yaml": "java",
    "microsoft_windows.yaml": "microsoft",
    "mozilla_nss.yaml": "mozilla",
}
assert sorted(STORE_FILES.values()) == list(derive.STORES)

#: certificates.md's sections -> le_status.
LE_SECTIONS = {
    "Root CAs": "root",
    "Subordinate (Intermediate) CAs": "active",
    "Backup": "backup",
    "Retired": "retired",
    "Expired": "expired",
}


class SourceError(Exception):
    """The sources are not what this script reads: it stops rather than ship a partial catalog."""


@contextlib.contextmanager
def opened(source: Path) -> Iterator[Path]:
    """The data/ directory of a tarball (extracted to a temporary directory) or a directory."""
    if source.is_dir():
        data = source / "data" if (source / "data").is_dir() else source
        yield data
        return
    with tempfile.TemporaryDirectory(prefix="pinscan-ca-sources-") as tmp:
        with tarfile.open(source) as archive:
            archive.extractall(tmp, filter="data")
        yield Path(tmp) / "data"


def commits(readme: str) -> dict[str, dict[str, str]]:
    """Each source's repository, commit and date, from the data's README.md."""
    found = {}
    for section, name in (("ccadb/", "ccadb"), ("letsencrypt/", "letsencrypt"),
                          ("trust-stores/", "trust_stores")):  # fmt: skip
        part = readme.split(f"## `{section}`", 1)
        if len(part) != 2:
            raise SourceError(f"README.md: no section for {section}")
        match = re.search(
            r"repository `([^`]+)`,\s+commit\s+`([0-9a-f]{40})`(?:\s+\((\d{4}-\d{2}-\d{2})\))?",
            part[1].split("\n## ", 1)[0],
        )
        if match is None:
            raise SourceError(f"README.md: no repository and commit for {section}")
        repository, commit, date = match.groups()
        found[name] = {"repository": repository, "commit": commit}
        if date:
            found[name]["date"] = date
    return found


def ccadb(directory: Path) -> list[bytes]:
    """Every certificate of the CCADB CSV files, each checked against its listed fingerprint."""
    csv.field_size_limit(1 << 24)
    ders = []
    files = sorted(directory.glob("AllCertificatePEMsCSVFormat_NotBeforeYear_*.csv"))
    if not files:
        raise SourceError(f"{directory}: no CCADB CSV file")
    for path in files:
        with path.open(newline="", encoding="utf-8") as handle:
            for line, row in enumerate(csv.DictReader(handle), start=2):
                blocks = read_pem(row["X.509 Certificate (PEM)"].encode(), f"{path}:{line}")
                if len(blocks) != 1 or blocks[0].label != "CERTIFICATE":
                    raise SourceError(f"{path}:{line}: not one certificate")
                fingerprint = hashlib.sha256(blocks[0].der).hexdigest()
                if fingerprint != row["SHA-256 Fingerprint"].lower():
                    raise SourceError(f"{path}:{line}: the PEM is not the listed fingerprint")
                ders.append(blocks[0].der)
    return ders


def letsencrypt(directory: Path) -> tuple[dict[str, list[bytes]], list[bytes], str]:
    """Let's Encrypt's production certificates by file (relative path), the ones it revoked, and
    certificates.md's lastmod."""
    files: dict[str, list[bytes]] = {}
    revoked: list[bytes] = []
    for path in sorted(directory.rglob("*.pem")):
        relative = path.relative_to(directory).as_posix()
        if relative.startswith("staging/") or path.name.startswith("fakele"):
            continue  # the staging hierarchy: trusted nowhere, issues nothing a client trusts
        ders = read_certificates(path)
        if relative.startswith("revoked/"):
            revoked += ders
        files[relative] = ders
    page = (directory / "certificates.md").read_text(encoding="utf-8")
    lastmod = re.search(r"^lastmod: (\S+)$", page, re.MULTILINE)
    if lastmod is None:
        raise SourceError("letsencrypt/certificates.md: no lastmod")
    return files, revoked, lastmod.group(1)


def le_entries(page: str) -> list[tuple[str, str, list[str]]]:
    """(name, status, PEM files) of every CA on Let's Encrypt's certificates page."""
    entries: list[tuple[str, str, list[str]]] = []
    status = None
    for line in page.splitlines():
        heading = re.match(r"^# (.+?)\s*$", line) or re.match(r"^<summary>(.+)</summary>", line)
        if heading:
            status = LE_SECTIONS.get(heading.group(1))
            continue
        entry = re.match(r"^\* \*\*(.+)\*\*\s*$", line)
        if entry and status is not None:
            entries.append((entry.group(1), status, []))
        elif entries and status is not None:
            entries[-1][2].extend(re.findall(r"\[pem\]\(/certs/([^)]+\.pem)\)", line))
    statuses = {status for _, status, _ in entries}
    if statuses != set(LE_SECTIONS.values()) or any(not files for _, _, files in entries):
        raise SourceError("letsencrypt/certificates.md: not the sections and CAs expected")
    return entries


def stores(
    directory: Path,
) -> tuple[dict[str, dict[str, object]], dict[str, set[str]], dict[str, set[str]]]:
    """Each store's metadata, and the stores that trust and that block each fingerprint."""
    info: dict[str, dict[str, object]] = {}
    trusted: dict[str, set[str]] = defaultdict(set)
    blocked: dict[str, set[str]] = defaultdict(set)
    for file, platform in STORE_FILES.items():
        fields, lists = read_store(directory / file)
        for fingerprint in lists["trusted_certificates"]:
            trusted[fingerprint].add(platform)
        for fingerprint in lists.get("blocked_certificates", []):
            blocked[fingerprint].add(platform)
        info[platform] = {
            "file": file,
            "platform": fields["platform"],
            "version": fields["version"],
            "url": fields["url"],
            "date_fetched": fields["date_fetched"],
            "trusted": len(lists["trusted_certificates"]),
            "blocked": len(lists.get("blocked_certificates", [])),
        }
    return info, trusted, blocked


def read_store(path: Path) -> tuple[dict[str, str | None], dict[str, list[str]]]:
    """A trust_stores_observatory YAML file: its scalar fields, and its lists of fingerprints
    (each checked against the file's own count). Only this file layout is read."""
    fields: dict[str, str | None] = {}
    lists: dict[str, list[str]] = {}
    current = None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        top = re.match(r"^(\w+):\s*(.*?)\s*$", line)
        if top:
            key, value = top.groups()
            if value:
                fields[key] = None if value == "null" else value.strip("'\"")
                current = None
            else:
                current = lists.setdefault(key, [])
            continue
        fingerprint = re.match(r"^\s+fingerprint:\s*([0-9a-fA-F]{64})\s*$", line)
        if fingerprint:
            if current is None:
                raise SourceError(f"{path}:{number}: a fingerprint outside a list")
            current.append(fingerprint.group(1).lower())
    for key, values in lists.items():
        count = fields.get(key.replace("_certificates", "_certificates_count"))
        if count is None or int(count) != len(values):
            raise SourceError(f"{path}: {key} lists {len(values)}, its count says {count}")
    if "trusted_certificates" not in lists:
        raise SourceError(f"{path}: no trusted_certificates")
    return fields, lists


def build(source: Path) -> tuple[pl.DataFrame, dict[str, object]]:
    """The catalog and its metadata (without `built` and `builder`)."""
    with opened(source) as data:
        meta_sources = commits((data / "README.md").read_text(encoding="utf-8"))
        public = ccadb(data / "ccadb")
        le_files, le_revoked, lastmod = letsencrypt(data / "letsencrypt")
        entries = le_entries((data / "letsencrypt" / "certificates.md").read_text("utf-8"))
        store_info, trusted, blocked = stores(data / "trust-stores")
        store_ders = [
            der
            for path in sorted((data / "trust-stores" / "certificates").glob("*.pem"))
            for der in read_certificates(path)
        ]
    le_ders = [der for ders in le_files.values() for der in ders]
    origin: dict[str, set[str]] = defaultdict(set)
    for name, ders in (("ccadb", public), ("letsencrypt", le_ders), ("trust_stores", store_ders)):
        for der in ders:
            origin[hashlib.sha256(der).hexdigest()].add(name)
    rows = derive.certificate_rows([*public, *le_ders, *store_ders], "ccadb")

    # Let's Encrypt's page by certificate; its keys' certificates found elsewhere (the CCADB)
    # take the first entry of their key (Authority X1 and X3 share one key).
    pins = dict(rows.select("cert_sha256", "spki_sha256").rows())
    le: dict[str, tuple[str, str]] = {}
    le_keys: dict[str, tuple[str, str]] = {}
    for name, status, files in entries:
        missing = [f for f in files if f not in le_files]
        if missing:
            raise SourceError(f"letsencrypt/certificates.md: {name}: no file {missing}")
        fingerprints = {hashlib.sha256(d).hexdigest() for f in files for d in le_files[f]}
        keys = {pins[fp] for fp in fingerprints}
        if len(keys) != 1:
            raise SourceError(f"letsencrypt/certificates.md: {name}: {len(keys)} keys, not one")
        le.update(dict.fromkeys(fingerprints, (name, status)))
        le_keys.setdefault(keys.pop(), (name, status))

    catalog = derive.finish(
        derive.with_annotations(
            rows,
            le=le,
            le_keys=le_keys,
            revoked=[hashlib.sha256(d).hexdigest() for d in le_revoked],
            trusted=trusted,
            distrusted=blocked,
            sources=origin,
        )
    )
    meta_sources["letsencrypt"]["certificates_md_lastmod"] = lastmod
    meta: dict[str, object] = {
        "format": FORMAT,
        "rows": catalog.height,
        "sources": meta_sources,
        "stores": store_info,
    }
    return catalog, meta


def built_on() -> str:
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    moment = dt.datetime.fromtimestamp(int(epoch), dt.UTC) if epoch else dt.datetime.now(dt.UTC)
    return moment.date().isoformat()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "source",
        nargs="?",
        type=Path,
        default=DEFAULT_SOURCE,
        help="the tarball, or a directory with data/ (default: %(default)s)",
    )
    parser.add_argument("-o", "--output", type=Path, default=SHIPPED,
                        help="where to write the catalog (default: %(default)s)")  # fmt: skip
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        catalog, meta = build(args.source)
    except (SourceError, OSError, pinscan.PinscanError) as exc:
        print(f"build_ca_catalog: {exc}", file=sys.stderr)
        return 2
    meta = {
        **meta,
        "built": built_on(),
        "builder": {"script": "scripts/build_ca_catalog.py", "pinscan": pinscan.__version__},
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    temporary = args.output.with_name(f".{args.output.name}.tmp")
    catalog.write_parquet(
        temporary,
        compression="zstd",
        compression_level=19,
        statistics=False,
        metadata={METADATA_KEY: json.dumps(meta, sort_keys=True)},
    )
    temporary.replace(args.output)
    seconds = time.perf_counter() - started
    size = args.output.stat().st_size
    print(f"{args.output}: {catalog.height} certificates, {size:,} bytes, in {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
