# SPDX-License-Identifier: Apache-2.0
"""Reads a scan dataset, or scans of a history, back as polars LazyFrames: what notebooks and
other tools use.

Opening checks what it reads (see :mod:`pinscan.dataset._integrity`): every table a scan wrote
is there with as many parts as it committed, each part's footer and columns are whole and the
table's, and nothing else is in a table directory. A damaged dataset is a
:class:`~pinscan.errors.DatasetError` naming the file, not a decoder's error at ``collect()``.
"""

from __future__ import annotations

import collections
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from pinscan.dataset import _integrity, _lock
from pinscan.dataset import history as hist
from pinscan.dataset import shards as sharding
from pinscan.dataset.meta import read_meta
from pinscan.dataset.schema import (
    CERTIFICATES,
    CHAINS,
    ENDPOINTS,
    PIN_RESULTS,
    SCAN_TABLES,
    TABLES,
)
from pinscan.errors import DatasetError

# The parts of the datasets opened last, for the command line to look into when a decoder fails
# (see damaged_part): a few, so that a long session keeps no more than it needs.
_OPENED: collections.deque[tuple[Path, ...]] = collections.deque(maxlen=8)

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
    #: Every part file the frames read.
    parts: tuple[Path, ...] = field(default=(), repr=False, compare=False)

    def served(self, source: str = "presented") -> pl.LazyFrame:
        """Endpoint x chain position x certificate: one row per certificate in each endpoint's
        ``presented`` (or ``verified``) chain, with the endpoint's columns, the chain's
        (``source``, ``position``, ``cert_sha256``) and the certificate's. The certificate's
        ``spki_sha256`` is the one kept, and its ``error`` (why it did not parse) is
        ``cert_error``, next to the endpoint's ``error``.
        """
        # Every scan writes the certificates it saw, so scan_id keeps scans of a history apart.
        certs = self.certificates.drop("der", "scan_date", strict=False).rename(
            {"error": "cert_error"}
        )
        chains = self.chains.filter(pl.col("source") == source).drop("scan_date", strict=False)
        return (
            self.endpoints.drop("spki_sha256")
            .join(chains, ["endpoint_id", "scan_id"])
            .join(certs, ["cert_sha256", "scan_id"], how="left")
            .sort("scan_id", "endpoint_id", "position")
        )

    def verify(self) -> None:
        """Reads every part whole, against the checksum written in it (parts written before
        pinscan wrote checksums are decoded instead), and raises
        :class:`~pinscan.errors.DatasetError` naming the first damaged one. Opening a dataset
        checks footers only; this finds a flipped bit inside the data, which decoders mostly
        read as valid values. The command line checks the checksums of every scan it reads."""
        error = _integrity.damaged(self.parts)
        if error is not None:
            raise error

    def __repr__(self) -> str:
        if self.scans.height > 1:
            return f"<ScanDataset {str(self.path)!r} {self.scans.height} scans>"
        state = "complete" if self.meta.get("complete") else "incomplete"
        return f"<ScanDataset {str(self.path)!r} scan_id={self.meta.get('scan_id')} {state}>"


def open(path: str | os.PathLike[str], scans: Scans = None, *, verify: bool = False) -> ScanDataset:
    """Open a dataset written by ``pinscan scan -o`` (sharded or not: ``--shard``, ``--dask``),
    or scans of a history (``--history``).

    ``scans`` picks scans of a history: the latest by default, ``"all"``, a scan id, a list of
    them, or -1 (the latest), -2 (the one before), ... Only committed scans are read: a scan
    still running, or killed, is invisible until it completes.

    A dataset that is damaged (a missing table or part, a part truncated, empty, not Parquet or
    of other columns, a stray file in a table) raises :class:`~pinscan.errors.DatasetError`
    naming the file. ``verify`` also reads every part against the checksum written in it (what
    the command line does), which finds a bit flipped inside a page; :meth:`ScanDataset.verify`
    does that and also decodes the parts that have no checksum (written by an older pinscan).

    Examples
    --------
    >>> ds = pinscan.open("out")  # doctest: +SKIP
    >>> ds.endpoints.group_by("status").len().collect()  # doctest: +SKIP
    >>> every = pinscan.open("history", scans="all")  # doctest: +SKIP
    >>> every.endpoints.group_by("scan_date", "status").len().collect()  # doctest: +SKIP
    """
    root = Path(path)
    if hist.is_history(root):
        ds = _open_history(root, scans)
    elif sharding.is_sharded(root):
        ds = _open_sharded(root, scans)
    else:
        meta = read_meta(root)
        _check_single(root, meta, scans)
        parts = _dataset_parts(root, meta)
        ds = ScanDataset(
            path=root,
            meta=meta,
            endpoints=_scan(parts[ENDPOINTS], ENDPOINTS),
            chains=_scan(parts[CHAINS], CHAINS),
            certificates=_scan(parts[CERTIFICATES], CERTIFICATES),
            pin_results=_scan(parts[PIN_RESULTS], PIN_RESULTS),
            scans=hist.scans_frame([meta]),
            parts=_flat(parts),
        )
    _OPENED.append(ds.parts)
    if verify:
        for part in ds.parts:
            _integrity.verify_part(part)
    return ds


