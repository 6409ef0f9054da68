# SPDX-License-Identifier: Apache-2.0
"""The layout of a sharded scan (``--shard I/N``, ``--dask``): N shards, each a plain dataset
directory written whole at a path of its own, and a manifest.

Layout of ``OUT/``::

    shards.json                               the manifest: N, scan_id, arguments, finished shards
    shards/shard-0003-of-0016/                one finished shard: a plain dataset directory
    _staging/shard-0003-of-0016.<token>/      an attempt at a shard in progress (or killed)
    _inventory/shard-0003-of-0016.parquet     a shard's targets, split by the Dask driver
    pin_results/part-000001.parquet           with policies, the verdicts of the whole scan

A target's shard is ``int(target_id, 16) % N``: ``target_id`` is a SHA-256 of the normalised
target, so the same inventory always splits the same way, on any machine and Python.

An attempt scans into ``_staging/`` exactly as ``pinscan scan -o`` writes a dataset, then
:func:`commit` renames the directory into ``shards/`` in one step. A finished shard is a directory
in ``shards/`` whose ``scan.json`` is complete and has the manifest's ``scan_id``: it appears whole
or not at all, and a retried shard replaces it (the last attempt to finish wins), so no target is
ever in two places. ``shards.json`` also lists the finished shards and their counts, updated under
a lock after each commit; readers go by the directories, so a commit killed before that update
still counts.

One attempt per shard at a time: an attempt holds the shard's lock
(``OUT/.shard-0003-of-0016.pinscan.lock``, see :mod:`pinscan.dataset._lock`) from its start to
its commit, so a second ``--shard 3/16`` is refused while the first runs; the Dask driver holds
``OUT/.pinscan.lock`` for the whole scan, so a second driver is refused too. Running a shard is
:mod:`pinscan.scanner.shards`' job; this module only knows where things are.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pinscan import atomic
from pinscan.dataset import _lock, outputs
from pinscan.dataset.meta import now, read_meta
from pinscan.dataset.names import FORMAT as DATASET_FORMAT
from pinscan.dataset.names import META_FILE, PIN_RESULTS, SCAN_TABLES
from pinscan.errors import DatasetError, ShardError

MANIFEST = "shards.json"
SHARDS = "shards"
STAGING = "_staging"
INVENTORY = "_inventory"
#: Held (flock) while ``shards.json`` is read and rewritten; a dot file, so no reader lists it.
_LOCK = ".shards.lock"
#: Layout version of the manifest.
FORMAT = 1
#: The manifest's ``way`` for the shards of ``pinscan scan --processes``.
PROCESSES = "processes"

_SPEC = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")
_NAME = re.compile(r"^shard-(\d+)-of-(\d+)$")
#: Counts that describe the whole inventory (every ``--shard`` run reads all of it): merged by
#: taking the largest, not the sum.
_INVENTORY_WIDE = frozenset({"duplicates"})

#: Suffix of a finished shard moved aside by a newer attempt, about to be deleted.
_REPLACED = ".replaced"
#: Where a sharded scan is written.
_ENTRIES = (MANIFEST, SHARDS, STAGING, INVENTORY, PIN_RESULTS)


@dataclass(frozen=True, slots=True, order=True)
class Shard:
    """Shard ``index`` of ``count`` (0-based): the targets whose ``target_id`` is ``index``
    modulo ``count``."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ShardError(f"shard {self}: the number of shards must be at least 1")
        if not 0 <= self.index < self.count:
            msg = f"shard {self}: the index must be from 0 to {self.count - 1}"
            raise ShardError(msg)

    @classmethod
    def parse(cls, spec: str | Shard) -> Shard:
        """``"3/16"`` (shard 3 of 16, counted from 0)."""
        if isinstance(spec, Shard):
            return spec
        match = _SPEC.match(spec)
        if not match:
            raise ShardError(f"{spec!r} is not a shard: give I/N, e.g. 3/16 (I from 0 to N-1)")
        return cls(int(match.group(1)), int(match.group(2)))

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    @property
    def name(self) -> str:
        return f"shard-{self.index:04d}-of-{self.count:04d}"

    def holds(self, target_id: str) -> bool:
        return shard_of(target_id, self.count) == self.index


def shard_of(target_id: str, count: int) -> int:
    """The shard of a target (or bad line), by its ``target_id``: never Python's ``hash``,
    which changes between processes."""
    return int(target_id, 16) % count


# --- the manifest ---------------------------------------------------------------------------


def is_sharded(root: Path) -> bool:
    return (root / MANIFEST).is_file()


