# SPDX-License-Identifier: Apache-2.0
"""Inventory files and streams: opening (paths, stdin, file objects, pipes spooled to disk), the
format (suffix, or given), magic-number checks, and text lines, CSV records and Parquet rows handed
to :mod:`~pinscan.inventory.grammar` one at a time."""

from __future__ import annotations

import csv
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Literal, cast

from pinscan.errors import InputError
from pinscan.inventory.grammar import printable, quoted, row_item, text_item
from pinscan.records import BadTarget, Target

Format = Literal["text", "csv", "parquet"]
Source = str | os.PathLike[str] | IO[bytes]

_FORMATS = ("text", "csv", "parquet")
_SUFFIXES: dict[str, Format] = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
_COLUMNS = ("host", "port", "sni", "ip", "target", "starttls")
# Signatures of files that are not text, to fail with a reason instead of a stream of bad lines.
_MAGIC = (
    (b"PAR1", "a Parquet file (name it `.parquet`, or give the format)"),
    (b"\x1f\x8b", "gzip-compressed (decompress it, or pipe it to `-`)"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed (decompress it, or pipe it to `-`)"),
    (b"BZh", "bzip2-compressed (decompress it, or pipe it to `-`)"),
    (b"\xfd7zXZ", "xz-compressed (decompress it, or pipe it to `-`)"),
    (b"PK\x03\x04", "a zip archive (export a spreadsheet as CSV)"),
)
# No inventory line is this long. Reading one whole could exhaust memory when a binary file is
# given by mistake, so such a line is reported and the rest of it skipped unread.
_MAX_LINE = 65536
_PARQUET_BATCH = 65536


def read_items(
    file: IO[bytes],
    format: Format,
    source: str,
    ports: tuple[int, ...],
    starttls: str | None = None,
) -> Iterator[Target | BadTarget]:
    """The targets and bad targets of an open inventory, in file order, repeats included. The
    header (CSV) or schema (Parquet) is read now: its errors are the caller's."""
    if format == "parquet":
        return _parquet_items(file, source, ports, starttls)
    _check_magic(file, source)
    if format == "csv":
        return _csv_items(file, source, ports, starttls)
    return _text_items(file, ports, starttls)


def _lines(file: IO[bytes]) -> Iterator[tuple[int, str, bool]]:
    """Numbered lines, with undecodable bytes kept (PEP 383) for the parsers to report, and
    whether each is whole: of a line longer than ``_MAX_LINE`` only the start is kept."""
    number = 0
    while raw := file.readline(_MAX_LINE):
        number += 1
        whole = len(raw) < _MAX_LINE or raw.endswith(b"\n")
        rest = raw
        while rest and not rest.endswith(b"\n") and len(rest) == _MAX_LINE:
            rest = file.readline(_MAX_LINE)
        text = raw.decode("utf-8", "surrogateescape")
        # A byte order mark, as spreadsheets write before CSV headers.
        yield number, text.removeprefix("\ufeff") if number == 1 else text, whole


def _too_long(line: int, text: str) -> BadTarget:
    error = f"line is longer than {_MAX_LINE} bytes"
    return BadTarget(line=line, target=printable(text[:80].strip()) + "...", error=error)


def _text_items(
    file: IO[bytes], ports: tuple[int, ...], starttls: str | None
) -> Iterator[Target | BadTarget]:
    for line, text, whole in _lines(file):
        item = text_item(line, text, ports, starttls) if whole else _too_long(line, text)
        if isinstance(item, list):
            yield from item
        elif item is not None:
            yield item


def _csv_items(
    file: IO[bytes], source: str, ports: tuple[int, ...], starttls: str | None
) -> Iterator[Target | BadTarget]:
    """Reads the header now (errors are the caller's) and returns the rows' iterator."""
    lines = _lines(file)
    for line, text, whole in lines:
        if not whole:
            raise InputError(source, f"line {line}: header longer than {_MAX_LINE} bytes")
        if text.strip():
            try:
                header = next(csv.reader([text.rstrip("\r\n")], strict=True))
            except csv.Error as exc:
                raise InputError(source, f"line {line}: not a CSV header ({exc})") from None
            return _csv_rows(lines, _columns(header, source), ports, starttls)
    return iter(())


def _csv_rows(
    lines: Iterator[tuple[int, str, bool]],
    columns: dict[str, int],
    ports: tuple[int, ...],
    starttls: str | None = None,
) -> Iterator[Target | BadTarget]:
    # One record per line, parsed on its own: a stray quote spoils its line only, and line
    # numbers are the file's.
    for line, text, whole in lines:
        if not whole:
            yield _too_long(line, text)
            continue
        shown = text.strip()
        if not shown:
            continue
        try:
            # Strict, and without the line end, so that a stray quote is an error, not a field
            # that runs to the end of the line.
            row = next(csv.reader([text.rstrip("\r\n")], strict=True))
        except csv.Error as exc:
            yield BadTarget(line=line, target=printable(shown), error=f"not a CSV record ({exc})")
            continue
        values = {name: row[i].strip() if i < len(row) else "" for name, i in columns.items()}
        item = row_item(line, shown, values, ports, starttls)
        if isinstance(item, list):
            yield from item
        elif item is not None:
            yield item


def _parquet_items(
    file: IO[bytes], source: str, ports: tuple[int, ...], starttls: str | None
) -> Iterator[Target | BadTarget]:
    """Reads the schema now (errors are the caller's) and returns the rows' iterator."""
    # Imported here: only Parquet inventories need pyarrow, and it takes a while to import.
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(file)
    except pa.ArrowException as exc:
        raise InputError(source, f"not a Parquet file ({exc})") from None
    names = parquet.schema_arrow.names
    columns = _columns(names, source)
    selected = {name: names[i] for name, i in columns.items()}
    return _parquet_rows(parquet, selected, source, ports, starttls)


def _parquet_rows(
    parquet: Any,
    columns: dict[str, str],
    source: str,
    ports: tuple[int, ...],
    starttls: str | None = None,
) -> Iterator[Target | BadTarget]:
    import pyarrow as pa

    names = list(columns.values())
    line = 0
    try:
        for batch in parquet.iter_batches(batch_size=_PARQUET_BATCH, columns=names):
            cells = [batch.column(name).to_pylist() for name in names]
            for row in zip(*cells, strict=True):
                line += 1
                values = {name: _cell(value) for name, value in zip(columns, row, strict=True)}
                item = row_item(line, ",".join(values.values()), values, ports, starttls)
                if isinstance(item, list):
                    yield from item
                elif item is not None:
                    yield item
    except pa.ArrowException as exc:
        raise InputError(source, f"row {line + 1}: cannot read the Parquet file ({exc})") from None


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape").strip()
    if isinstance(value, float) and value.is_integer():
        # Ports become floats in columns written from pandas with missing values.
        return str(int(value))
    return str(value).strip()


def _columns(header: list[str], source: str) -> dict[str, int]:
    """The known columns of a header, by name, with their positions."""
    columns: dict[str, int] = {}
    for index, name in enumerate(header):
        key = name.strip().lower()
        if key in _COLUMNS:
            if key in columns:
                raise InputError(source, f"column `{key}` appears twice")
            columns[key] = index
    if "target" in columns and columns.keys() & {"host", "ip", "port"}:
        msg = "a `target` column cannot be combined with `host`, `ip` or `port`"
        raise InputError(source, msg)
    if not columns.keys() & {"host", "ip", "target"}:
        found = ", ".join(quoted(printable(name)) for name in header[:10])
        msg = (
            f"no `host`, `ip` or `target` column (the header has {found or 'nothing'})"
            "\n\nHint: the first row names the columns, as in `host,port,sni,ip`."
        )
        raise InputError(source, msg)
    return columns


def _check_magic(file: IO[bytes], source: str) -> None:
    if file.seekable():
        start = file.tell()
        head = file.read(8)
        file.seek(start)
    else:
        peek = getattr(file, "peek", None)
        head = peek(8)[:8] if peek else b""
    for magic, what in _MAGIC:
        if head.startswith(magic):
            raise InputError(source, f"not a text inventory: {what}")


@contextmanager
def opened(source: Source, *, seekable: bool) -> Iterator[IO[bytes]]:
    """The source as a binary file, which can seek if ``seekable``; only paths are closed."""
    if isinstance(source, str | os.PathLike) and source != "-":
        with open(source, "rb") as file:
            yield file
        return
    stream = sys.stdin.buffer if source == "-" else cast(IO[bytes], source)
    if isinstance(stream.read(0), str):
        msg = "a text-mode file object: open it in binary mode"
        raise InputError(source_name(source), msg)
    if seekable and not stream.seekable():
        # A pipe: copied to an anonymous file on disk, not memory, to be read twice or seeked.
        with tempfile.TemporaryFile() as spool:
            shutil.copyfileobj(stream, spool)
            spool.seek(0)
            yield spool
    else:
        yield stream


def source_name(source: Source) -> str:
    """The name of ``source`` in messages: its path, ``<stdin>``, or its file object's name."""
    if source == "-":
        return "<stdin>"
    if isinstance(source, str | os.PathLike):
        return os.fsdecode(source)
    name = getattr(source, "name", None)
    return name if isinstance(name, str) else f"<{type(source).__name__}>"


def format_of(source: Source, format: Format | None) -> Format:
    """The format given, checked, or else the one the source's suffix names."""
    if format is not None:
        if format not in _FORMATS:
            msg = f"`format` must be one of {', '.join(_FORMATS)}, not {format!r}"
            raise ValueError(msg)
        return format
    # "-" and stdin's "<stdin>" have no suffix: text.
    name = source if isinstance(source, str | os.PathLike) else getattr(source, "name", "")
    if not isinstance(name, str | os.PathLike):
        return "text"
    return _SUFFIXES.get(Path(name).suffix.lower(), "text")
