# SPDX-License-Identifier: Apache-2.0
"""``scan.json``, what a scan says of itself (format, version, scan id, arguments, times, counts,
complete or not), and how scans are named."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from pathlib import Path
from typing import Any

from pinscan.dataset.names import FORMAT, META_FILE
from pinscan.errors import DatasetError


def new_scan_id() -> str:
    """A new scan's id: its UTC start to the second, then random hex, so ids sort by time and two
    scans started in the same second on two machines still differ."""
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ-") + secrets.token_hex(3)


def now() -> str:
    """The time as ``scan.json`` records it: ISO 8601, UTC, milliseconds."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def read_meta(root: Path) -> dict[str, Any]:
    """The ``scan.json`` of the dataset in ``root``; :class:`DatasetError` when there is none, it
    is unreadable, or of a format this pinscan does not read."""
    path = root / META_FILE
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        msg = f"no scan here ({META_FILE} is missing)"
        raise DatasetError(str(root), msg) from None
    except (OSError, ValueError) as exc:
        raise DatasetError(str(path), f"unreadable: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else None
        msg = f"dataset format {found!r}; this pinscan reads format {FORMAT}"
        raise DatasetError(str(root), msg)
    return meta


__all__ = ["new_scan_id", "now", "read_meta"]