def read_manifest(root: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetError(str(root), f"not a sharded scan ({MANIFEST} is missing)") from None
    except (OSError, ValueError) as exc:
        raise DatasetError(str(root / MANIFEST), f"unreadable: {exc}") from None
    if manifest.get("format") != FORMAT:
        msg = f"shard manifest format {manifest.get('format')!r}; this pinscan reads {FORMAT}"
        raise DatasetError(str(root), msg)
    return manifest


def open_manifest(
    root: Path,
    count: int,
    *,
    scan_id: str,
    arguments: dict[str, Any],
    version: str,
    way: str | None = None,
) -> dict[str, Any]:
    """The manifest of a sharded scan of ``count`` shards in ``root``: created when ``root``
    holds none (by whichever of several concurrent ``--shard`` runs gets there first), checked
    when it does. ``way`` ``"processes"`` marks the shards of one machine's scan
    (``--processes``), folded into one plain dataset once they are all done."""
    if (root / META_FILE).exists():
        msg = "holds an unsharded scan (pinscan scan -o); give a sharded scan its own directory"
        raise DatasetError(str(root), msg)
    if root.exists() and not root.is_dir():
        raise DatasetError(str(root), "is not a directory; give -o a directory")
    for name in _ENTRIES:
        outputs.refuse_link(root / name)
    if not is_sharded(root):
        if root.is_dir() and any(root.iterdir()):
            raise DatasetError(str(root), "is neither empty nor a sharded scan")
        manifest = {
            "format": FORMAT,
            "scan_id": scan_id,
            "count": count,
            "pinscan_version": version,
            "arguments": arguments,
            "started_at": now(),
            "shards": {},
        }
        if way is not None:
            manifest["way"] = way
        with outputs.writing(root):
            root.mkdir(parents=True, exist_ok=True)
            _create_exclusive(root / MANIFEST, manifest)
    manifest = read_manifest(root)
    if manifest["count"] != count:
        msg = (
            f"holds a scan in {manifest['count']} shards; cannot add shards of {count} "
            f"(use --shard I/{manifest['count']}, or another directory)"
        )
        raise ShardError(f"{root}: {msg}")
    return manifest


def finished(root: Path, manifest: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """Index -> ``scan.json`` of every finished shard of the manifest's scan, from the
    directories themselves."""
    out: dict[int, dict[str, Any]] = {}
    directory = root / SHARDS
    if not directory.is_dir():
        return out
    for path in directory.iterdir():
        match = _NAME.match(path.name)
        if not match or int(match.group(2)) != manifest["count"]:
            continue
        try:
            meta = read_meta(path)
        except DatasetError:
            continue  # being replaced this very moment (see _commit)
        if meta.get("complete") and meta.get("scan_id") == manifest["scan_id"]:
            out[int(match.group(1))] = meta
    return out


def missing(root: Path, manifest: dict[str, Any]) -> list[int]:
    done = finished(root, manifest)
    return [i for i in range(manifest["count"]) if i not in done]


def shard_dir(root: Path, shard: Shard) -> Path:
    return root / SHARDS / shard.name


def _add(total: dict[str, Any], more: dict[str, Any]) -> dict[str, Any]:
    """Two shards' tables of counts together: numbers add, lists join, tables key by key."""
    out = dict(total)
    for key, value in more.items():
        if key not in out:
            out[key] = value
        elif isinstance(value, dict):
            out[key] = _add(out[key], value)
        else:
            out[key] = out[key] + value
    return out


def merged_meta(manifest: dict[str, Any], done: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """The ``scan.json`` of the whole sharded scan: counts summed over the finished shards,
    complete when every shard is, and ``shards``: the count, what is done and what is missing."""
    counts: dict[str, Any] = {}
    for meta in done.values():
        for key, value in meta.get("counts", {}).items():
            if isinstance(value, dict):
                counts[key] = _add(counts.get(key, {}), value)
            elif key in _INVENTORY_WIDE:
                counts[key] = max(counts.get(key, 0), value)
            elif key == "seconds":  # scanning time across shards, not wall time
                counts[key] = round(counts.get(key, 0.0) + value, 3)
            else:
                counts[key] = counts.get(key, 0) + value
    # The Dask driver split the inventory once, and knows its inventory-wide counts.
    for key, value in manifest.get("inventory_counts", {}).items():
        counts[key] = max(counts.get(key, 0), value)
    count = manifest["count"]
    finished_at = [m["finished_at"] for m in done.values() if m.get("finished_at")]
    return {
        "format": DATASET_FORMAT,
        "pinscan_version": manifest.get("pinscan_version"),
        "scan_id": manifest["scan_id"],
        "arguments": manifest.get("arguments", {}),
        "started_at": manifest["started_at"],
        "finished_at": max(finished_at) if len(done) == count and finished_at else None,
        "complete": len(done) == count,
        "counts": counts,
        "shards": {
            "count": count,
            "finished": sorted(done),
            "missing": [i for i in range(count) if i not in done],
        },
    }


def record(root: Path, shard: Shard, meta: dict[str, Any]) -> None:
    """Adds a finished shard to the manifest (read, change, atomic rewrite, under a lock so
    that shards finishing at once on several machines keep each other's entries)."""
    with _locked(root):
        manifest = read_manifest(root)
        manifest["shards"][str(shard.index)] = {
            "started_at": meta.get("started_at"),
            "finished_at": meta.get("finished_at"),
            "counts": meta.get("counts", {}),
        }
        atomic.atomic_write_json(root / MANIFEST, manifest)


def set_inventory_counts(root: Path, counts: dict[str, int]) -> None:
    with _locked(root):
        manifest = read_manifest(root)
        manifest["inventory_counts"] = counts
        atomic.atomic_write_json(root / MANIFEST, manifest)


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    with outputs.writing(root), (root / _LOCK).open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def lock_scan(root: Path, scan_id: str) -> _lock.Lock:
    """The lock of the whole sharded scan in ``root``, held by the Dask driver while it runs."""
    return _lock.acquire(root, scan_id=scan_id, what="Dask scan")


def lock_name(shard: Shard) -> str:
    return f".{shard.name}{_lock.LOCK_FILE}"


def running(root: Path) -> dict[str, Any] | None:
    """Who is writing to the sharded scan in ``root``: its Dask driver, or else the attempt at
    one of its shards that holds that shard's lock; ``None`` when none is."""
    record = _lock.holder(root)
    if record is None:
        for lock in sorted(root.glob(f".shard-*{_lock.LOCK_FILE}")):
            record = _lock.holder(root, lock.name)
            if record is not None:
                break
    return record


def _create_exclusive(path: Path, value: Any) -> None:
    """Writes ``path`` whole unless it exists: a hard link of a complete temporary file, which
    fails when another process got there first (``O_EXCL`` cannot promise a whole file)."""
    tmp = path.with_name(f".{path.name}{atomic.TMP_MARK}{secrets.token_hex(4)}")
    try:
        tmp.write_text(json.dumps(value, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    atomic.fsync_dir(path.parent)


def new_stage(root: Path, shard: Shard) -> Path:
    with outputs.writing(root):
        (root / STAGING).mkdir(parents=True, exist_ok=True)
    return root / STAGING / f"{shard.name}.{secrets.token_hex(4)}"


def claim(root: Path, shard: Shard) -> Path | None:
    """Takes over the newest interrupted attempt at ``shard``: renames it to a name of this
    attempt's own, so that the attempt that left it, should it still be running somewhere,
    fails on its next write instead of writing into the same directory."""
    directory = root / STAGING
    if not directory.is_dir():
        return None
    attempts = []
    for path in directory.glob(f"{shard.name}.*"):
        if path.name.endswith(_REPLACED):
            continue
        with contextlib.suppress(OSError):
            attempts.append((path.stat().st_mtime, path))
    for _, path in sorted(attempts, reverse=True):
        mine = new_stage(root, shard)
        try:
            path.rename(mine)
        except FileNotFoundError:
            continue  # claimed by another attempt meanwhile
        return mine
    return None


def commit(root: Path, shard: Shard, stage: Path) -> None:
    """Makes a complete staged shard ``shards/<name>`` in one rename. When the shard is there
    already (a retry of a shard that finished), that directory is first moved aside, whole,
    and deleted: two attempts finishing together each move the other's result aside until one
    rename lands, so the last attempt to finish wins and no directory ever mixes two attempts.
    Readers may find the shard missing for the instant between the two renames."""
    for table in SCAN_TABLES:
        if (stage / table).is_dir():
            atomic.remove_temporaries(stage / table)
    final = shard_dir(root, shard)
    final.parent.mkdir(parents=True, exist_ok=True)
    replaced = []
    while True:
        try:
            stage.rename(final)
            break
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
        aside = root / STAGING / f"{shard.name}.{secrets.token_hex(4)}{_REPLACED}"
        with contextlib.suppress(FileNotFoundError):
            final.rename(aside)
            replaced.append(aside)
    atomic.fsync_dir(final.parent)
    for old in replaced:
        shutil.rmtree(old, ignore_errors=True)
    with contextlib.suppress(OSError):
        (root / STAGING).rmdir()  # when no other attempt is in there


def is_split(root: Path, count: int) -> bool:
    return all(split_path(root, Shard(i, count)).is_file() for i in range(count))


def split_path(root: Path, shard: Shard) -> Path:
    return root / INVENTORY / f"{shard.name}.parquet"


def is_processes(root: Path) -> bool:
    """``root`` holds the shards of a scan of one machine's processes, not yet folded."""
    try:
        return is_sharded(root) and read_manifest(root).get("way") == PROCESSES
    except DatasetError:
        return False


def remove_sharding(root: Path) -> None:
    """Deletes everything of the sharded layout from ``root``, the manifest last: what is left
    is the plain dataset folded out of it (see :mod:`pinscan.dataset.fold`)."""
    for name in (SHARDS, STAGING, INVENTORY):
        shutil.rmtree(root / name, ignore_errors=True)
    for lock in root.glob(f".shard-*{_lock.LOCK_FILE}"):
        lock.unlink(missing_ok=True)
    (root / _LOCK).unlink(missing_ok=True)
    (root / MANIFEST).unlink(missing_ok=True)
    atomic.fsync_dir(root)


def clean_up(root: Path) -> None:
    """Deletes what killed attempts left in ``_staging`` and the split inventory: once every
    shard is done, neither is needed again."""
    shutil.rmtree(root / STAGING, ignore_errors=True)
    shutil.rmtree(root / INVENTORY, ignore_errors=True)
