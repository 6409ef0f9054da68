# SPDX-License-Identifier: Apache-2.0
"""A history: every scheduled scan of a fleet in one hive-partitioned dataset, so that DuckDB,
pyarrow and Spark read each table across all scans as is, and ``pinscan.open`` reads the latest.

Layout of ``H/``::

    _scans/<scan_id>.json                          commit marker: the scan's scan.json + scan_date
    _staging/<scan_id>/                            a scan in progress: a plain dataset directory
    endpoints/scan_date=YYYY-MM-DD/scan_id=<id>/part-NNNNNN.parquet
    chains/..., certificates/..., pin_results/...  partitioned the same way

A scan runs in ``_staging/<scan_id>/`` exactly as ``pinscan scan -o`` would (so ``--resume``
works unchanged). Once complete, each table's directory is renamed into its partition (one atomic
rename per table), then the marker is written, with the number of parts of each table so that
readers notice one gone missing. Readers list the markers, never the partitions, so a scan exists
for them exactly when its marker does; a commit killed half way is finished by the next
``--resume``. Underscore directories are skipped by Spark and pyarrow.

One scan at a time: a scan holds the history's lock (``H/.pinscan.lock``, see
:mod:`pinscan.dataset._lock`) from its start (:func:`begin`) to its commit, and a second one is
refused. Running the scan in its stage is :mod:`pinscan.scanner.history`'s job; this module only
knows where things are.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from pinscan import atomic
from pinscan.dataset import _integrity, _lock, outputs, shards
from pinscan.dataset.meta import new_scan_id, read_meta
from pinscan.dataset.names import HISTORY_SCANS, is_history
from pinscan.dataset.schema import META_FILE, PIN_RESULTS, TABLES
from pinscan.errors import DatasetError

SCANS = HISTORY_SCANS
STAGING = "_staging"
#: Where a history is written.
ENTRIES = frozenset({SCANS, STAGING, *TABLES, _lock.LOCK_FILE})
#: The partition columns, with the types every reader gets them as.
PARTITION_SCHEMA = pl.Schema({"scan_date": pl.Date, "scan_id": pl.String})

SCANS_SCHEMA = pl.Schema(
    {
        "scan_id": pl.String,
        "scan_date": pl.Date,
        "started_at": pl.Datetime("us", "UTC"),
        "finished_at": pl.Datetime("us", "UTC"),
        "complete": pl.Boolean,
        "targets": pl.Int64,
        "endpoints": pl.Int64,
        "pinscan_version": pl.String,
    }
)


def committed(history: Path) -> list[dict[str, Any]]:
    """The markers of every committed scan, oldest first (by ``started_at``)."""
    metas = []
    for marker in (history / SCANS).glob("*.json"):
        try:
            metas.append(json.loads(marker.read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            raise DatasetError(str(marker), f"unreadable: {exc}") from None
    return sorted(metas, key=lambda m: (m["started_at"], m["scan_id"]))


def scans_frame(metas: Iterable[dict[str, Any]]) -> pl.DataFrame:
    """One row per scan: what ``ScanDataset.scans`` shows."""
    rows = [
        {
            "scan_id": m["scan_id"],
            "scan_date": dt.date.fromisoformat(scan_date(m)),
            "started_at": _time(m.get("started_at")),
            "finished_at": _time(m.get("finished_at")),
            "complete": bool(m.get("complete")),
            "targets": m.get("counts", {}).get("targets"),
            "endpoints": m.get("counts", {}).get("endpoints"),
            "pinscan_version": m.get("pinscan_version"),
        }
        for m in metas
    ]
    return pl.DataFrame(rows, schema=SCANS_SCHEMA)


def scan_date(meta: dict[str, Any]) -> str:
    """The UTC date the scan started: its ``scan_date`` partition."""
    if "scan_date" in meta:
        return meta["scan_date"]
    return _time(meta["started_at"]).date().isoformat()  # type: ignore[union-attr]


def partition(history: Path, table: str, meta: dict[str, Any]) -> Path:
    return history / table / f"scan_date={scan_date(meta)}" / f"scan_id={meta['scan_id']}"


def staged(history: Path) -> list[tuple[Path, dict[str, Any]]]:
    """Scans in ``_staging`` without a marker (interrupted scans or commits), oldest first; a
    scan of several processes (``--processes``) killed before its shards were folded is one."""
    out = []
    directory = history / STAGING
    if directory.is_dir():
        for stage in directory.iterdir():
            if _marker(history, stage.name).exists():
                continue
            if (stage / META_FILE).is_file():
                out.append((stage, read_meta(stage)))
            elif shards.is_processes(stage):
                manifest = shards.read_manifest(stage)
                meta = {k: manifest[k] for k in ("scan_id", "started_at")}
                out.append((stage, {**meta, "complete": False}))
    return sorted(out, key=lambda sm: (sm[1]["started_at"], sm[1]["scan_id"]))


def prepare(history: Path) -> None:
    """Makes ``history`` a history: it must be missing, empty or one already, and hold no
    symbolic link where pinscan writes."""
    if (history / META_FILE).exists():
        msg = "is a dataset directory (pinscan scan -o); give --history a directory of its own"
        raise DatasetError(str(history), msg)
    if history.exists() and not history.is_dir():
        raise DatasetError(str(history), "is not a directory; give --history a directory")
    if history.is_dir() and not is_history(history) and any(history.iterdir()):
        raise DatasetError(str(history), "is neither empty nor a pinscan history")
    for name in ENTRIES:
        outputs.refuse_link(history / name)
    with outputs.writing(history):
        (history / SCANS).mkdir(parents=True, exist_ok=True)
        (history / STAGING).mkdir(exist_ok=True)


def lock(history: Path, scan_id: str | None) -> _lock.Lock:
    """The history's lock, for one scan (or audit) from its start to its commit."""
    return _lock.acquire(history, scan_id=scan_id, what="history scan")


