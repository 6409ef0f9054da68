# SPDX-License-Identifier: Apache-2.0
"""``pinscan scan --processes N``: one machine's cores, without Dask. The driver (the process
that runs the scan) splits the inventory as ``--dask`` does (``OUT/_inventory/``, by the stable
hash of ``--shard``), runs each shard in a worker process of a local pool
(:func:`pinscan.scanner.shards.run_shard`: an attempt in ``_staging``, committed whole to
``shards/``), and once every shard is done folds them into one plain dataset
(:func:`pinscan.dataset.fold.fold`): what ``-o OUT`` holds afterwards is what one process would
have written. A worker that dies, or a shard that raises, is run again (its new attempt continues
what the last one wrote) up to :data:`RETRIES` times; what still fails is kept and named, and
``--resume`` runs the rest, then folds.

The scan's limits are the whole scan's: each of the N workers gets a share of ``concurrency``,
``rate`` and ``per_address`` (rounded up), so N processes send no more than one would.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio

from pinscan import _core
from pinscan.config import ScanConfig
from pinscan.dataset import outputs
from pinscan.dataset import shards as layout
from pinscan.dataset.meta import new_scan_id
from pinscan.errors import DatasetError
from pinscan.records import Endpoint
from pinscan.scanner import engine
from pinscan.scanner import shards as running

#: Attempts after the first for a shard whose worker died or raised.
RETRIES = 2
#: With ``processes=None``, an inventory of fewer targets than this is scanned in this process:
#: starting a worker (an interpreter, pinscan's imports) costs about what a process scans in the
#: meantime.
SMALL_SCAN = 2048
#: How often a worker reports its endpoints' statuses to the driver, in seconds.
_REPORT_EVERY = 0.2

Runner = Callable[[running.ShardTask], dict[str, Any]]
#: Called in the driver with a status and how many endpoints ended with it.
OnStatus = Callable[[str, int], None]


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def wanted(config: ScanConfig, *, on_endpoint: Callable[..., Any] | None = None) -> int:
    """How many processes a scan of ``config`` runs in, at most."""
    if config.processes is not None:
        return config.processes
    return 1 if on_endpoint is not None else cores()


async def scan_dataset(
    items: engine.TargetFeed,
    root: Path,
    *,
    config: ScanConfig,
    resume: bool = False,
    scan_id: str | None = None,
    arguments: dict[str, Any] | None = None,
    on_endpoint: Callable[[Endpoint], None] | None = None,
    on_status: OnStatus | None = None,
) -> None:
    """Scans ``items`` into the dataset ``root``, in this process or in ``config.processes``
    (see :func:`wanted`), as :func:`pinscan.scanner.engine.scan_dataset` does. ``resume``
    finishes the scan in ``root`` the way it was started."""
    options = {
        "config": config,
        "arguments": arguments,
        "on_endpoint": with_status(on_endpoint, on_status),
    }
    if resume and layout.is_processes(root):
        await anyio.to_thread.run_sync(
            lambda: scan_processes(items, root, config=config, resume=True, on_status=on_status)
        )
        return
    processes = wanted(config, on_endpoint=on_endpoint)
    if resume or processes <= 1:
        await engine.scan_dataset(items, root, resume=resume, scan_id=scan_id, **options)
        return
    if config.processes is None:  # a small inventory is scanned here
        first = await anyio.to_thread.run_sync(lambda: list(itertools.islice(items, SMALL_SCAN)))
        items = running.ShardItems(
            items.name,
            itertools.chain(first, items),
            items.close,
            items,  # type: ignore[arg-type]
        )
        if len(first) < SMALL_SCAN:
            await engine.scan_dataset(items, root, scan_id=scan_id, **options)
            return
    await anyio.to_thread.run_sync(
        lambda: scan_processes(
            items, root, config=config, processes=processes, scan_id=scan_id,
            arguments=arguments, on_status=on_status,
        )
    )  # fmt: skip


def with_status(
    on_endpoint: Callable[[Endpoint], None] | None, on_status: OnStatus | None
) -> Callable[[Endpoint], None] | None:
    """``on_endpoint``, which also counts each endpoint's status to ``on_status``."""
    if on_status is None:
        return on_endpoint

    def both(endpoint: Endpoint) -> None:
        on_status(endpoint.status, 1)
        if on_endpoint is not None:
            on_endpoint(endpoint)

    return both


