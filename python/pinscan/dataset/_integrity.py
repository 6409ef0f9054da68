# SPDX-License-Identifier: Apache-2.0
"""Whether the part files of a dataset are what pinscan wrote, so that a damaged file is an
error naming it (exit 2 on the command line) rather than a decoder's traceback or, worse, rows
read wrong and reported as changes.

Two levels: :func:`check_parts`, run whenever a dataset is opened, reads each part's footer
(a few hundred bytes: truncated, empty, not Parquet, wrong columns) and refuses files that do
not belong in a table; :func:`verify_part` reads a whole part against the CRC-32 the writer
stored in its footer, which is what finds a bit flipped inside a page (the decoders take most of
those for valid data). The command line verifies every part it reads; it costs one read of each
file, a few percent of what decoding it costs.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Iterable, Mapping
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from pinscan.dataset.names import CHECKSUM_KEY, PART, parts  # noqa: F401 (re-exported)
from pinscan.dataset.schema import (
    ADDED_LATER,
    CERTIFICATES,
    CHAINS,
    CHAINS_SCHEMA,
    ENDPOINTS,
    ENDPOINTS_SCHEMA,
    PIN_RESULTS,
    PIN_RESULTS_SCHEMA,
    certificates_schema,
)
from pinscan.errors import DatasetError

_CHUNK = 1 << 20


@functools.cache
def schema_of(table: str) -> pl.Schema:
    schemas = {
        ENDPOINTS: ENDPOINTS_SCHEMA,
        CHAINS: CHAINS_SCHEMA,
        CERTIFICATES: certificates_schema(),
        PIN_RESULTS: PIN_RESULTS_SCHEMA,
    }
    return schemas[table]


def table_parts(directory: Path, table: str) -> list[Path]:
    """:func:`parts`, refusing anything else in the directory but hidden files (temporaries of
    a running scan) and ``_`` files (Spark's and Hadoop's markers)."""
    found = []
    if directory.is_dir():
        for entry in directory.iterdir():
            if PART.match(entry.name) and entry.is_file():
                found.append(entry)
            elif not entry.name.startswith((".", "_")):
                msg = (
                    f"does not belong in the {table} table, which holds only pinscan's "
                    "part-NNNNNN.parquet files; move it out"
                )
                raise DatasetError(str(entry), msg)
    return sorted(found)


def check_parts(parts_of: Mapping[str, Iterable[Path]], *, verify: bool = False) -> None:
    """Checks each table's parts (``{table: parts}``): their footers and columns, and with
    ``verify`` every byte against its checksum."""
    for table, paths in parts_of.items():
        schema = schema_of(table)
        for path in paths:
            check_part(path, table, schema)
            if verify:
                verify_part(path)


def check_part(path: Path, table: str, schema: pl.Schema) -> None:
    """A part whose footer reads and whose columns are the table's."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise DatasetError(str(path), f"unreadable: {exc.strerror}") from None
    if size == 0:
        raise DatasetError(str(path), "damaged: an empty file (0 bytes), not a Parquet part")
    try:
        found = pl.read_parquet_schema(path)
    except (OSError, pl.exceptions.PolarsError) as exc:
        msg = f"damaged: not a whole Parquet file ({_first_line(exc)})"
        raise DatasetError(str(path), msg) from None
    # A column added to the format later is missing from parts an older pinscan wrote.
    optional = ADDED_LATER.get(table, frozenset())
    expected = {c: t for c, t in schema.items() if c in found or c not in optional}
    # An enum (the statuses) that has grown since the part was written reads as it is now.
    found = pl.Schema(
        {c: expected[c] if _older(t, expected.get(c)) else t for c, t in found.items()}
    )
    if dict(found) != expected:
        msg = f"not a part of the {table} table: {_difference(found, pl.Schema(expected))}"
        raise DatasetError(str(path), msg)


def _older(found: pl.DataType, expected: pl.DataType | None) -> bool:
    """Whether ``found`` is an enum that ``expected`` extends (its values, then more): enums
    only grow at the end, as :data:`pinscan.records.STATUSES` did with STARTTLS."""
    if not isinstance(found, pl.Enum) or not isinstance(expected, pl.Enum) or found == expected:
        return False
    old, new = found.categories.to_list(), expected.categories.to_list()
    return new[: len(old)] == old