def commit(history: Path, stage: Path) -> dict[str, Any]:
    """Moves a complete staged scan into the partitions and writes its marker; returns the
    marker. Safe to run again on a stage whose commit was killed."""
    meta = read_meta(stage)
    if not meta.get("complete"):
        msg = "the scan did not complete; finish it with pinscan scan --history ... --resume"
        raise DatasetError(str(stage), msg)
    parts = {}
    with outputs.writing(history):
        for table in TABLES:
            source = stage / table
            target = partition(history, table, meta)
            if source.is_dir():
                atomic.remove_temporaries(source)
                if target.exists():
                    raise DatasetError(str(target), "already holds this scan's table")
                outputs.refuse_link(target.parent)
                target.parent.mkdir(parents=True, exist_ok=True)
                source.rename(target)
                atomic.fsync_dir(target.parent)
            elif not target.is_dir():  # not moved by an earlier, killed commit either
                if table != PIN_RESULTS:
                    msg = f"the scan has no {table} table: it cannot be committed"
                    raise DatasetError(str(source), msg)
                continue
            parts[table] = len(_integrity.parts(target))
        marker = {**meta, "scan_date": scan_date(meta), "parts": parts}
        atomic.atomic_write_json(_marker(history, meta["scan_id"]), marker)
        shutil.rmtree(stage)
    return marker


@dataclass(frozen=True, slots=True)
class Stage:
    """Where one scan of a history runs, in ``_staging/<scan_id>/``, with the history's lock held
    until :meth:`release` (after the commit)."""

    path: Path
    #: Continue an interrupted scan there (``--resume``) rather than start a new one.
    resume: bool
    #: The scan there completed: only its commit is left (a commit was killed).
    scanned: bool
    lock: _lock.Lock

    @property
    def scan_id(self) -> str:
        return self.path.name

    def release(self) -> None:
        self.lock.release()


def begin(history: Path, *, resume: bool) -> Stage:
    """Takes the history's lock and picks where the scan runs: a new stage, or with ``resume``
    the newest staged scan (which may only need its commit)."""
    prepare(history)
    scan_id = None if resume else new_scan_id()
    held = lock(history, scan_id)
    try:
        # What a commit killed after its marker left, now that no commit can be running.
        with outputs.writing(history):
            for stage in (history / STAGING).iterdir():
                if _marker(history, stage.name).exists():
                    shutil.rmtree(stage)
        if scan_id is not None:
            return Stage(history / STAGING / scan_id, resume=False, scanned=False, lock=held)
        pending = staged(history)
        if not pending:
            raise DatasetError(str(history), "no interrupted scan to resume")
        path, meta = pending[-1]
        return Stage(path, resume=True, scanned=bool(meta.get("complete")), lock=held)
    except BaseException:
        held.release()
        raise


def _marker(history: Path, scan_id: str) -> Path:
    return history / SCANS / f"{scan_id}.json"


def _time(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    moment = dt.datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


__all__ = [
    "PARTITION_SCHEMA",
    "SCANS",
    "STAGING",
    "Stage",
    "begin",
    "commit",
    "committed",
    "is_history",
    "lock",
    "partition",
    "prepare",
    "scan_date",
    "scans_frame",
    "staged",
]
