# SPDX-License-Identifier: Apache-2.0
"""Scan datasets for policy tests, written by pinscan's own dataset writer from real certificates
of the test PKI, without a network: each endpoint says what it presented and what verified."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import pinscan
from pinscan.dataset.writer import DatasetWriter
from pinscan.records import Endpoint

from fleet import pki


@dataclass
class Served:
    """One endpoint: a name, the chain it presents and whether that chain verifies (to the
    test root, which the server does not send)."""

    name: str
    issued: pki.Issued | None
    verified: bool = True
    status: str = "ok"
    sni: str | None = None
    trust_store: str = "ca_bundle"
    extra: list[bytes] = field(default_factory=list)
    #: Each store's answer, as a scan records it: (store, verifies, its path as DER). None: no
    #: store paths, as in a dataset written before pinscan kept them.
    store_paths: list[tuple[str, bool, tuple[bytes, ...]]] | None = None


def write_dataset(directory: Path, served: list[Served]) -> pinscan.ScanDataset:
    writer = DatasetWriter.create(directory, scan_id="test", arguments={}, version="test")
    rows = []
    for line, s in enumerate(served, 1):
        presented = [*s.issued.chain_der, *s.extra] if s.issued else []
        verified = [*s.issued.chain_der, pki.root().der] if s.issued and s.verified else []
        target_id = hashlib.sha256(f"{s.name}\x1f{line}".encode()).hexdigest()[:16]
        rows.append(
            Endpoint(
                target_id=target_id,
                line=line,
                target=s.name,
                host=s.name,
                ip=f"127.0.0.{line % 250 + 1}",
                port=443,
                sni=s.sni,
                status=s.status,
                presented=presented,
                verified_chain=verified,
                verified=bool(verified) if presented else None,
                trust_store=s.trust_store if verified else None,
                store_paths=s.store_paths or [],
            )
        )
    writer.write(rows)
    writer.finish({})
    return pinscan.open(directory)


def pin_of(issued: pki.Issued) -> str:
    return pinscan.spki_pin(issued.der)
