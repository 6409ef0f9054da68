# SPDX-License-Identifier: Apache-2.0
"""The state directory: per-log verified positions, the alerts table, cached issuers.

Layout (see docs/ct.md)::

    STATE/lock                    flock: one run at a time
    STATE/logs/<log id hex>.json  verified tree head and compact range, per log
    STATE/alerts/*.parquet        the alerts table: one part per log and starting position
    STATE/issuers/<sha256>.der    static-ct-api issuers (immutable, cached forever)
    STATE/crtsh.json              crt.sh ids already looked at

Every file is written atomically (temporary, fsync, rename). A log's alerts are written before its
position, in a part named by the log and the position the stretch started from; a run killed in
between starts from the same position, finds the same alerts and rewrites that same part: nothing
is skipped and nothing recorded twice.
"""

from __future__ import annotations

import base64
import datetime as dt
import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from pinscan.ct.loglist import Log
from pinscan.ct.merkle import CompactRange
from pinscan.dataset._files import atomic_write, atomic_write_json, remove_temporaries
from pinscan.errors import PinscanError


class StateError(PinscanError):
    """A state directory that is locked, unwritable or holds a file pinscan cannot read."""


@dataclass
class Verified:
    """The last tree head whose root the monitor recomputed itself: entries below ``size`` are
    processed, and ``range`` lets the next run continue hashing from there."""

    size: int
    root: bytes
    timestamp: int
    range: CompactRange

    def to_json(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "root": base64.b64encode(self.root).decode(),
            "timestamp": self.timestamp,
            "range": self.range.to_json(),
        }

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Verified:
        verified = cls(
            int(value["size"]),
            base64.b64decode(value["root"]),
            int(value["timestamp"]),
            CompactRange.from_json(value["range"]),
        )
        if verified.range.size != verified.size or verified.range.root() != verified.root:
            raise ValueError("the compact range does not give the saved root")
        return verified


class StateDir:
    """An opened (and locked) state directory. Use as a context manager."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock_fd: int | None = None

    def __enter__(self) -> StateDir:
        try:
            for sub in ("logs", "alerts", "issuers"):
                (self.path / sub).mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StateError(f"{self.path}: cannot create the state directory: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StateError(f"{self.path}: another pinscan ct run holds this state") from None
        self._lock_fd = fd
        for sub in ("logs", "alerts", "issuers", "."):
            remove_temporaries(self.path / sub)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # --- per-log positions ------------------------------------------------------------------

    def _log_file(self, log: Log) -> Path:
        return self.path / "logs" / f"{log.id_hex}.json"

    def load_verified(self, log: Log) -> Verified | None:
        path = self._log_file(log)
        try:
            value = json.loads(path.read_text(encoding="utf-8"))
            return Verified.from_json(value["verified"])
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StateError(f"{path}: unreadable state of {log.label}: {exc}") from exc

    def save_verified(self, log: Log, verified: Verified) -> None:
        atomic_write_json(
            self._log_file(log),
            {
                "log": {"description": log.description, "url": log.url, "kind": log.kind},
                "verified": verified.to_json(),
                "updated": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            },
        )

    # --- alerts -----------------------------------------------------------------------------

    def alert_parts(self) -> dict[str, pl.DataFrame]:
        """Every alert recorded so far, by part name."""
        parts = sorted((self.path / "alerts").glob("[!.]*.parquet"))
        return {part.stem: pl.read_parquet(part) for part in parts}

    def write_alerts(self, name: str, alerts: pl.DataFrame) -> None:
        atomic_write(self.path / "alerts" / f"{name}.parquet", alerts.write_parquet)

    # --- issuers and crt.sh -----------------------------------------------------------------

    def issuer(self, sha256_hex: str) -> bytes | None:
        try:
            return (self.path / "issuers" / f"{sha256_hex}.der").read_bytes()
        except FileNotFoundError:
            return None

    def save_issuer(self, sha256_hex: str, der: bytes) -> None:
        atomic_write(self.path / "issuers" / f"{sha256_hex}.der", lambda tmp: tmp.write_bytes(der))

    def crtsh_seen(self) -> set[int]:
        try:
            return set(json.loads((self.path / "crtsh.json").read_text())["seen_ids"])
        except FileNotFoundError:
            return set()
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StateError(f"{self.path / 'crtsh.json'}: unreadable: {exc}") from exc

    def save_crtsh_seen(self, ids: set[int]) -> None:
        atomic_write_json(self.path / "crtsh.json", {"seen_ids": sorted(ids)})
