# SPDX-License-Identifier: Apache-2.0
"""Scan datasets whose chains run through the real Let's Encrypt hierarchy: a leaf of the test
PKI under a real intermediate (R10, YE1, ...) and its real root, read from the vendored sources
(data/ca-sources.tar.xz) without pinscan. The evaluator checks no signatures, so the leaf need not
be signed by the intermediate for pins to be judged; the chain a client would build is given."""

from __future__ import annotations

import functools
import hashlib
import ssl
import tarfile
from pathlib import Path

import pinscan
from pinscan.dataset.writer import DatasetWriter
from pinscan.records import Endpoint

from fleet import pki

SOURCES = Path(__file__).resolve().parent.parent / "data" / "ca-sources.tar.xz"
#: Vendored file of each CA by its Let's Encrypt name.
FILES = {
    "ISRG Root X1": "letsencrypt/isrgrootx1.pem",
    "ISRG Root X2": "letsencrypt/isrg-root-x2.pem",
    **{f"R{n}": f"letsencrypt/2024/r{n}.pem" for n in range(10, 15)},
    **{f"E{n}": f"letsencrypt/2024/e{n}.pem" for n in range(5, 10)},
    **{f"YR{n}": f"letsencrypt/gen-y/int-yr{n}.pem" for n in (1, 2, 3)},
    **{f"YE{n}": f"letsencrypt/gen-y/int-ye{n}.pem" for n in (1, 2, 3)},
    "Root YR": "letsencrypt/gen-y/root-yr.pem",
    "Root YR by X1": "letsencrypt/gen-y/root-yr-by-x1.pem",
}


@functools.cache
def der(name: str) -> bytes:
    with tarfile.open(SOURCES) as archive:
        member = archive.extractfile(f"data/{FILES[name]}")
        assert member is not None
        return ssl.PEM_cert_to_DER_cert(member.read().decode("ascii"))


def pin(name: str) -> str:
    return pinscan.spki_pin(der(name))


def write(
    directory: Path,
    hosts: list[tuple[str, pki.Issued, list[str]]],
    *,
    store: str = "android",
) -> pinscan.ScanDataset:
    """One endpoint per (name, leaf, CA names above it, issuer first): each presents its leaf and
    the CAs but the last, and verifies to the last (``store``'s path)."""
    return write_paths(
        directory,
        [(name, [leaf.der, *(der(ca) for ca in above)]) for name, leaf, above in hosts],
        store=store,
    )


def write_paths(
    directory: Path,
    hosts: list[tuple[str, list[bytes]]],
    *,
    store: str = "android",
    host: str | None = None,
) -> pinscan.ScanDataset:
    """One endpoint per (name, verified path as DER, leaf first, root last); the server
    presents all but the root. ``host`` names every endpoint's host (the name is then only its
    target): many chains of one site."""
    writer = DatasetWriter.create(directory, scan_id="le", arguments={}, version="test")
    rows = []
    for line, (name, path) in enumerate(hosts, 1):
        rows.append(
            Endpoint(
                target_id=hashlib.sha256(f"{name}\x1f{line}".encode()).hexdigest()[:16],
                line=line,
                target=name,
                host=host or name,
                ip=f"127.0.0.{line % 250 + 1}",
                port=443,
                sni=None,
                status="ok",
                presented=path[:-1],
                verified_chain=path,
                verified=True,
                trust_store=store,
                store_paths=[],
            )
        )
    writer.write(rows)
    writer.finish({})
    return pinscan.open(directory)
