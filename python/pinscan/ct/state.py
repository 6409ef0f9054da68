# SPDX-License-Identifier: Apache-2.0
"""The state directory: per-log verified positions, the alerts table, cached issuers.

Layout (see docs/ct.md)::

    STATE/lock                    flock: one run at a time
    STATE/logs/<log id hex>.json  per log: verified tree head and compact range, and the progress
                                  of an unfinished catch-up
    STATE/alerts/*.parquet        the alerts table: one part per log and starting position
    STATE/issuers/<sha256>.der    static-ct-api issuers (immutable, cached forever)
    STATE/crtsh.json              crt.sh ids already looked at

Every file is written atomically (temporary, fsync, rename). A log's alerts are written before its
position, in a part named by the log and the position the stretch started from; a run killed in
between starts from the same position, finds the same alerts and rewrites that same part: nothing
is skipped and nothing recorded twice. A long catch-up also saves its :class:`Progress` now and
then, in the same file (one atomic write keeps the position and its progress consistent).
"""

from __future__ import annotations

import base64
import datetime as dt
import fcntl
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from pinscan.atomic import atomic_write, atomic_write_json, remove_temporaries
from pinscan.ct.loglist import Log
from pinscan.ct.merkle import CompactRange
from pinscan.ct.signatures import TreeHead
from pinscan.ct.watch import ALERT_SCHEMA
from pinscan.errors import StateError


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


@dataclass
class Progress:
    """Entries downloaded past the verified position but not verified yet (certspotter's download
    position): ``range`` covers ``[0, range.size)`` and ``target`` is the signature-verified tree
    head they are being checked against. ``alerts`` holds what they matched, unreported until the
    root of ``target`` is recomputed; ``matching`` fingerprints the watch list and allowed keys
    that produced them, so a run with other ones starts the catch-up again instead."""

    target: TreeHead
    range: CompactRange
    alerts: pl.DataFrame
    matching: str

    def to_json(self) -> dict[str, Any]:
        # Parquet keeps the alert columns' types exactly; embedding it keeps one file per log.
        buffer = io.BytesIO()
        self.alerts.write_parquet(buffer)
        return {
            "target": {
                "size": self.target.size,
                "root": base64.b64encode(self.target.root).decode(),
                "timestamp": self.target.timestamp,
            },
            "range": self.range.to_json(),
            "alerts_parquet": base64.b64encode(buffer.getvalue()).decode(),
            "matching": self.matching,
        }

    @classmethod
    def from_json(cls, value: dict[str, Any], verified: Verified | None) -> Progress:
        target = value["target"]
        progress = cls(
            TreeHead(
                int(target["size"]), base64.b64decode(target["root"]), int(target["timestamp"])
            ),
            CompactRange.from_json(value["range"]),
            pl.read_parquet(io.BytesIO(base64.b64decode(value["alerts_parquet"]))),
            str(value["matching"]),
        )
        start = verified.size if verified else 0
        if not start <= progress.range.size <= progress.target.size:
            raise ValueError(
                f"progress at {progress.range.size} is outside [{start}, {progress.target.size}]"
            )
        if progress.alerts.schema != pl.Schema(ALERT_SCHEMA):
            raise ValueError("the pending alerts do not have the alerts table's columns")
        return progress


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

    def load_log(self, log: Log) -> tuple[Verified | None, Progress | None]:
        """The log's verified position (None before its first verified run) and the progress of
        an unfinished catch-up beyond it, if any."""
        path = self._log_file(log)
        try:
            value = json.loads(path.read_text(encoding="utf-8"))
            verified = Verified.from_json(value["verified"]) if value["verified"] else None
            progress = value.get("progress")
            return verified, Progress.from_json(progress, verified) if progress else None
        except FileNotFoundError:
            return None, None
        except (OSError, ValueError, KeyError, TypeError, pl.exceptions.PolarsError) as exc:
            raise StateError(f"{path}: unreadable state of {log.label}: {exc}") from exc

    def save_verified(self, log: Log, verified: Verified) -> None:
        """Moves the position, which also drops any progress (it is below the new position)."""
        self._save(log, verified, None)

    def save_progress(self, log: Log, verified: Verified | None, progress: Progress) -> None:
        """Saves a catch-up's progress next to the unchanged verified position."""
        self._save(log, verified, progress)

    def forget_progress(self, log: Log, verified: Verified | None) -> None:
        """Drops unverified progress (it disagrees with what the log signed); a log never verified
        is left with no state at all. Without saved progress nothing is written: a refused
        update leaves the state exactly as it was, its ``updated`` time included."""
        if verified is None:
            self._log_file(log).unlink(missing_ok=True)
        elif self._has_progress(log):
            self._save(log, verified, None)

    def _has_progress(self, log: Log) -> bool:
        path = self._log_file(log)
        try:
            return bool(json.loads(path.read_text(encoding="utf-8")).get("progress"))
        except FileNotFoundError:
            return False
        except (OSError, ValueError, AttributeError) as exc:
            raise StateError(f"{path}: unreadable state of {log.label}: {exc}") from exc

    def _save(self, log: Log, verified: Verified | None, progress: Progress | None) -> None:
        value: dict[str, Any] = {
            "log": {"description": log.description, "url": log.url, "kind": log.kind},
            "verified": verified.to_json() if verified else None,
            "updated": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        if progress is not None:
            value["progress"] = progress.to_json()
        atomic_write_json(self._log_file(log), value)

    # --- alerts -----------------------------------------------------------------------------

    def alert_parts(self) -> dict[str, pl.DataFrame]:
        """Every alert recorded so far, by part name."""
        parts = sorted((self.path / "alerts").glob("[!.]*.parquet"))
        out = {}
        for part in parts:
            try:
                out[part.stem] = pl.read_parquet(part)
            except (OSError, pl.exceptions.PolarsError) as exc:
                reason = (str(exc).strip() or type(exc).__name__).splitlines()[0]
                raise StateError(f"{part}: unreadable alerts part: {reason}") from None
            if out[part.stem].schema != pl.Schema(ALERT_SCHEMA):
                raise StateError(f"{part}: not an alerts part (its columns are not the alerts')")
        return out

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