def running(path: str | os.PathLike[str]) -> str | None:
    """Who is writing to the dataset or history ``path`` right now (``"scan <id> (pid 4242 on
    host, started ...)"``), or ``None`` when nothing is: a scan that is not complete and not
    running was interrupted, and ``--resume`` finishes it."""
    root = Path(path)
    record = _lock.holder(root)
    if record is None and sharding.is_sharded(root):
        record = sharding.running(root)
    return None if record is None else _lock.describe(record)


def damaged_part() -> DatasetError | None:
    """The first damaged part among the datasets opened last in this process, if any: the
    command line asks when a decoder failed, to name the file (parts without a checksum are
    decoded one by one)."""
    for parts in reversed(_OPENED):
        error = _integrity.damaged(parts)
        if error is not None:
            return error
    return None


def _dataset_parts(root: Path, meta: dict[str, Any]) -> dict[str, list[Path]]:
    """The checked parts of each table of a plain dataset directory (a scan, or a shard)."""
    out = {}
    for table in TABLES:
        directory = root / table
        if table != PIN_RESULTS and not directory.is_dir():
            msg = f"missing: the {table} table of scan {meta.get('scan_id')} is not there"
            raise DatasetError(str(directory), msg)
        out[table] = _integrity.table_parts(directory, table)
        _integrity.check_parts({table: out[table]})
        _check_count(directory, table, out[table], meta)
    return out


def _check_count(directory: Path, table: str, parts: list[Path], meta: dict[str, Any]) -> None:
    """As many parts as the scan wrote, when it recorded that (complete scans do)."""
    count = meta.get("parts", {}).get(table)
    if count is not None and len(parts) != count:
        msg = (
            f"damaged: {len(parts)} part files of the {table} table are here, "
            f"and scan {meta.get('scan_id')} wrote {count}"
        )
        raise DatasetError(str(directory), msg)


def _flat(parts: dict[str, list[Path]]) -> tuple[Path, ...]:
    return tuple(p for paths in parts.values() for p in paths)


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
    parts: dict[str, list[Path]] = {table: [] for table in SCAN_TABLES}
    for i in sorted(done):
        shard = sharding.shard_dir(root, sharding.Shard(i, manifest["count"]))
        for table, paths in _dataset_parts(shard, done[i]).items():
            if table != PIN_RESULTS:  # the verdicts are the whole scan's, not a shard's
                parts[table] += paths
    parts[PIN_RESULTS] = _integrity.table_parts(root / PIN_RESULTS, PIN_RESULTS)
    _integrity.check_parts({PIN_RESULTS: parts[PIN_RESULTS]})
    certificates = _scan(parts[CERTIFICATES], CERTIFICATES)
    return ScanDataset(
        path=root,
        meta=meta,
        endpoints=_scan(parts[ENDPOINTS], ENDPOINTS),
        chains=_scan(parts[CHAINS], CHAINS),
        certificates=certificates.unique("cert_sha256", keep="first", maintain_order=True),
        pin_results=_scan(parts[PIN_RESULTS], PIN_RESULTS),
        scans=hist.scans_frame([meta]),
        parts=_flat(parts),
    )


_INDEX = re.compile(r"^-[1-9]\d*$")