def scan_processes(
    items: engine.TargetFeed,
    root: str | os.PathLike[str],
    *,
    config: ScanConfig,
    processes: int | None = None,
    resume: bool = False,
    scan_id: str | None = None,
    arguments: dict[str, Any] | None = None,
    on_status: OnStatus | None = None,
    retries: int = RETRIES,
    runner: Runner | None = None,
) -> dict[str, Any]:
    """Scans ``items`` into ``root`` in ``processes`` shards, each in a worker process, and
    folds them into one dataset; returns its ``scan.json``. ``resume`` runs the shards a former
    run did not finish (in that run's number of shards, from its split), then folds.
    ``runner`` is what a worker calls with its :class:`~pinscan.scanner.shards.ShardTask`
    (:func:`scan_shard`; tests wrap it); it must be importable by name, as a pickle is."""
    root = Path(root).absolute()
    started = time.monotonic()
    if resume:
        manifest = layout.read_manifest(root)
    else:
        if layout.is_sharded(root):
            msg = "holds a sharded scan; use --resume to finish it, or another directory"
            raise DatasetError(str(root), msg)
        outputs.check_output(root, (), "-o")
        args = {**(arguments or {}), "processes": processes}
        manifest = layout.open_manifest(
            root, processes or cores(), scan_id=scan_id or new_scan_id(), arguments=args,
            version=_core.__version__, way=layout.PROCESSES,
        )  # fmt: skip
    count = manifest["count"]
    with layout.lock_scan(root, manifest["scan_id"]):
        todo = running.pending(root, manifest, items)
        workers = min(processes or count, len(todo)) or 1
        tasks = running.tasks_of(root, manifest, todo, share(config, workers))
        failures = _run(tasks, workers, runner or scan_shard, retries, on_status)
        if failures:
            raise running.shards_failed(root, failures, count)
        from pinscan.dataset.fold import fold  # polars: lazy for start-up time

        return fold(root, seconds=None if resume else time.monotonic() - started)


