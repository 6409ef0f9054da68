# SPDX-License-Identifier: Apache-2.0
"""Sharded scans: an inventory split by a stable hash into N shards, each scanned on its own (one
process with ``--shard I/N``, or a Dask task) and written whole at a path of its own.

Layout of ``OUT/``::

    shards.json                               the manifest: N, scan_id, arguments, finished shards
    shards/shard-0003-of-0016/                one finished shard: a plain dataset directory
    _staging/shard-0003-of-0016.<token>/      an attempt at a shard in progress (or killed)
    _inventory/shard-0003-of-0016.parquet     a shard's targets, split by the Dask driver
    pin_results/part-000001.parquet           with --policy, the verdicts of the whole scan

A target's shard is ``int(target_id, 16) % N``: ``target_id`` is a SHA-256 of the normalised
target, so the same inventory always splits the same way, on any machine and Python.

An attempt scans into ``_staging/`` exactly as ``pinscan scan -o`` writes a dataset, then renames
the directory into ``shards/`` in one step. A finished shard is a directory in ``shards/`` whose
``scan.json`` is complete and has the manifest's ``scan_id``: it appears whole or not at all, and a
retried shard replaces it (the last attempt to finish wins; see :func:`_commit`), so no target is
ever in two places. ``shards.json`` also lists the finished shards and their counts, updated under
a lock after each commit; readers go by the directories, so a commit killed before that update
still counts.

One attempt per shard at a time: an attempt holds the shard's lock
(``OUT/.shard-0003-of-0016.pinscan.lock``, see :mod:`pinscan.dataset._lock`) from its start to
its commit, so a second ``--shard 3/16`` is refused while the first runs; the Dask driver holds
``OUT/.pinscan.lock`` for the whole scan, so a second driver is refused too.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import json
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pinscan import atomic
from pinscan.config import ScanConfig
from pinscan.dataset import _lock, outputs
from pinscan.dataset.schema import META_FILE, TABLES
from pinscan.dataset.writer import SHARD_MANIFEST as MANIFEST
from pinscan.dataset.writer import read_meta
from pinscan.errors import DatasetError, PinscanError
from pinscan.inventory import Inventory
from pinscan.records import BadTarget, Endpoint, Target

SHARDS = "shards"
STAGING = "_staging"
INVENTORY = "_inventory"
#: Held (flock) while ``shards.json`` is read and rewritten; a dot file, so no reader lists it.
_LOCK = ".shards.lock"
#: Layout version of the manifest.
FORMAT = 1

_SPEC = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")
_NAME = re.compile(r"^shard-(\d+)-of-(\d+)$")
#: Counts that describe the whole inventory (every ``--shard`` run reads all of it): merged by
#: taking the largest, not the sum.
_INVENTORY_WIDE = frozenset({"duplicates"})

_TARGETS_SCHEMA = pa.schema(
    [
        ("line", pa.int64()),
        ("target", pa.string()),
        ("host", pa.string()),
        ("port", pa.int32()),
        ("sni", pa.string()),
        ("ip", pa.string()),
        ("error", pa.string()),  # set for a bad line
    ]
)
_SPLIT_ROWS = 65536
#: Suffix of a finished shard moved aside by a newer attempt, about to be deleted.
_REPLACED = ".replaced"
#: Where a sharded scan is written.
_ENTRIES = (MANIFEST, SHARDS, STAGING, INVENTORY, "pin_results")


class ShardError(PinscanError):
    """A shard spec that names no shard, or a sharded output used inconsistently."""


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
    root: Path, count: int, *, scan_id: str, arguments: dict[str, Any], version: str
) -> dict[str, Any]:
    """The manifest of a sharded scan of ``count`` shards in ``root``: created when ``root``
    holds none (by whichever of several concurrent ``--shard`` runs gets there first), checked
    when it does."""
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
            "started_at": _now(),
            "shards": {},
        }
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
        "format": 1,
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


def _lock_name(shard: Shard) -> str:
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


# --- the targets of a shard -----------------------------------------------------------------


@dataclass
class ShardStats:
    """What :func:`pinscan.scanner.engine.scan_async` reads from an inventory's ``stats``."""

    duplicates: int = 0
    bad: int = 0


class ShardItems(Iterator[Target | BadTarget]):
    """The targets of one shard, in inventory order: filtered from a whole inventory
    (``--shard``), or read from the driver's split (Dask)."""

    def __init__(
        self,
        name: str,
        items: Iterator[Target | BadTarget],
        close: Callable[[], None],
        source: Inventory | None = None,
    ) -> None:
        self.name = name
        self._items = items
        self._close = close
        #: The whole inventory, when it is read here: its duplicates are inventory-wide.
        self._source = source
        self._bad = 0

    @property
    def stats(self) -> ShardStats:
        duplicates = self._source.stats.duplicates if self._source is not None else 0
        return ShardStats(duplicates=duplicates, bad=self._bad)

    def __next__(self) -> Target | BadTarget:
        item = next(self._items)
        if isinstance(item, BadTarget):
            self._bad += 1
        return item

    def __enter__(self) -> ShardItems:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._close()


