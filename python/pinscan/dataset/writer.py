# SPDX-License-Identifier: Apache-2.0
"""Writes a scan dataset while the scan runs, in bounded memory, so that a killed scan leaves
only whole files and ``--resume`` can finish it.

Layout of ``OUT/``::

    scan.json                        what ran: version, arguments, times, counts, complete or not
    certificates/part-000001.parquet one row per distinct certificate (first seen in this part)
    chains/part-000001.parquet       endpoint x position -> cert_sha256, presented and verified
    endpoints/part-000001.parquet    one row per (target, address)
    pin_results/part-000001.parquet  with --policy: one row per (endpoint, policy), written last

A batch is written as three parts with one sequence number: certificates, then chains, then
endpoints. The endpoints part is the commit point: a target is done exactly when its rows are in an
endpoints part, and every row of one target is in the same batch. Parts of a sequence number that
has no endpoints part are leftovers of a killed flush; ``resume`` deletes them.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl

from pinscan.dataset import _files
from pinscan.dataset.schema import (
    CERTIFICATES,
    CHAINS,
    CHAINS_SCHEMA,
    ENDPOINTS,
    ENDPOINTS_SCHEMA,
    FORMAT,
    META_FILE,
    PIN_RESULTS,
    PIN_RESULTS_SCHEMA,
    TABLES,
    certificates_schema,
)
from pinscan.errors import DatasetError
from pinscan.parse import certificates
from pinscan.records import Endpoint

_PART = re.compile(r"^part-(\d{6})\.parquet$")
#: The manifest of a sharded scan (see :mod:`pinscan.shard`), which is no place for a plain one.
SHARD_MANIFEST = "shards.json"
_SHARDED = "holds a sharded scan (--shard, --dask)"


def id_bits(hex_id: str) -> int:
    """64 bits of a hex id or digest: sets of these cost a third of sets of strings."""
    return int(hex_id[:16], 16)


class DatasetWriter:
    """Appends batches of endpoints to a dataset directory. One writer per directory; calls must
    not overlap (the scanner runs them one at a time in a worker thread)."""

    def __init__(self, root: Path, meta: dict[str, Any]) -> None:
        self.root = root
        self.meta = meta
        self.scan_id: str = meta["scan_id"]
        #: Targets written before a resume (64-bit prefixes of their `target_id`). A running scan
        #: does not add to it: the inventory yields each target once.
        self.done: set[int] = set()
        self._written_certs: set[int] = set()
        self._seq = 0

    @classmethod
    def create(cls, root: Path, *, scan_id: str, arguments: dict[str, Any], version: str):
        """A new dataset in ``root``, which must not hold one already."""
        if (root / META_FILE).exists():
            msg = f"{root} already holds a scan; use --resume to finish it, or another directory"
            raise DatasetError(str(root), msg)
        if (root / SHARD_MANIFEST).exists():
            raise DatasetError(str(root), f"{_SHARDED}; give another directory")
        for table in TABLES:
            (root / table).mkdir(parents=True, exist_ok=True)
        meta = {
            "format": FORMAT,
            "pinscan_version": version,
            "scan_id": scan_id,
            "arguments": arguments,
            "started_at": _now(),
            "finished_at": None,
            "complete": False,
            "counts": {},
        }
        _files.atomic_write_json(root / META_FILE, meta)
        return cls(root, meta)

    @classmethod
    def resume(cls, root: Path) -> DatasetWriter:
        """Reopens an interrupted scan: removes what a killed flush left, and loads which targets
        and certificates are already written."""
        if (root / SHARD_MANIFEST).exists():
            msg = f"{_SHARDED}: finish it with --resume and --dask, or with --shard I/N"
            raise DatasetError(str(root), msg)
        meta = read_meta(root)
        writer = cls(root, meta)
        committed = writer._clean()
        writer._seq = max(committed, default=0)
        endpoints = _parts(root / ENDPOINTS)
        if endpoints:
            ids = pl.scan_parquet(endpoints).select("target_id").unique().collect()
            writer.done = {id_bits(t) for t in ids["target_id"]}
        certs = _parts(root / CERTIFICATES)
        if certs:
            shas = pl.scan_parquet(certs).select("cert_sha256").collect()
            writer._written_certs = {id_bits(s) for s in shas["cert_sha256"]}
        meta["resumed_at"] = [*meta.get("resumed_at", []), _now()]
        meta["complete"] = False
        _files.atomic_write_json(root / META_FILE, meta)
        return writer

    def _clean(self) -> set[int]:
        for table in TABLES:
            _files.remove_temporaries(self.root / table)
        committed = _seqs(self.root / ENDPOINTS)
        for table in (CHAINS, CERTIFICATES):
            for part in _parts(self.root / table):
                if _seq_of(part) not in committed:
                    part.unlink()
        return committed

    def write(self, endpoints: Sequence[Endpoint]) -> None:
        """Writes one batch as three parts, endpoints last. Every endpoint of a target must be in
        the same batch."""
        if not endpoints:
            return
        self._seq += 1
        name = f"part-{self._seq:06d}.parquet"
        ders = list(dict.fromkeys(d for e in endpoints for d in (*e.presented, *e.verified_chain)))
        parsed = certificates(ders)
        sha_of = dict(zip(ders, parsed["cert_sha256"], strict=True))
        pin_of = dict(zip(ders, parsed["spki_sha256"], strict=True))

        new = [id_bits(s) not in self._written_certs for s in parsed["cert_sha256"]]
        if any(new):
            certs = parsed.with_columns(
                der=pl.Series(ders, dtype=pl.Binary), scan_id=pl.lit(self.scan_id)
            ).filter(pl.Series(new))
            _write(certs.select(certificates_schema().names()), self.root / CERTIFICATES / name)

        chains: dict[str, list[Any]] = {c: [] for c in CHAINS_SCHEMA.names()}
        for e in endpoints:
            endpoint_id = e.endpoint_id
            for source, chain in (("presented", e.presented), ("verified", e.verified_chain)):
                for position, der in enumerate(chain):
                    chains["endpoint_id"].append(endpoint_id)
                    chains["source"].append(source)
                    chains["position"].append(position)
                    chains["cert_sha256"].append(sha_of[der])
        chains["scan_id"] = [self.scan_id] * len(chains["endpoint_id"])
        if chains["endpoint_id"]:
            _write(pl.DataFrame(chains, schema=CHAINS_SCHEMA), self.root / CHAINS / name)

        rows = _endpoint_columns(endpoints, sha_of, pin_of, self.scan_id)
        _write(pl.DataFrame(rows, schema=ENDPOINTS_SCHEMA), self.root / ENDPOINTS / name)

        self._written_certs.update(id_bits(s) for s in parsed["cert_sha256"])

    def finish(self, counts: dict[str, Any], *, complete: bool = True) -> None:
        """Records the end of the scan (or of this run of it, when interrupted)."""
        self.meta.update(finished_at=_now(), complete=complete, counts=counts)
        _files.atomic_write_json(self.root / META_FILE, self.meta)


def write_pin_results(root: Path, results: pl.DataFrame) -> None:
    """Replaces the dataset's pin verdicts with ``results`` in one atomic rename, so a reader sees
    the old verdicts or the new ones, never a mix."""
    directory = root / PIN_RESULTS
    directory.mkdir(exist_ok=True)
    _files.remove_temporaries(directory)
    target = directory / "part-000001.parquet"
    _write(results.select(PIN_RESULTS_SCHEMA.names()).cast(PIN_RESULTS_SCHEMA), target)  # type: ignore[arg-type]
    for stale in _parts(directory):
        if stale != target:
            stale.unlink()


def read_meta(root: Path) -> dict[str, Any]:
    import json

    path = root / META_FILE
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        msg = f"no scan here ({META_FILE} is missing)"
        raise DatasetError(str(root), msg) from None
    except (OSError, ValueError) as exc:
        raise DatasetError(str(path), f"unreadable: {exc}") from None
    if meta.get("format") != FORMAT:
        msg = f"dataset format {meta.get('format')!r}; this pinscan reads format {FORMAT}"
        raise DatasetError(str(root), msg)
    return meta


def _endpoint_columns(
    endpoints: Sequence[Endpoint],
    sha_of: dict[bytes, str],
    pin_of: dict[bytes, str | None],
    scan_id: str,
) -> dict[str, list[Any]]:
    names = ENDPOINTS_SCHEMA.names()
    cols: dict[str, list[Any]] = {c: [] for c in names}
    plain = [c for c in names if c not in {"endpoint_id", "leaf_sha256", "spki_sha256", "scan_id"}]
    for e in endpoints:
        cols["endpoint_id"].append(e.endpoint_id)
        leaf = e.presented[0] if e.presented else None
        cols["leaf_sha256"].append(sha_of[leaf] if leaf else None)
        cols["spki_sha256"].append(pin_of[leaf] if leaf else None)
        for c in plain:
            cols[c].append(getattr(e, c))
    cols["scan_id"] = [scan_id] * len(endpoints)
    return cols


def _write(df: pl.DataFrame, path: Path) -> None:
    _files.atomic_write(path, lambda tmp: df.write_parquet(tmp, compression="zstd"))


def _parts(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if _PART.match(p.name))


def _seq_of(part: Path) -> int:
    match = _PART.match(part.name)
    assert match is not None
    return int(match.group(1))


def _seqs(directory: Path) -> set[int]:
    return {_seq_of(p) for p in _parts(directory)}


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