def share(config: ScanConfig, workers: int) -> ScanConfig:
    """What one of ``workers`` processes may do of the whole scan's ``config``. Verification
    stays in each worker unless asked for: the workers take the cores a child would."""
    return replace(
        config,
        processes=1,
        concurrency=-(-config.concurrency // workers),
        rate=None if config.rate is None else config.rate / workers,
        per_address=-(-config.per_address // workers),
        verify_processes=0 if config.verify_processes is None else config.verify_processes,
    )


# --- in the workers --------------------------------------------------------------------------
#
# A worker is a fresh interpreter (``python -c``), sent its task as a pickle on stdin; it answers
# on stdout with JSON lines: ``{"statuses": {...}}`` as it goes, then ``{"meta": {...}}`` or
# ``{"error": "..."}``. Not multiprocessing: its workers run the caller's ``__main__`` again, which
# a script that calls ``pinscan.scan`` at its top level does not expect.

_WORKER = "from pinscan.scanner.processes import _worker; _worker()"
#: What a worker that Ctrl-C stopped answers (the terminal sends it to the driver and workers).
_INTERRUPTED = "interrupted"


def _worker() -> None:
    """The body of a worker process."""
    import pickle
    import sys

    out = sys.stdout
    sys.stdout = sys.stderr  # nothing else writes on the answer's channel
    sys.path[:] = pickle.load(sys.stdin.buffer)  # the driver's: where the runner is found
    runner, task = pickle.load(sys.stdin.buffer)
    # The driver keeps stdin open while it waits: its end means the driver is gone (killed), and
    # the worker goes too, at once, as if killed with it; --resume continues what it wrote.
    threading.Thread(target=_orphaned, daemon=True).start()

    def send(message: dict[str, Any]) -> None:
        out.write(json.dumps(message, default=str) + "\n")
        out.flush()

    global _send
    _send = send
    try:
        meta = runner(task)
    except BaseException as exc:  # the driver says what failed; a traceback helps no one here
        send({"error": f"{type(exc).__name__}: {exc}"})
        raise SystemExit(1) from None
    send({"meta": meta})


_send: Callable[[dict[str, Any]], None] | None = None


def _orphaned() -> None:
    while os.read(0, 4096):  # the descriptor, not sys.stdin: no lock held at the exit
        pass
    os._exit(1)


def scan_shard(task: running.ShardTask) -> dict[str, Any]:
    """What a worker runs: the shard, its endpoints' statuses counted to the driver as it goes."""
    counted: Counter[str] = Counter()
    last = time.monotonic()

    def on_endpoint(endpoint: Endpoint) -> None:
        nonlocal last
        counted[endpoint.status] += 1
        if _send is not None and time.monotonic() - last >= _REPORT_EVERY:
            _send({"statuses": dict(counted)})
            counted.clear()
            last = time.monotonic()

    try:
        return running.run_shard(task, on_endpoint=on_endpoint)
    finally:
        if _send is not None and counted:
            _send({"statuses": dict(counted)})


# --- in the driver ---------------------------------------------------------------------------


def _run(
    tasks: list[running.ShardTask],
    workers: int,
    runner: Runner,
    retries: int,
    on_status: OnStatus | None,
) -> dict[int, str]:
    """Runs the tasks, ``workers`` at a time, each in a worker process of its own; again those
    whose worker died or raised; index -> error of each shard that failed for good."""
    failures: dict[int, str] = {}
    attempts: Counter[int] = Counter()
    todo = list(tasks)
    lock = threading.Lock()
    with concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="pinscan-w") as pool:
        running_now: set[concurrent.futures.Future[str | None]] = set()
        started: dict[concurrent.futures.Future[str | None], running.ShardTask] = {}
        workers_now: list[subprocess.Popen[bytes]] = []
        try:
            while todo or running_now:
                while todo and len(running_now) < workers:
                    task = todo.pop(0)
                    future = pool.submit(_one, runner, task, on_status, lock, workers_now)
                    running_now.add(future)
                    started[future] = task
                finished, running_now = concurrent.futures.wait(
                    running_now, return_when=concurrent.futures.FIRST_COMPLETED
                )
                for future in finished:
                    task = started.pop(future)
                    error = future.result()
                    if error is None:
                        continue
                    if error == _INTERRUPTED:  # Ctrl-C reached the workers: no retry, stop
                        raise KeyboardInterrupt
                    attempts[task.shard.index] += 1
                    if attempts[task.shard.index] > retries:
                        failures[task.shard.index] = error
                    else:
                        todo.append(task)
        except BaseException:
            with lock:
                for worker in workers_now:
                    with contextlib.suppress(OSError):
                        worker.terminate()
            raise
    return failures


def _one(
    runner: Runner,
    task: running.ShardTask,
    on_status: OnStatus | None,
    lock: threading.Lock,
    workers_now: list[subprocess.Popen[bytes]],
) -> str | None:
    """Runs one task in a new worker process; ``None`` when it was done, else why not."""
    import pickle

    error = None
    done = False
    with subprocess.Popen(
        [sys.executable, "-c", _WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    ) as worker:
        with lock:
            workers_now.append(worker)
        try:
            assert worker.stdin is not None and worker.stdout is not None
            with contextlib.suppress(BrokenPipeError):
                worker.stdin.write(pickle.dumps(sys.path) + pickle.dumps((runner, task)))
                worker.stdin.flush()  # and kept open: its end tells the worker the driver is gone
            for line in worker.stdout:
                message = json.loads(line)
                if "statuses" in message:
                    if on_status is not None:
                        with lock:  # one worker's counts at a time
                            for status, n in message["statuses"].items():
                                on_status(status, n)
                elif "meta" in message:
                    done = True
                else:
                    error = message.get("error")
            code = worker.wait()
        finally:
            with lock:
                workers_now.remove(worker)
            if worker.poll() is None:
                worker.kill()
    if done and code == 0:
        return None
    if code == -signal.SIGINT or (error or "").startswith("KeyboardInterrupt"):
        return _INTERRUPTED
    if error is None:
        error = f"the worker process died ({_died(code)})"
    return error


def _died(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"signal {signal.Signals(-code).name}"
    return f"exit status {code}"


__all__ = [
    "RETRIES",
    "SMALL_SCAN",
    "cores",
    "scan_dataset",
    "scan_processes",
    "share",
    "wanted",
    "with_status",
]
