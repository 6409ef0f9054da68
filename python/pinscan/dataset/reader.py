# SPDX-License-Identifier: Apache-2.0
"""Reads a scan dataset back as polars LazyFrames: what notebooks and other tools use."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from pinscan.dataset.schema import (
    CERTIFICATES,
    CHAINS,
    CHAINS_SCHEMA,
    ENDPOINTS,
    ENDPOINTS_SCHEMA,
    PIN_RESULTS,
    PIN_RESULTS_SCHEMA,
    certificates_schema,
)
from pinscan.dataset.writer import _parts, read_meta


@dataclass(frozen=True)
class ScanDataset:
    """A scan written by ``pinscan scan``: ``endpoints``, ``chains`` and ``certificates`` as lazy
    frames (nothing is read until ``collect()``), ``pin_results`` (the verdicts of
    ``scan --policy``; empty without one), and ``meta``, the contents of ``scan.json``."""

    path: Path
    meta: dict[str, Any]
    endpoints: pl.LazyFrame
    chains: pl.LazyFrame
    certificates: pl.LazyFrame
    pin_results: pl.LazyFrame

    def served(self, source: str = "presented") -> pl.LazyFrame:
        """Endpoint x chain position x certificate: one row per certificate in each endpoint's
        ``presented`` (or ``verified``) chain, with the endpoint's and the certificate's columns.
        """
        certs = self.certificates.drop("der", "scan_id")
        return (
            self.endpoints.drop("spki_sha256")
            .join(self.chains.filter(pl.col("source") == source).drop("scan_id"), "endpoint_id")
            .join(certs, "cert_sha256", how="left")
            .sort("endpoint_id", "position")
        )

    def __repr__(self) -> str:
        state = "complete" if self.meta.get("complete") else "incomplete"
        return f"<ScanDataset {str(self.path)!r} scan_id={self.meta.get('scan_id')} {state}>"


def open(path: str | os.PathLike[str]) -> ScanDataset:
    """Open a dataset written by ``pinscan scan``.

    Examples
    --------
    >>> ds = pinscan.open("out")  # doctest: +SKIP
    >>> ds.endpoints.group_by("status").len().collect()  # doctest: +SKIP
    """
    root = Path(path)
    meta = read_meta(root)
    return ScanDataset(
        path=root,
        meta=meta,
        endpoints=_scan(root / ENDPOINTS, ENDPOINTS_SCHEMA),
        chains=_scan(root / CHAINS, CHAINS_SCHEMA),
        certificates=_scan(root / CERTIFICATES, certificates_schema()),
        pin_results=_scan(root / PIN_RESULTS, PIN_RESULTS_SCHEMA),
    )


def _scan(directory: Path, schema: pl.Schema) -> pl.LazyFrame:
    parts = _parts(directory)
    if not parts:
        return pl.LazyFrame(schema=schema)
    return pl.scan_parquet(parts, schema=schema)