def filtered(inventory: Inventory, shard: Shard) -> ShardItems:
    """The targets of ``shard`` in a whole inventory."""
    items = (item for item in inventory if shard.holds(item.target_id))
    return ShardItems(inventory.name, items, inventory.close, inventory)


def split(inventory: Inventory, root: Path, count: int) -> dict[str, int]:
    """Reads the inventory once and writes each shard's targets to
    ``_inventory/<shard>.parquet`` (kept in inventory order, line numbers included), so that a
    worker reads its shard's targets alone, and only ``OUT`` needs to be shared with the
    workers. Returns the inventory's counts."""
    directory = root / INVENTORY
    directory.mkdir(parents=True, exist_ok=True)
    atomic.remove_temporaries(directory)
    paths = [_split_path(root, Shard(i, count)) for i in range(count)]
    tmps = [p.with_name(f".{p.name}{atomic.TMP_MARK}{secrets.token_hex(4)}") for p in paths]
    writers = [pq.ParquetWriter(t, _TARGETS_SCHEMA, compression="zstd") for t in tmps]
    buffers: list[list[Target | BadTarget]] = [[] for _ in range(count)]
    try:
        with inventory:
            for item in inventory:
                i = shard_of(item.target_id, count)
                buffers[i].append(item)
                if len(buffers[i]) >= _SPLIT_ROWS:
                    writers[i].write_table(_targets_table(buffers[i]))
                    buffers[i] = []
        for writer, buffer in zip(writers, buffers, strict=True):
            writer.write_table(_targets_table(buffer))
            writer.close()
        for tmp, path in zip(tmps, paths, strict=True):
            tmp.replace(path)
        atomic.fsync_dir(directory)
    finally:
        for writer in writers:
            writer.close()
        for tmp in tmps:
            tmp.unlink(missing_ok=True)
    return {"duplicates": inventory.stats.duplicates}


def is_split(root: Path, count: int) -> bool:
    return all(_split_path(root, Shard(i, count)).is_file() for i in range(count))


def _split_path(root: Path, shard: Shard) -> Path:
    return root / INVENTORY / f"{shard.name}.parquet"


def read_split(root: Path, shard: Shard, name: str) -> ShardItems:
    """The targets the driver split off for ``shard``."""
    file = pq.ParquetFile(_split_path(root, shard))

    def items() -> Iterator[Target | BadTarget]:
        for batch in file.iter_batches(batch_size=8192):
            for row in batch.to_pylist():
                if row["error"] is not None:
                    yield BadTarget(row["line"], row["target"], row["error"])
                else:
                    yield Target(
                        row["line"], row["target"], row["host"], row["port"], row["sni"], row["ip"]
                    )

    return ShardItems(name, items(), file.close)


def _targets_table(items: list[Target | BadTarget]) -> pa.Table:
    rows = [
        {"line": t.line, "target": t.target, "error": t.error}
        if isinstance(t, BadTarget)
        else {"line": t.line, "target": t.target, "host": t.host, "port": t.port, "sni": t.sni,
              "ip": t.ip, "error": None}
        for t in items
    ]  # fmt: skip
    return pa.Table.from_pylist(rows, schema=_TARGETS_SCHEMA)


# --- running one shard ----------------------------------------------------------------------


@dataclass(frozen=True)
class ShardTask:
    """Everything a process needs to scan one shard of a sharded scan into ``out``: small and
    picklable, so that it can be a Dask task's argument."""

    out: str
    shard: Shard
    scan_id: str
    config: ScanConfig
    arguments: dict[str, Any]
    inventory_name: str
    #: Continue this shard's newest interrupted attempt, when one is left in ``_staging``.
    resume: bool = True