def select(spec: str | os.PathLike[str], *, verify: bool = False) -> ScanDataset:
    """One scan named the way every command line takes it: ``H`` (a history's latest scan),
    ``H@<scan_id>``, ``H@-1`` (the latest), ``H@-2`` (the one before), or a dataset directory.
    ``verify`` as for :func:`open`."""
    text = os.fspath(spec)
    base, at, which = text.rpartition("@")
    if not at or Path(text).exists() or not base:
        return open(text, verify=verify)
    return open(base, int(which) if _INDEX.match(which) else which, verify=verify)


def _open_history(root: Path, scans: Scans) -> ScanDataset:
    metas = hist.committed(root)
    if not metas:
        raise DatasetError(str(root), "no committed scan in this history" + _pending(root))
    chosen = _choose(root, metas, scans)
    parts = {table: _history_parts(root, table, chosen) for table in TABLES}
    return ScanDataset(
        path=root,
        meta=chosen[-1],
        endpoints=_scan_history(parts[ENDPOINTS], ENDPOINTS),
        chains=_scan_history(parts[CHAINS], CHAINS),
        certificates=_scan_history(parts[CERTIFICATES], CERTIFICATES),
        pin_results=_scan_history(parts[PIN_RESULTS], PIN_RESULTS),
        scans=hist.scans_frame(chosen),
        parts=_flat(parts),
    )


def _pending(root: Path) -> str:
    """What a history holds besides its committed scans, for a message: a scan running, or
    scans interrupted."""
    holder = running(root)
    if holder is not None:
        return f" ({holder} is still running)"
    pending = len(hist.staged(root))
    if pending:
        return f" ({pending} interrupted; finish with pinscan scan --history --resume)"
    return ""


def _choose(root: Path, metas: list[dict[str, Any]], scans: Scans) -> list[dict[str, Any]]:
    by_id = {m["scan_id"]: m for m in metas}
    if scans is None or scans == "latest":
        return metas[-1:]
    if scans == "all":
        return metas
    if isinstance(scans, int):
        if scans >= 0 or -scans > len(metas):
            msg = f"scan {scans} out of range: the history holds {len(metas)} (-1 to -{len(metas)})"
            raise DatasetError(str(root), msg + _pending(root))
        return [metas[scans]]
    wanted = [scans] if isinstance(scans, str) else list(scans)
    missing = [s for s in wanted if s not in by_id]
    if missing:
        msg = f"no committed scan {', '.join(map(repr, missing))} (see pinscan.open(H).scans)"
        raise DatasetError(str(root), msg)
    return sorted((by_id[s] for s in set(wanted)), key=metas.index)


# Parts written before a column was added (schema.ADDED_LATER) read it as null: missing columns
# are inserted.
def _scan(parts: list[Path], table: str) -> pl.LazyFrame:
    schema = _integrity.schema_of(table)
    if not parts:
        return pl.LazyFrame(schema=schema)
    return _integrity.scan_parts(parts, table)


def _history_parts(root: Path, table: str, metas: list[dict[str, Any]]) -> list[Path]:
    """One table's checked parts over the chosen scans, listed from the markers so that
    partitions of uncommitted scans are never read. Every committed scan has its three scan
    tables, and as many parts in each table as its marker says (markers of older pinscans do
    not say)."""
    out = []
    for meta in metas:
        directory = hist.partition(root, table, meta)
        if not directory.is_dir() and (table != PIN_RESULTS or meta.get("parts", {}).get(table)):
            msg = f"missing: the {table} table of committed scan {meta['scan_id']} is not there"
            raise DatasetError(str(directory), msg)
        parts = _integrity.table_parts(directory, table)
        _integrity.check_parts({table: parts})
        _check_count(directory, table, parts, meta)
        out += parts
    return out


def _scan_history(parts: list[Path], table: str) -> pl.LazyFrame:
    """One table over the chosen scans, with the partition columns."""
    schema = _integrity.schema_of(table)
    names = [*schema.names(), *(c for c in hist.PARTITION_SCHEMA if c not in schema)]
    full = pl.Schema({**schema, **hist.PARTITION_SCHEMA})
    if not parts:
        return pl.LazyFrame(schema=full).select(names)
    frame = _integrity.scan_parts(
        parts, table, hive_partitioning=True, hive_schema=hist.PARTITION_SCHEMA
    )
    return frame.select(names)
