# SPDX-License-Identifier: Apache-2.0
"""Writes a scan dataset while the scan runs, in bounded memory, so that a killed scan leaves
only whole files and ``--resume`` can finish it.

Layout of ``OUT/``::

    scan.json                        what ran: version, arguments, times, counts, complete or not
    certificates/part-000001.parquet one row per distinct certificate (first seen in this part)
    chains/part-000001.parquet       endpoint x position -> cert_sha256, presented and verified
    endpoints/part-000001.parquet    one row per (target, address), with each store's path
    pin_results/part-000001.parquet  with --policy: one row per (endpoint, policy), written last

A batch is written as three parts with one sequence number: certificates, then chains, then
endpoints. The endpoints part is the commit point: a target is done exactly when its rows are in an
endpoints part, and every row of one target is in the same batch. Parts of a sequence number that
has no endpoints part are leftovers of a killed flush; ``resume`` deletes them.

A writer holds the directory's lock (see :mod:`pinscan.dataset._lock`) from ``create`` or
``resume`` to ``finish``: a second writer is refused while the first runs. Each part carries, in
its footer, the CRC-32 of the bytes before the footer (``pinscan.crc32``), so that a bit flipped
on disk is found by reading the file once (:meth:`~pinscan.dataset.ScanDataset.verify`) rather
than decoded into wrong rows; its pages carry Parquet's own CRCs too, for other readers.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pinscan import atomic
from pinscan.dataset import _lock, outputs, shards
from pinscan.dataset.meta import now, read_meta
from pinscan.dataset.names import (
    CERTIFICATES,
    CHAIN_SOURCES,
    CHAINS,
    CHECKSUM_KEY,
    ENDPOINTS,
    FORMAT,
    META_FILE,
    PART,
    PIN_RESULTS,
    SCAN_TABLES,
    TABLES,
    is_history,
    parts,
)
from pinscan.errors import DatasetError
from pinscan.records import STATUSES, Endpoint

if TYPE_CHECKING:
    import polars as pl
    import pyarrow as pa

# pyarrow and the part checks are imported where a part is first read or written, not here (lazy
# for start-up time): creating a dataset and writing its scan.json, all a scan does before its
# first connection, needs neither. A scan never imports polars: the parts are built with pyarrow
# from the schemas polars gives them (SCHEMA_FILES), so they read back as polars wrote them.

#: The Arrow schema of the endpoints and chains parts: what polars' ``to_arrow()`` makes of the
#: table's polars schema (:mod:`~.schema`), enums included, built by
#: ``scripts/build_part_schemas.py``. A certificates part is the Rust core's columns, then
#: ``der`` and ``scan_id``, written as plain Parquet (see `_write`).
SCHEMA_FILES = {
    table: Path(__file__).with_name("schemas") / f"{table}.arrow" for table in (ENDPOINTS, CHAINS)
}
_SCHEMAS: dict[str, pa.Schema] = {}
#: The values of each enum column, in order: a part holds their indices.
_ENUM_VALUES = {"status": STATUSES, "source": CHAIN_SOURCES}
_STATUS = {value: i for i, value in enumerate(STATUSES)}
_CHAIN_SOURCE = {value: i for i, value in enumerate(CHAIN_SOURCES)}

_SHARDED = "holds a sharded scan (--shard, --dask)"
#: What a dataset directory may hold.
ENTRIES = frozenset({*TABLES, META_FILE, _lock.LOCK_FILE})


def id_bits(hex_id: str) -> int:
    """64 bits of a hex id or digest: sets of these cost a third of sets of strings."""
    return int(hex_id[:16], 16)


class DatasetWriter:
    """Appends batches of endpoints to a dataset directory. One writer per directory (the lock
    refuses others); calls must not overlap (the scanner runs them one at a time in a worker
    thread)."""

    def __init__(self, root: Path, meta: dict[str, Any], lock: _lock.Lock) -> None:
        self.root = root
        self.meta = meta
        self.scan_id: str = meta["scan_id"]
        #: Targets written before a resume (64-bit prefixes of their `target_id`). A running scan
        #: does not add to it: the inventory yields each target once.
        self.done: set[int] = set()
        self._written_certs: set[int] = set()
        self._seq = 0
        self._lock = lock

    @classmethod
    def create(cls, root: Path, *, scan_id: str, arguments: dict[str, Any], version: str):
        """A new dataset in ``root``, which must be missing, empty, or what a create killed
        before its first write left."""
        _refuse_other_outputs(root)
        outputs.check_output(root, ENTRIES, "-o")
        with outputs.writing(root):
            root.mkdir(parents=True, exist_ok=True)
        lock = _lock.acquire(root, scan_id=scan_id)
        try:
            if (root / META_FILE).exists():
                msg = "already holds a scan; use --resume to finish it, or another directory"
                raise DatasetError(str(root), msg)
            meta = {
                "format": FORMAT,
                "pinscan_version": version,
                "scan_id": scan_id,
                "arguments": arguments,
                "started_at": now(),
                "finished_at": None,
                "complete": False,
                "counts": {},
            }
            with outputs.writing(root):
                for table in SCAN_TABLES:
                    (root / table).mkdir(exist_ok=True)
                atomic.atomic_write_json(root / META_FILE, meta)
        except BaseException:
            lock.release()
            raise
        return cls(root, meta, lock)

    @classmethod
    def resume(cls, root: Path) -> DatasetWriter:
        """Reopens an interrupted scan: checks the parts it keeps, removes what a killed flush
        left, and loads which targets and certificates are already written. Nothing is deleted
        when a part it keeps is damaged."""
        from pinscan.dataset import _integrity

        _refuse_other_outputs(root)
        scan_id = read_meta(root)["scan_id"]  # a directory with no scan is not locked, nor ours
        outputs.check_output(root, ENTRIES, "-o")
        lock = _lock.acquire(root, scan_id=scan_id)
        try:
            meta = read_meta(root)  # as the last writer left it, now that it is gone
            writer = cls(root, meta, lock)
            committed = _seqs(root / ENDPOINTS)
            kept = {
                t: [p for p in _parts(root / t) if _seq_of(p) in committed] for t in SCAN_TABLES
            }
            _integrity.check_parts(kept, verify=True)
            with outputs.writing(root):
                writer._clean(committed)
            writer._seq = max(committed, default=0)
            ids = _integrity.read_column(kept[ENDPOINTS], "target_id", ENDPOINTS)
            writer.done = {id_bits(t) for t in ids}
            shas = _integrity.read_column(kept[CERTIFICATES], "cert_sha256", CERTIFICATES)
            writer._written_certs = {id_bits(s) for s in shas}
            meta["resumed_at"] = [*meta.get("resumed_at", []), now()]
            meta["complete"] = False
            meta.pop("parts", None)
            with outputs.writing(root):
                atomic.atomic_write_json(root / META_FILE, meta)
        except BaseException:
            lock.release()
            raise
        return writer

    def _clean(self, committed: set[int]) -> None:
        for table in SCAN_TABLES:
            atomic.remove_temporaries(self.root / table)
        for table in (CHAINS, CERTIFICATES):
            for part in _parts(self.root / table):
                if _seq_of(part) not in committed:
                    part.unlink()

    def write(self, endpoints: Sequence[Endpoint]) -> None:
        """Writes one batch as three parts, endpoints last. Every endpoint of a target must be in
        the same batch."""
        if not endpoints:
            return
        import pyarrow as pa

        from pinscan import _core

        self._seq += 1
        name = f"part-{self._seq:06d}.parquet"
        # The roots the stores' paths end at are certificates of the scan too, as the verified
        # chain's root always was: a pin is looked up in the certificates table.
        ders = list(
            dict.fromkeys(
                d
                for e in endpoints
                for d in (
                    *e.presented,
                    *e.verified_chain,
                    *(d for _, _, path in e.store_paths for d in path),
                )
            )
        )
        parsed = pa.table(_core.parse_certificates(ders))
        shas = parsed.column("cert_sha256").to_pylist()
        sha_of = dict(zip(ders, shas, strict=True))
        pin_of = dict(zip(ders, parsed.column("spki_sha256").to_pylist(), strict=True))

        new = [
            d for d, sha in zip(ders, shas, strict=True) if id_bits(sha) not in self._written_certs
        ]
        if new:
            # The certificates' columns as the Rust core gives them (parsed again: a few
            # microseconds each, and no pyarrow.compute to import for a filter).
            certs = pa.table(_core.parse_certificates(new) if len(new) < len(ders) else parsed)
            certs = certs.append_column("der", pa.array(new, pa.binary_view()))
            scan_ids = pa.array([self.scan_id] * len(new), pa.string_view())
            certs = certs.append_column("scan_id", scan_ids)
            _write(certs, self.root / CERTIFICATES / name, arrow_schema=False)

        chains: dict[str, list[Any]] = {c: [] for c in _schema(CHAINS).names}
        for e in endpoints:
            endpoint_id = e.endpoint_id
            for source, chain in (("presented", e.presented), ("verified", e.verified_chain)):
                for position, der in enumerate(chain):
                    chains["endpoint_id"].append(endpoint_id)
                    chains["source"].append(_CHAIN_SOURCE[source])
                    chains["position"].append(position)
                    chains["cert_sha256"].append(sha_of[der])
        chains["scan_id"] = [self.scan_id] * len(chains["endpoint_id"])
        if chains["endpoint_id"]:
            _write(_table(chains, CHAINS), self.root / CHAINS / name)

        rows = _endpoint_columns(endpoints, sha_of, pin_of, self.scan_id)
        _write(_table(rows, ENDPOINTS), self.root / ENDPOINTS / name)

        self._written_certs.update(id_bits(s) for s in shas)

    def finish(self, counts: dict[str, Any], *, complete: bool = True) -> None:
        """Records the end of the scan (or of this run of it, when interrupted) and lets the
        next writer in. A complete scan records how many parts each table has, so that readers
        notice a part or a table gone missing."""
        try:
            self.meta.update(finished_at=now(), complete=complete, counts=counts)
            if complete:
                self.meta["parts"] = {t: len(_parts(self.root / t)) for t in SCAN_TABLES}
            with outputs.writing(self.root):
                atomic.atomic_write_json(self.root / META_FILE, self.meta)
        finally:
            self.close()

    def close(self) -> None:
        """Lets the next writer in without recording anything (a scan that could not start)."""
        self._lock.release()


def write_pin_results(root: Path, results: pl.DataFrame) -> None:
    """Replaces the dataset's pin verdicts with ``results`` in one atomic rename, so a reader sees
    the old verdicts or the new ones, never a mix. Refused while a scan writes to ``root``."""
    from pinscan.dataset.schema import PIN_RESULTS_SCHEMA

    directory = root / PIN_RESULTS
    outputs.refuse_link(directory)
    with _lock.acquire(root, scan_id=None, what="pinscan writing pin verdicts"):
        with outputs.writing(directory):
            directory.mkdir(exist_ok=True)
            atomic.remove_temporaries(directory)
        target = directory / "part-000001.parquet"
        table = results.select(PIN_RESULTS_SCHEMA.names()).cast(PIN_RESULTS_SCHEMA).to_arrow()  # type: ignore[arg-type]
        _write(table, target)
        with outputs.writing(directory):
            for stale in _parts(directory):
                if stale != target:
                    stale.unlink()


def _endpoint_columns(
    endpoints: Sequence[Endpoint],
    sha_of: dict[bytes, str],
    pin_of: dict[bytes, str | None],
    scan_id: str,
) -> dict[str, list[Any]]:
    names = _schema(ENDPOINTS).names
    cols: dict[str, list[Any]] = {c: [] for c in names}
    derived = {"endpoint_id", "leaf_sha256", "spki_sha256", "scan_id", "store_paths"}
    plain = [c for c in names if c not in derived]
    for e in endpoints:
        cols["endpoint_id"].append(e.endpoint_id)
        leaf = e.presented[0] if e.presented else None
        cols["leaf_sha256"].append(sha_of[leaf] if leaf else None)
        cols["spki_sha256"].append(pin_of[leaf] if leaf else None)
        # A path that is the endpoint's verified chain (most are: stores holding the same root
        # build the same path) is not written again.
        verified = tuple(e.verified_chain)
        cols["store_paths"].append(
            [
                {
                    "store": store,
                    "verified": ok,
                    "chain": None if ok and path == verified else [sha_of[d] for d in path],
                }
                for store, ok, path in e.store_paths
            ]
            or None
        )
        for c in plain:
            cols[c].append(getattr(e, c))
    cols["scan_id"] = [scan_id] * len(endpoints)
    cols["status"] = [_STATUS[s] for s in cols["status"]]
    return cols


def _schema(table: str) -> pa.Schema:
    """The Arrow schema of a table's parts (see :data:`SCHEMA_FILES`)."""
    import pyarrow as pa

    schema = _SCHEMAS.get(table)
    if schema is None:
        schema = _SCHEMAS[table] = pa.ipc.open_file(SCHEMA_FILES[table]).schema
    return schema


