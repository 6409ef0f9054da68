# SPDX-License-Identifier: Apache-2.0
"""Running sharded scans (``--shard I/N``, and each Dask task): one shard's targets, taken from
the whole inventory or from the Dask driver's split of it, scanned by the engine into an attempt
directory and committed whole. Where a sharded scan's files are, and how a shard is committed, is
the layout's (:mod:`pinscan.dataset.shards`)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from pinscan import _core, atomic
from pinscan.config import ScanConfig
from pinscan.dataset import _lock, outputs
from pinscan.dataset.meta import new_scan_id, read_meta
from pinscan.dataset.shards import (
    INVENTORY,
    Shard,
    claim,
    commit,
    finished,
    is_split,
    lock_name,
    missing,
    new_stage,
    open_manifest,
    read_manifest,
    record,
    set_inventory_counts,
    shard_dir,
    shard_of,
    split_path,
)
from pinscan.errors import DatasetError, PinscanError
from pinscan.inventory import Inventory
from pinscan.records import BadTarget, Endpoint, Target
from pinscan.scanner import engine

if TYPE_CHECKING:
    import pyarrow as pa

# pyarrow is imported where a split is written or read (lazy for start-up time: a scan in one
# process imports this module for its types).

_SPLIT_ROWS = 65536


@dataclass
class ShardStats:
    """What :func:`pinscan.scanner.engine.scan_dataset` reads from an inventory's ``stats``."""

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

    def close(self) -> None:
        self._close()

    def __enter__(self) -> ShardItems:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def filtered(inventory: Inventory, shard: Shard) -> ShardItems:
    """The targets of ``shard`` in a whole inventory."""
    items = (item for item in inventory if shard.holds(item.target_id))
    return ShardItems(inventory.name, items, inventory.close, inventory)


def split(inventory: Inventory, root: Path, count: int) -> dict[str, int]:
    """Reads the inventory once and writes each shard's targets to
    ``_inventory/<shard>.parquet`` (kept in inventory order, line numbers included), so that a
    worker reads its shard's targets alone, and only ``OUT`` needs to be shared with the
    workers. Returns the inventory's counts."""
    import pyarrow.parquet as pq

    directory = root / INVENTORY
    directory.mkdir(parents=True, exist_ok=True)
    atomic.remove_temporaries(directory)
    paths = [split_path(root, Shard(i, count)) for i in range(count)]
    tmps = [p.with_name(f".{p.name}{atomic.TMP_MARK}{secrets.token_hex(4)}") for p in paths]
    writers = [pq.ParquetWriter(t, _targets_schema(), compression="zstd") for t in tmps]
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


def read_split(root: Path, shard: Shard, name: str) -> ShardItems:
    """The targets the driver split off for ``shard``."""
    import pyarrow.parquet as pq

    file = pq.ParquetFile(split_path(root, shard))

    def items() -> Iterator[Target | BadTarget]:
        for batch in file.iter_batches(batch_size=8192):
            for row in batch.to_pylist():
                if row["error"] is not None:
                    yield BadTarget(row["line"], row["target"], row["error"])
                else:
                    yield Target(
                        row["line"], row["target"], row["host"], row["port"], row["sni"], row["ip"],
                        row.get("starttls"),  # splits written before STARTTLS have none
                    )  # fmt: skip

    return ShardItems(name, items(), file.close)


def _targets_schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema(
        [
            ("line", pa.int64()),
            ("target", pa.string()),
            ("host", pa.string()),
            ("port", pa.int32()),
            ("sni", pa.string()),
            ("ip", pa.string()),
            ("error", pa.string()),  # set for a bad line
            ("starttls", pa.string()),
        ]
    )


def _targets_table(items: list[Target | BadTarget]) -> pa.Table:
    import pyarrow as pa

    rows = [
        {"line": t.line, "target": t.target, "error": t.error}
        if isinstance(t, BadTarget)
        else {"line": t.line, "target": t.target, "host": t.host, "port": t.port, "sni": t.sni,
              "ip": t.ip, "error": None, "starttls": t.starttls}
        for t in items
    ]  # fmt: skip
    return pa.Table.from_pylist(rows, schema=_targets_schema())


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


def pending(root: Path, manifest: dict[str, Any], inventory: Inventory) -> list[int]:
    """The shards of ``manifest`` not committed yet, the inventory split into the shards first
    (once: a resumed run reuses its split, and ``inventory`` is only closed)."""
    count = manifest["count"]
    todo = missing(root, manifest)
    if todo and not is_split(root, count):
        with outputs.writing(root):
            counts = split(inventory, root, count)
        set_inventory_counts(root, counts)
    else:
        inventory.close()
    return todo


def tasks_of(
    root: Path, manifest: dict[str, Any], todo: list[int], config: ScanConfig
) -> list[ShardTask]:
    """A task per shard of ``todo``, each scanning with ``config``."""
    arguments = manifest["arguments"]
    return [
        ShardTask(
            str(root),
            Shard(i, manifest["count"]),
            manifest["scan_id"],
            config,
            arguments,
            arguments.get("inventory", ""),
        )
        for i in todo
    ]


def shards_failed(root: Path, failures: dict[int, str], count: int) -> PinscanError:
    """What a driver raises when shards still fail after their retries: the others are kept."""
    listed = "; ".join(f"shard {i}: {why}" for i, why in sorted(failures.items())[:5])
    msg = (
        f"{len(failures)} of {count} shards failed ({listed}); the other shards are kept: "
        "rerun with --resume to scan the rest"
    )
    return PinscanError(f"{root}: {msg}")


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
    :func:`pinscan.scanner.engine.run_blocking`), so a Dask worker thread can call it as it is.
    """
    root = Path(task.out)
    read_manifest(root)  # the caller made it; fail early on a wrong directory
    what = f"shard {task.shard} of scan"
    with _lock.acquire(root, scan_id=task.scan_id, name=lock_name(task.shard), what=what):
        with outputs.writing(root):
            stage = claim(root, task.shard) if task.resume else None
        meta = _meta_or_none(stage) if stage is not None else None
        if stage is None:
            stage = new_stage(root, task.shard)
        # An attempt killed between its last write and its commit left a complete scan.
        if meta is None or not meta.get("complete"):
            if inventory is not None:
                items = filtered(inventory, task.shard)
            else:
                items = read_split(root, task.shard, task.inventory_name)
            engine.run_blocking(
                engine.scan_dataset,
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
            commit(root, task.shard, stage)
        record(root, task.shard, meta)
    return meta


def _meta_or_none(stage: Path) -> dict[str, Any] | None:
    """The ``scan.json`` of a claimed attempt; ``None`` when it was killed before writing one."""
    try:
        return read_meta(stage)
    except DatasetError:
        return None


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


__all__ = [
    "ShardItems",
    "ShardTask",
    "filtered",
    "pending",
    "read_split",
    "run_shard",
    "scan_shard",
    "shards_failed",
    "split",
    "tasks_of",
]