def scan_parts(paths: list[Path], table: str, **options: object) -> pl.LazyFrame:
    """The parts of a table as one lazy frame of its schema: columns added later read as null,
    and parts written when an enum had fewer values read with today's (polars refuses to read
    one enum as another, so those parts are scanned apart and cast). Keeps the parts' order."""
    schema = schema_of(table)
    enums = [c for c, t in schema.items() if isinstance(t, pl.Enum)]
    if table != ENDPOINTS or not enums:
        return pl.scan_parquet(paths, schema=schema, missing_columns="insert", **options)  # type: ignore[arg-type]
    runs: list[tuple[tuple, list[Path]]] = []
    for path in paths:
        found = pl.read_parquet_schema(path)
        key = tuple(str(found.get(c, schema[c])) for c in enums)
        if runs and runs[-1][0] == key:
            runs[-1][1].append(path)
        else:
            runs.append((key, [path]))
    frames = []
    for _, run in runs:
        found = pl.read_parquet_schema(run[0])
        own = pl.Schema({c: found.get(c, t) if c in enums else t for c, t in schema.items()})
        frame = pl.scan_parquet(run, schema=own, missing_columns="insert", **options)  # type: ignore[arg-type]
        if own != schema:
            frame = frame.with_columns(pl.col(c).cast(schema[c]) for c in enums)
        frames.append(frame)
    return frames[0] if len(frames) == 1 else pl.concat(frames)


def verify_part(path: Path, *, decode: bool = False) -> None:
    """Reads ``path`` whole against the checksum in its footer. A part written before pinscan
    wrote checksums has none: with ``decode`` it is decoded instead, which finds what the
    decoder notices."""
    try:
        entry = (pq.read_metadata(path).metadata or {}).get(CHECKSUM_KEY.encode())
    except (OSError, pa.ArrowException) as exc:
        raise DatasetError(str(path), f"damaged: not a whole Parquet file ({exc})") from None
    if entry is None:
        if decode:
            try:
                pl.read_parquet(path)
            except (OSError, pl.exceptions.PolarsError) as exc:
                raise DatasetError(str(path), f"damaged: {_first_line(exc)}") from None
        return
    try:
        crc_hex, size = entry.decode().split()
        expected, left = int(crc_hex, 16), int(size)
    except ValueError:
        raise DatasetError(str(path), f"damaged: an unreadable checksum entry {entry!r}") from None
    crc = 0
    try:
        with path.open("rb") as f:
            while left and (chunk := f.read(min(left, _CHUNK))):
                crc = zlib.crc32(chunk, crc)
                left -= len(chunk)
    except OSError as exc:
        raise DatasetError(str(path), f"unreadable: {exc.strerror}") from None
    if left or crc != expected:
        msg = (
            "damaged: its bytes do not match the checksum written with them "
            "(a flipped bit, a bad copy); restore it from a backup, or scan again"
        )
        raise DatasetError(str(path), msg)


def read_column(paths: list[Path], column: str, table: str) -> pl.Series:
    """One column of a table's parts, with a damaged part named, not a decoder's error."""
    schema = schema_of(table)
    if not paths:
        return pl.Series(column, [], dtype=schema[column])
    try:
        frame = scan_parts(paths, table)
        return frame.select(column).collect()[column]
    except pl.exceptions.PolarsError as exc:
        raise damaged(paths) or DatasetError(str(paths[0].parent), _first_line(exc)) from None


def damaged(paths: Iterable[Path]) -> DatasetError | None:
    """The error of the first part of ``paths`` that is damaged (verified, or decoded when it has
    no checksum), if any: what the command line looks for when a decoder fails."""
    for path in paths:
        try:
            verify_part(path, decode=True)
        except DatasetError as exc:
            return exc
    return None


def _difference(found: pl.Schema, expected: pl.Schema) -> str:
    def listed(label: str, names: list[str]) -> str:
        return f"{label} {', '.join(names[:3])}" + (" ..." if len(names) > 3 else "")

    what = []
    if missing := [c for c in expected if c not in found]:
        what.append(listed("no column", missing))
    if extra := [c for c in found if c not in expected]:
        what.append(listed("unknown column", extra))
    retyped = [c for c in expected if c in found and found[c] != expected[c]]
    what += [f"{c} is {found[c]}, not {expected[c]}" for c in retyped[:2]]
    return "; ".join(what)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