def _table(columns: dict[str, list[Any]], table: str) -> pa.Table:
    """A part's rows, from lists of Python values (an enum column holds each value's index)."""
    import pyarrow as pa

    schema = _schema(table)
    arrays = []
    for field in schema:
        values = columns[field.name]
        if pa.types.is_dictionary(field.type):  # polars' enums: every value, in order
            categories = pa.array(_ENUM_VALUES[field.name], field.type.value_type)
            indices = pa.array(values, field.type.index_type)
            arrays.append(pa.DictionaryArray.from_arrays(indices, categories, ordered=True))
        else:
            arrays.append(pa.array(values, field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def _write(table: pa.Table, path: Path, *, arrow_schema: bool = True) -> None:
    """One part, whole or not at all, with its checksums (see the module's docstring). Encoded
    in memory and written by pinscan itself, so that a full disk is an ``OSError`` that says so
    (polars' writer reports it as a thrift transport error). Without ``arrow_schema`` the part
    is plain Parquet, read back with each reader's own types (for the certificates: the Rust
    core's string views, which pyarrow 26 cannot even filter, come back as strings)."""
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    # No dictionary pages: ids and digests do not repeat, and zstd packs the columns that do
    # (parts come out 5% smaller than with dictionaries).
    with pq.ParquetWriter(
        buffer,
        table.schema,
        compression="zstd",
        use_dictionary=False,
        write_page_checksum=True,
        store_schema=arrow_schema,
    ) as writer:
        writer.write_table(table)
        # Every page is in the buffer now; only the footer is left to write.
        with buffer.getbuffer() as written:
            checksum = f"{zlib.crc32(written):08x} {len(written)}"
        writer.add_key_value_metadata({CHECKSUM_KEY: checksum})
    data = buffer.getbuffer()
    with outputs.writing(path):
        atomic.atomic_write(path, lambda tmp: tmp.write_bytes(data))


def _refuse_other_outputs(root: Path) -> None:
    """What ``-o`` must not take for a dataset, said before anything is written."""
    if shards.is_sharded(root):
        msg = f"{_SHARDED}: finish it with --resume and --dask, or with --shard I/N"
        raise DatasetError(str(root), msg)
    if is_history(root):
        raise DatasetError(str(root), "is a history (pinscan scan --history); use --history")


_parts = parts


def _seq_of(part: Path) -> int:
    match = PART.match(part.name)
    assert match is not None
    return int(match.group(1))


def _seqs(directory: Path) -> set[int]:
    return {_seq_of(p) for p in _parts(directory)}
