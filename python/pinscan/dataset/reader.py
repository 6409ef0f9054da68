# SPDX-License-Identifier: Apache-2.0
"""Reads a scan dataset, or scans of a history, back as polars LazyFrames: what notebooks and
other tools use."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from pinscan import shard as sharding
from pinscan.dataset import history as hist
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
from pinscan.errors import DatasetError

#: Which scans of a history to read: "latest" (or None), "all", a scan id, a list of scan ids,
#: or a negative index (-1 the latest, -2 the one before).
Scans = str | int | Sequence[str] | None


@dataclass(frozen=True)
class ScanDataset:
    """A scan written by ``pinscan scan``, or scans of a history: ``endpoints``, ``chains`` and
    ``certificates`` as lazy frames (nothing is read until ``collect()``), ``pin_results`` (the
    verdicts of ``scan --policy``; empty without one), ``meta``, the contents of ``scan.json``
    (of the latest scan read, for several), and ``scans``, one row per scan read.

    Frames read from a history also have ``scan_date`` and ``scan_id`` (from the partition); with
    several scans, join on ``scan_id`` as well as on the ids, as :meth:`served` does.
    """

    path: Path
    meta: dict[str, Any]
    endpoints: pl.LazyFrame
    chains: pl.LazyFrame
    certificates: pl.LazyFrame
    pin_results: pl.LazyFrame
    scans: pl.DataFrame

    def served(self, source: str = "presented") -> pl.LazyFrame:
        """Endpoint x chain position x certificate: one row per certificate in each endpoint's
        ``presented`` (or ``verified``) chain, with the endpoint's and the certificate's columns.
        """
        # Every scan writes the certificates it saw, so scan_id keeps scans of a history apart.
        certs = self.certificates.drop("der", "scan_date", strict=False)
        chains = self.chains.filter(pl.col("source") == source).drop("scan_date", strict=False)
        return (
            self.endpoints.drop("spki_sha256")
            .join(chains, ["endpoint_id", "scan_id"])
            .join(certs, ["cert_sha256", "scan_id"], how="left")
            .sort("scan_id", "endpoint_id", "position")
        )

    def __repr__(self) -> str:
        if self.scans.height > 1:
            return f"<ScanDataset {str(self.path)!r} {self.scans.height} scans>"
        state = "complete" if self.meta.get("complete") else "incomplete"
        return f"<ScanDataset {str(self.path)!r} scan_id={self.meta.get('scan_id')} {state}>"


def open(path: str | os.PathLike[str], scans: Scans = None) -> ScanDataset:
    """Open a dataset written by ``pinscan scan -o`` (sharded or not: ``--shard``, ``--dask``),
    or scans of a history (``--history``).

    ``scans`` picks scans of a history: the latest by default, ``"all"``, a scan id, a list of
    them, or -1 (the latest), -2 (the one before), ... Only committed scans are read: a scan
    still running, or killed, is invisible until it completes.

    Examples
    --------
    >>> ds = pinscan.open("out")  # doctest: +SKIP
    >>> ds.endpoints.group_by("status").len().collect()  # doctest: +SKIP
    >>> every = pinscan.open("history", scans="all")  # doctest: +SKIP
    >>> every.endpoints.group_by("scan_date", "status").len().collect()  # doctest: +SKIP
    """
    root = Path(path)
    if hist.is_history(root):
        return _open_history(root, scans)
    if sharding.is_sharded(root):
        return _open_sharded(root, scans)
    meta = read_meta(root)
    _check_single(root, meta, scans)
    return ScanDataset(
        path=root,
        meta=meta,
        endpoints=_scan(root / ENDPOINTS, ENDPOINTS_SCHEMA),
        chains=_scan(root / CHAINS, CHAINS_SCHEMA),
        certificates=_scan(root / CERTIFICATES, certificates_schema()),
        pin_results=_scan(root / PIN_RESULTS, PIN_RESULTS_SCHEMA),
        scans=hist.scans_frame([meta]),
    )


def _check_single(root: Path, meta: dict[str, Any], scans: Scans) -> None:
    if scans not in (None, "latest", "all", -1, meta["scan_id"], [meta["scan_id"]]):
        msg = f"holds one scan ({meta['scan_id']}); cannot select {scans!r}"
        raise DatasetError(str(root), msg)


def _open_sharded(root: Path, scans: Scans) -> ScanDataset:
    """A sharded scan (``--shard``, ``--dask``) read as one: its finished shards' tables put
    together. Each shard keeps the distinct certificates it saw, so a certificate served in
    several shards is kept once, as a scan in one piece keeps it. Unfinished shards are left
    out, and ``meta["complete"]`` is false until every shard is done."""
    manifest = sharding.read_manifest(root)
    done = sharding.finished(root, manifest)
    meta = sharding.merged_meta(manifest, done)
    _check_single(root, meta, scans)
    dirs = [sharding.shard_dir(root, sharding.Shard(i, manifest["count"])) for i in sorted(done)]
    certificates = _scan_dirs(dirs, CERTIFICATES, certificates_schema())
    return ScanDataset(
        path=root,
        meta=meta,
        endpoints=_scan_dirs(dirs, ENDPOINTS, ENDPOINTS_SCHEMA),
        chains=_scan_dirs(dirs, CHAINS, CHAINS_SCHEMA),
        certificates=certificates.unique("cert_sha256", keep="first", maintain_order=True),
        pin_results=_scan(root / PIN_RESULTS, PIN_RESULTS_SCHEMA),
        scans=hist.scans_frame([meta]),
    )


_INDEX = re.compile(r"^-[1-9]\d*$")


def select(spec: str | os.PathLike[str]) -> ScanDataset:
    """One scan named the way every command line takes it: ``H`` (a history's latest scan),
    ``H@<scan_id>``, ``H@-1`` (the latest), ``H@-2`` (the one before), or a dataset directory."""
    text = os.fspath(spec)
    base, at, which = text.rpartition("@")
    if not at or Path(text).exists() or not base:
        return open(text)
    return open(base, int(which) if _INDEX.match(which) else which)


def _open_history(root: Path, scans: Scans) -> ScanDataset:
    metas = hist.committed(root)
    if not metas:
        pending = len(hist.staged(root))
        msg = "no committed scan in this history" + (
            f" ({pending} interrupted; finish with pinscan scan --history --resume)"
            if pending
            else ""
        )
        raise DatasetError(str(root), msg)
    chosen = _choose(root, metas, scans)
    return ScanDataset(
        path=root,
        meta=chosen[-1],
        endpoints=_scan_history(root, ENDPOINTS, chosen, ENDPOINTS_SCHEMA),
        chains=_scan_history(root, CHAINS, chosen, CHAINS_SCHEMA),
        certificates=_scan_history(root, CERTIFICATES, chosen, certificates_schema()),
        pin_results=_scan_history(root, PIN_RESULTS, chosen, PIN_RESULTS_SCHEMA),
        scans=hist.scans_frame(chosen),
    )


def _choose(root: Path, metas: list[dict[str, Any]], scans: Scans) -> list[dict[str, Any]]:
    by_id = {m["scan_id"]: m for m in metas}
    if scans is None or scans == "latest":
        return metas[-1:]
    if scans == "all":
        return metas
    if isinstance(scans, int):
        if scans >= 0 or -scans > len(metas):
            msg = f"scan {scans} out of range: the history holds {len(metas)} (-1 to -{len(metas)})"
            raise DatasetError(str(root), msg)
        return [metas[scans]]
    wanted = [scans] if isinstance(scans, str) else list(scans)
    missing = [s for s in wanted if s not in by_id]
    if missing:
        msg = f"no committed scan {', '.join(map(repr, missing))} (see pinscan.open(H).scans)"
        raise DatasetError(str(root), msg)
    return sorted((by_id[s] for s in set(wanted)), key=metas.index)


# Parts written before a column was added (see schema.FORMAT) read it as null: missing columns
# are inserted. A part of another table still fails, on its extra columns.
def _scan(directory: Path, schema: pl.Schema) -> pl.LazyFrame:
    parts = _parts(directory)
    if not parts:
        return pl.LazyFrame(schema=schema)
    return pl.scan_parquet(parts, schema=schema, missing_columns="insert")


def _scan_dirs(dirs: list[Path], table: str, schema: pl.Schema) -> pl.LazyFrame:
    parts = [p for d in dirs for p in _parts(d / table)]
    if not parts:
        return pl.LazyFrame(schema=schema)
    return pl.scan_parquet(parts, schema=schema, missing_columns="insert")


def _scan_history(
    root: Path, table: str, metas: list[dict[str, Any]], schema: pl.Schema
) -> pl.LazyFrame:
    """One table over the chosen scans: their partitions' parts, listed from the markers so that
    partitions of uncommitted scans are never read."""
    parts = [p for m in metas for p in _parts(hist.partition(root, table, m))]
    names = [*schema.names(), *(c for c in hist.PARTITION_SCHEMA if c not in schema)]
    full = pl.Schema({**schema, **hist.PARTITION_SCHEMA})
    if not parts:
        return pl.LazyFrame(schema=full).select(names)
    frame = pl.scan_parquet(
        parts,
        schema=schema,
        hive_partitioning=True,
        hive_schema=hist.PARTITION_SCHEMA,
        missing_columns="insert",
    )
    return frame.select(names)
