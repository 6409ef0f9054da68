# SPDX-License-Identifier: Apache-2.0
"""The names of a dataset's layout: its format, its tables, ``scan.json`` and the part files.
Plain constants, without polars, so that what writes a dataset's directory loads nothing heavy
before the scan's first connection; the column types are :mod:`~.schema`'s."""

from __future__ import annotations

import re
from pathlib import Path

#: Layout version of the dataset directory; bumped on any incompatible change. A new column is
#: not one: it goes in ``ADDED_LATER``, and the reader reads it as null from parts written before
#: it, so every dataset of this format still opens.
FORMAT = 1

ENDPOINTS = "endpoints"
CHAINS = "chains"
CERTIFICATES = "certificates"
#: The tables a scan writes as it goes.
SCAN_TABLES = (ENDPOINTS, CHAINS, CERTIFICATES)
#: Written after the scan when policies judge it: one row per (endpoint, policy).
PIN_RESULTS = "pin_results"
#: Every table a dataset can have.
TABLES = (*SCAN_TABLES, PIN_RESULTS)
META_FILE = "scan.json"
#: The chains table's ``source``: the chain the endpoint presented, or the one verification built.
CHAIN_SOURCES = ("presented", "verified")

#: Columns added to format 1 after its first release, by table: parts written by an older pinscan
#: lack them, which is no damage.
ADDED_LATER: dict[str, frozenset[str]] = {
    ENDPOINTS: frozenset({"verify_detail", "store_paths", "starttls", "engine"}),
    CERTIFICATES: frozenset({"error_kind"}),
    PIN_RESULTS: frozenset({"store"}),
}

#: A history's directory of scan markers: a directory that has one is a history.
HISTORY_SCANS = "_scans"

#: A part file of a table: ``part-000001.parquet``.
PART = re.compile(r"^part-(\d{6})\.parquet$")
#: The footer entry of a part with the CRC-32 of its first N bytes (all but the footer), as
#: ``"<crc32 hex> <N>"``.
CHECKSUM_KEY = "pinscan.crc32"


def is_history(path: Path) -> bool:
    """``path`` is a history (``pinscan scan --history``; see :mod:`~.history`)."""
    return (path / HISTORY_SCANS).is_dir()


def parts(directory: Path) -> list[Path]:
    """The part files of a table directory, in order (none when it is missing)."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if PART.match(p.name))


__all__ = [
    "ADDED_LATER",
    "CERTIFICATES",
    "CHAINS",
    "CHAIN_SOURCES",
    "CHECKSUM_KEY",
    "ENDPOINTS",
    "FORMAT",
    "HISTORY_SCANS",
    "META_FILE",
    "PART",
    "PIN_RESULTS",
    "SCAN_TABLES",
    "TABLES",
    "is_history",
    "parts",
]
