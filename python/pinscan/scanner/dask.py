# SPDX-License-Identifier: Apache-2.0
"""``pinscan scan --dask``: the shards of a scan (see :mod:`pinscan.dataset.shards`) as Dask tasks.

The driver (the process that runs ``pinscan scan``) reads the inventory once and writes each
shard's targets to ``OUT/_inventory/``; each task then scans one shard with the ordinary async
scanner, in its own event loop on the worker's thread, writes it to ``OUT/_staging/`` and renames
it into ``OUT/shards/``. Rows never travel through Dask, only a small task description and the
shard's counts: ``OUT`` must be one directory every worker sees at the same path (a shared
filesystem). A task that raises is retried; one whose worker dies is rerun elsewhere by the
scheduler, and continues what the dead attempt wrote; either way the shard is committed once.

Dask is an optional dependency (``pinscan[dask]``), imported only here and only when used.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pinscan import _core
from pinscan.config import ScanConfig
from pinscan.dataset import shards as layout
from pinscan.dataset.meta import new_scan_id
from pinscan.errors import DatasetError, PinscanError, ShardError
from pinscan.inventory import Inventory
from pinscan.records import Endpoint
from pinscan.scanner import shards as running

if TYPE_CHECKING:
    from distributed import Client

    from pinscan.dataset import ScanDataset

#: Shards per worker thread by default: enough that a slow shard does not hold the scan up, and
#: a retry redoes a small part of it.
SHARDS_PER_THREAD = 4
#: Attempts after the first for a shard that raised (a dead worker is the scheduler's business:
#: ``distributed.scheduler.allowed-failures``).
RETRIES = 2

Runner = Callable[[running.ShardTask], dict[str, Any]]


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        msg = "--dask needs Dask distributed, which is not installed: pip install 'pinscan[dask]'"
        raise PinscanError(msg) from None
    return distributed


@contextlib.contextmanager
def connect(dask: Any, *, workers: int | None = None, threads: int = 1) -> Iterator[Client]:
    """A client for ``dask``: a ``Client`` as it is, ``"local"`` for a ``LocalCluster`` of
    ``workers`` processes (one per core by default) with ``threads`` threads each, closed on
    exit, or a scheduler address (``tcp://host:8786``)."""
    if not isinstance(dask, str):
        yield dask
        return
    distributed = _distributed()
    if dask == "local":
        cluster = distributed.LocalCluster(
            n_workers=workers or os.cpu_count() or 1,
            threads_per_worker=threads,
            processes=True,
            dashboard_address=None,
            # No dashboard, and the scheduler's HTTP routes on a free port, not on 8787.
            scheduler_kwargs={"dashboard": False, "dashboard_address": ":0"},
            silence_logs=logging.CRITICAL,
        )
        with cluster, distributed.Client(cluster) as client:
            yield client
        return
    try:
        client = distributed.Client(dask, timeout="30s")
    except OSError as exc:
        raise PinscanError(f"cannot reach the Dask scheduler {dask}: {exc}") from None
    with client:
        yield client


def scan_dask(
    inventory: Inventory,
    out: str | os.PathLike[str],
    dask: Any,
    *,
    shards: int | None = None,
    config: ScanConfig | None = None,
    resume: bool = False,
    on_endpoint: Callable[[Endpoint], None] | None = None,
    arguments: dict[str, Any] | None = None,
    scan_id: str | None = None,
    retries: int = RETRIES,
    progress: bool = False,
    runner: Runner = running.run_shard,
) -> ScanDataset:
    """Scans ``inventory`` into ``out`` in ``shards`` shards, each a task on ``dask`` (a
    ``Client``, ``"local"`` or a scheduler address); returns the whole dataset.

    ``resume`` runs the shards a former run did not finish (the number of shards and the targets are
    those of that run: its split of the inventory is reused). When shards still fail after their
    retries, the others are kept and :class:`~pinscan.errors.PinscanError` says which; ``resume``
    then runs only those. ``runner`` is what a task calls with its
    :class:`~pinscan.scanner.shards.ShardTask` (:func:`pinscan.scanner.shards.run_shard`; wrap it to
    observe or test shards). ``progress`` draws a bar over shards on stderr.
    """
    if on_endpoint is not None:
        raise PinscanError("on_endpoint is not available with dask: the workers write endpoints")
    root = Path(out).absolute()  # workers may run elsewhere: no relative paths
    with connect(dask) as client, contextlib.ExitStack() as held:
        if resume:
            manifest = layout.read_manifest(root)
            if shards is not None and shards != manifest["count"]:
                msg = f"{root}: holds a scan in {manifest['count']} shards, not {shards}"
                raise ShardError(msg)
        else:
            if layout.is_sharded(root):
                msg = "holds a sharded scan; use --resume to finish it, or another directory"
                raise DatasetError(str(root), msg)
            threads = sum(client.nthreads().values())
            args = {"inventory": inventory.name, **(arguments or {})}
            manifest = layout.open_manifest(
                root, shards or max(SHARDS_PER_THREAD * threads, SHARDS_PER_THREAD),
                scan_id=scan_id or new_scan_id(), arguments=args, version=_core.__version__,
            )  # fmt: skip
        # One driver at a time: a second one would split and run the same shards again.
        held.enter_context(layout.lock_scan(root, manifest["scan_id"]))
        count = manifest["count"]
        todo = running.pending(root, manifest, inventory)
        tasks = running.tasks_of(root, manifest, todo, config or ScanConfig())
        failures = _run(client, runner, tasks, retries, progress)
    if failures:
        raise running.shards_failed(root, failures, count)
    layout.clean_up(root)
    from pinscan.dataset import open as open_dataset  # polars: lazy for start-up time

    return open_dataset(root)


def _run(
    client: Client,
    runner: Runner,
    tasks: list[running.ShardTask],
    retries: int,
    progress: bool,
) -> dict[int, str]:
    """Runs the tasks, as many at once as the cluster has threads; index -> error of each
    shard that failed for good."""
    distributed = _distributed()
    failures: dict[int, str] = {}
    if not tasks:
        return failures
    futures = client.map(runner, tasks, retries=retries, pure=False)
    index = {f.key: t.shard.index for f, t in zip(futures, tasks, strict=True)}
    with _Bar(len(tasks), enabled=progress) as bar:
        for future in distributed.as_completed(futures):
            if future.status == "finished":
                bar.advance(ok=True)
            else:
                error = future.exception()
                failures[index[future.key]] = f"{type(error).__name__}: {error}"
                bar.advance(ok=False)
    return failures


class _Bar:
    """Shards done out of all, with a rich bar on stderr when enabled (a terminal)."""

    def __init__(self, total: int, *, enabled: bool) -> None:
        self._total = total
        self._enabled = enabled
        self._failed = 0

    def __enter__(self) -> _Bar:
        if self._enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress(
                TextColumn("[bold]shards"), BarColumn(), MofNCompleteColumn(),
                TextColumn("[red]{task.fields[failed]} failed"), TimeElapsedColumn(),
                TimeRemainingColumn(), console=Console(stderr=True), transient=True,
            )  # fmt: skip
            self._bar.__enter__()
            self._task = self._bar.add_task("shards", total=self._total, failed=0)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._enabled:
            self._bar.__exit__(None, None, None)

    def advance(self, *, ok: bool) -> None:
        self._failed += not ok
        if self._enabled:
            self._bar.update(self._task, advance=1, failed=self._failed)


__all__ = ["RETRIES", "SHARDS_PER_THREAD", "connect", "scan_dask"]