def run_shard(
    task: ShardTask,
    inventory: Inventory | None = None,
    *,
    on_endpoint: Callable[[Endpoint], None] | None = None,
) -> dict[str, Any]:
    """Scans one shard and commits it; returns its ``scan.json``. Idempotent: run twice, the
    shard is scanned twice and the later result replaces the earlier one.

    The targets come from ``inventory`` (read whole and filtered: ``--shard``), or from the
    driver's split in ``OUT/_inventory`` (Dask). Runs its own event loop (see
    :func:`pinscan.scanner.engine.scan`), so a Dask worker thread can call it as it is.
    """
    from pinscan.scanner.engine import scan

    root = Path(task.out)
    read_manifest(root)  # the caller made it; fail early on a wrong directory
    what = f"shard {task.shard} of scan"
    with _lock.acquire(root, scan_id=task.scan_id, name=_lock_name(task.shard), what=what):
        with outputs.writing(root):
            stage = _claim(root, task.shard) if task.resume else None
        meta = _meta_or_none(stage) if stage is not None else None
        if stage is None:
            stage = _new_stage(root, task.shard)
        # An attempt killed between its last write and its commit left a complete scan.
        if meta is None or not meta.get("complete"):
            if inventory is not None:
                items = filtered(inventory, task.shard)
            else:
                items = read_split(root, task.shard, task.inventory_name)
            scan(
                items,
                stage,
                config=task.config,
                resume=meta is not None,
                on_endpoint=on_endpoint,
                arguments={**task.arguments, "shard": str(task.shard)},
                scan_id=task.scan_id,
            )
            meta = read_meta(stage)
        with outputs.writing(root):
            _commit(root, task.shard, stage)
        record(root, task.shard, meta)
    return meta


def _meta_or_none(stage: Path) -> dict[str, Any] | None:
    """The ``scan.json`` of a claimed attempt; ``None`` when it was killed before writing one."""
    try:
        return read_meta(stage)
    except DatasetError:
        return None


def _new_stage(root: Path, shard: Shard) -> Path:
    with outputs.writing(root):
        (root / STAGING).mkdir(parents=True, exist_ok=True)
    return root / STAGING / f"{shard.name}.{secrets.token_hex(4)}"


def _claim(root: Path, shard: Shard) -> Path | None:
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
        mine = _new_stage(root, shard)
        try:
            path.rename(mine)
        except FileNotFoundError:
            continue  # claimed by another attempt meanwhile
        return mine
    return None


def _commit(root: Path, shard: Shard, stage: Path) -> None:
    """Makes a complete staged shard ``shards/<name>`` in one rename. When the shard is there
    already (a retry of a shard that finished), that directory is first moved aside, whole,
    and deleted: two attempts finishing together each move the other's result aside until one
    rename lands, so the last attempt to finish wins and no directory ever mixes two attempts.
    Readers may find the shard missing for the instant between the two renames."""
    for table in TABLES:
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


def scan_shard(
    inventory: Inventory,
    out: str | os.PathLike[str],
    shard: str | Shard,
    *,
    config: ScanConfig | None = None,
    resume: bool = False,
    on_endpoint: Callable[[Endpoint], None] | None = None,
    arguments: dict[str, Any] | None = None,
    scan_id: str | None = None,
) -> dict[str, Any]:
    """``pinscan scan INVENTORY -o OUT --shard I/N``: scans shard I of N in this process, reading
    the whole inventory, and commits it to ``OUT``. Returns the shard's ``scan.json``.

    Without ``resume``, the shard is scanned from the start and replaces its earlier result, if
    any. With ``resume``, it finishes this shard: nothing when it is done already, else it
    continues the interrupted attempt left in ``_staging`` (or starts it).
    """
    from pinscan import _core
    from pinscan.scanner.engine import new_scan_id

    part = Shard.parse(shard)
    root = Path(out)
    # The manifest has the arguments of the first run; each shard's scan.json has its own.
    args = {"inventory": inventory.name, **(arguments or {})}
    common = {k: v for k, v in args.items() if k != "shard"}
    manifest = open_manifest(
        root, part.count, scan_id=scan_id or new_scan_id(), arguments=common,
        version=_core.__version__,
    )  # fmt: skip
    if resume and part.index in finished(root, manifest):
        inventory.close()
        return read_meta(shard_dir(root, part))
    task = ShardTask(
        str(root), part, manifest["scan_id"], config or ScanConfig(), args, inventory.name, resume
    )
    return run_shard(task, inventory, on_endpoint=on_endpoint)


def clean_up(root: Path) -> None:
    """Deletes what killed attempts left in ``_staging`` and the split inventory: once every
    shard is done, neither is needed again."""
    shutil.rmtree(root / STAGING, ignore_errors=True)
    shutil.rmtree(root / INVENTORY, ignore_errors=True)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


__all__ = [
    "INVENTORY",
    "MANIFEST",
    "SHARDS",
    "STAGING",
    "Shard",
    "ShardError",
    "ShardItems",
    "ShardTask",
    "clean_up",
    "finished",
    "is_sharded",
    "is_split",
    "lock_scan",
    "merged_meta",
    "missing",
    "open_manifest",
    "read_manifest",
    "read_split",
    "record",
    "run_shard",
    "running",
    "scan_shard",
    "set_inventory_counts",
    "shard_dir",
    "shard_of",
    "split",
]
