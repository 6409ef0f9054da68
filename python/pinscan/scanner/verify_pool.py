# SPDX-License-Identifier: Apache-2.0
"""Path building off the event loop: a scan's chains verified in child processes.

pyca's path builder holds the GIL for the ~0.3-0.5 ms it takes per distinct chain, which on a fleet
of distinct leaves is a fifth of the scan's CPU, all of it on the one core that also drives every
handshake. So a scan hands the chains its cache has not seen to a child process (one by default,
on machines with a core to spare) and goes on with its handshakes; each target's rows go on to the
dataset once all of their chains have come back.

The child is ``python -c`` running `pinscan.scanner.verify_child` (which imports
`pinscan.scanner.verify` alone), not ``multiprocessing``: no fork of a threaded process, no
re-import of the user's ``__main__`` (a notebook, a script without a ``__main__`` guard). It is
sent the scan's stores (`StoreSpec`: the roots of a user's bundle as DER, the stores pinscan
ships by name, which it reads from the installed file) and its instant, and runs the same
`Verifier.build`, so its verdicts are those the scan would reach in-process, every store's
path included. If a child cannot start, dies or stops answering, its queue is verified
in-process: a scan loses no rows to a child, and waits for one at most a bounded time. It starts
with the scan's verification, or ahead of it (`verify_child.start_standby`, as ``pinscan scan``
does), so that its own start is over by the time the first chains come.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from pinscan.records import Endpoint
from pinscan.scanner import verify_child
from pinscan.scanner.verdicts import ChainVerdict, StoreSpec, Verdict
from pinscan.scanner.verify import Verifier
from pinscan.scanner.verify_child import default_processes

#: Chains sent to a child at a time, at most; a batch is whatever queued while the last one ran.
#: Small enough that the batch a child holds when the handshakes end is short work (the scan
#: waits for it), large enough that a batch's pickling and pipe round trip (~0.2 ms) is noise.
_BATCH = 64

#: Chains queued for the children, at most; beyond, the scan builds paths itself.
_QUEUE_LIMIT = 1024

#: Seconds a child may take to start, and per batch beyond the time its chains should take.
_START_TIMEOUT = 20.0
_BATCH_TIMEOUT = 30.0

#: A batch's answer is a few KiB a chain; anything near this is not one.
_MAX_MESSAGE = 1 << 30

Chain = tuple[bytes, ...]


class ChildError(Exception):
    """The child process failed, exited or stopped answering."""


class VerifyProcess:
    """One child building paths for batches of chains. Blocking: call it from a worker thread."""

    def __init__(self) -> None:
        """Starts the child (or takes the one started ahead): its interpreter and imports,
        until it is sent its stores."""
        try:
            self._proc = verify_child.spawn()
        except OSError as exc:
            raise ChildError(f"cannot start {sys.executable}: {exc}") from None
        assert self._proc.stdin is not None
        os.set_blocking(self._proc.stdin.fileno(), False)  # writes are bounded by a deadline

    def load(self, spec: StoreSpec, now: Any) -> None:
        """Sends the child its stores and waits until it has loaded them."""
        try:
            self._send((spec, now), _START_TIMEOUT)
            answer = self._receive(_START_TIMEOUT)
            if not (isinstance(answer, tuple) and len(answer) == 2):
                raise ChildError(f"the verification process sent garbage ({answer!r:.60})")
            if answer[0] != "ready":
                raise ChildError(str(answer[1]))
        except ChildError:
            self.close()
            raise

    def build(self, chains: list[Chain]) -> list[ChainVerdict]:
        timeout = _BATCH_TIMEOUT + 0.01 * len(chains)
        self._send(chains, timeout)
        rows = self._receive(timeout)
        try:
            found = [ChainVerdict(*row) for row in rows]
        except TypeError:
            found = []
        if len(found) != len(chains):
            raise ChildError("the verification process sent garbage")
        return found

    def close(self) -> None:
        proc = self._proc
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        try:
            proc.wait(timeout=2)  # it exits at the end of its input
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def _send(self, message: Any, timeout: float) -> None:
        """Write one message; a child that stops reading is killed, not waited for."""
        data = memoryview(verify_child.frame(message))
        assert self._proc.stdin is not None
        fd = self._proc.stdin.fileno()
        deadline = time.monotonic() + timeout
        while data:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._wait_for(fd, remaining, write=True):
                self._proc.kill()
                raise ChildError("the verification process stopped answering")
            try:
                data = data[os.write(fd, data[: 1 << 16]) :]
            except BlockingIOError:
                continue
            except OSError as exc:
                # Its pipe closed: say how it ended, when it has (a child that exits at start
                # closes its input before the stores, a MB of them, are all written).
                try:
                    code = self._proc.wait(timeout=1)
                except subprocess.TimeoutExpired:
                    raise ChildError(f"the verification process is gone ({exc})") from None
                raise ChildError(f"the verification process exited ({code})") from None

    def _receive(self, timeout: float) -> Any:
        assert self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        (size,) = verify_child.HEADER.unpack(self._read(fd, verify_child.HEADER.size, deadline))
        if size > _MAX_MESSAGE:
            self._proc.kill()
            raise ChildError(f"the verification process sent garbage (a {size}-byte message)")
        try:
            return pickle.loads(self._read(fd, size, deadline))
        except ChildError:
            raise
        except Exception as exc:  # whatever the bytes were, they were not our answer
            raise ChildError(f"the verification process sent garbage ({exc})") from None

    def _wait_for(self, fd: int, timeout: float, *, write: bool) -> bool:
        waits = ([], [fd]) if write else ([fd], [])
        try:
            readable, writable, _ = select.select(*waits, [], timeout)
        except (OSError, ValueError) as exc:  # a closed pipe; a platform without select on pipes
            self._proc.kill()
            raise ChildError(f"cannot wait for the verification process ({exc})") from None
        return bool(writable or readable)

    def _read(self, fd: int, size: int, deadline: float) -> bytes:
        buffer = bytearray()
        while len(buffer) < size:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._wait_for(fd, remaining, write=False):
                self._proc.kill()
                raise ChildError("the verification process stopped answering")
            chunk = os.read(fd, min(size - len(buffer), 1 << 20))
            if not chunk:
                try:
                    code = self._proc.wait(timeout=1)
                except subprocess.TimeoutExpired:
                    raise ChildError("the verification process closed its output") from None
                raise ChildError(f"the verification process exited ({code})")
            buffer += chunk
        return bytes(buffer)


class _Target:
    """The rows of one target, released together (a target is done when all of them are)."""

    __slots__ = ("missing", "rows")

    def __init__(self, rows: list[Endpoint]) -> None:
        self.rows = rows
        self.missing = 0


class VerifyPool:
    """Fills in the verdicts of each target's rows, then hands the rows to ``on_verified``.

    Chains in the verifier's cache are judged at once; the others queue for the children, and a
    chain served by several endpoints is built once. The children start with `run` (or were
    started ahead: `verify_child.start_standby`) and load the stores at the first chain to queue;
    rows wait meanwhile rather than cost the event loop their paths. When the queue is
    long (the children fall behind), or no child is alive, chains are built in-process. ``run``
    serves the queue until `close` is called and the queue is empty. With ``processes=0`` every
    chain is verified in-process.
    """

    def __init__(
        self,
        verifier: Verifier,
        processes: int,
        on_verified: Callable[[list[Endpoint]], Awaitable[None]],
    ) -> None:
        self._verifier = verifier
        self._processes = processes
        self._live = self._processes  # lanes whose child has neither failed to start nor died
        self._on_verified = on_verified
        self._waiting: dict[Chain, list[tuple[_Target, Endpoint]]] = {}
        self._queued: list[Chain] = []
        self._ready = 0  # children serving the queue
        self._busy = 0  # children building a batch now
        self._demand = anyio.Event()  # set at the first chain the cache does not know
        self._wake = anyio.Event()
        self._closed = False
        self._finished = anyio.Event()  # set by `close`
        self._helping = False  # this process builds from the queue beside the children
        #: Distinct chains verified here and in children; the scan's metadata records both.
        self.built_here = 0
        self.built_in_children = 0
        #: Why children failed (they were replaced by in-process verification).
        self.child_errors: list[str] = []

    @property
    def children(self) -> int:
        """Children serving the queue now."""
        return self._ready

    async def submit(self, rows: list[Endpoint]) -> None:
        target = _Target(rows)
        for row in rows:
            if not row.presented:
                continue
            chain = tuple(row.presented)
            found = self._verifier.cached(chain)
            if found is None:
                waiters = self._waiting.get(chain)
                if waiters is None and self._live and len(self._queued) < _QUEUE_LIMIT:
                    waiters = self._waiting[chain] = []
                    self._queued.append(chain)
                    self._demand.set()
                    self._wake.set()
                if waiters is not None:
                    waiters.append((target, row))
                    target.missing += 1
                    continue
                found = self._verifier.build(chain)
                self._verifier.remember(chain, found)
                self.built_here += 1
            _apply(row, self._verifier.judge(found, _served_name(row)))
        if not target.missing:
            await self._on_verified(rows)

    def close(self) -> None:
        """No more rows: `run` returns once the queue is empty."""
        self._closed = True
        self._finished.set()
        self._demand.set()
        self._wake.set()

    async def run(self) -> None:
        async with anyio.create_task_group() as tg:
            for _ in range(self._processes):
                tg.start_soon(self._lane)
            if self._processes:
                tg.start_soon(self._help_at_the_end)

    async def _help_at_the_end(self) -> None:
        """Once no more rows come, the scan has nothing left to do but wait for the children:
        while one is at work, it builds from the queue too, from its far end, so the last chains
        are built on one more core. Between two chains the event loop takes in the children's
        answers."""
        await self._finished.wait()
        # Loading the path builder here (every root parsed) costs about two batches of a
        # child's work: worth it with more than that left, or when it is loaded already.
        if not (self._verifier.path_builder_loaded or len(self._queued) > 2 * _BATCH):
            return
        self._helping = True
        while self._queued and self._ready:
            if not self._busy:  # between a child's batches
                await anyio.sleep(0.001)
                continue
            chain = self._queued.pop()
            found = self._verifier.build(chain)
            self.built_here += 1
            await self._resolve([chain], [found])
            await anyio.sleep(0)

    async def _lane(self) -> None:
        """Starts a child, loads it with the stores at the first demand and serves the queue
        with it; without one (it failed to start, or died), serves the queue in-process. The
        child starts with the scan, not at the first chain: its interpreter and imports (~0.1 s
        of another core) are over by the time the first chains come."""
        child: VerifyProcess | None = None
        ready = False
        try:
            try:
                child = await anyio.to_thread.run_sync(VerifyProcess)
            except ChildError as exc:
                self._fail(str(exc))
            await self._demand.wait()
            if child is not None and (self._queued or not self._closed):
                try:
                    await anyio.to_thread.run_sync(
                        child.load, self._verifier.spec, self._verifier.now
                    )
                    ready = True
                    self._ready += 1
                except ChildError as exc:
                    child = None  # closed by load
                    self._fail(str(exc))
            while True:
                while not self._queued and not self._closed:
                    if self._wake.is_set():
                        self._wake = anyio.Event()
                    await self._wake.wait()
                if not self._queued:
                    return
                # Helped at the end, half of what is left: this process builds the other half.
                size = min(_BATCH, (len(self._queued) + 1) // 2) if self._helping else _BATCH
                batch, self._queued = self._queued[:size], self._queued[size:]
                found = None
                if child is not None and ready:
                    self._busy += 1
                    try:
                        found = await anyio.to_thread.run_sync(child.build, batch)
                        self.built_in_children += len(batch)
                    except ChildError as exc:
                        self._ready -= 1
                        ready = False
                        self._fail(str(exc))
                        child.close()
                        child = None
                    finally:
                        self._busy -= 1
                if found is None:
                    found = [self._verifier.build(chain) for chain in batch]
                    self.built_here += len(batch)
                await self._resolve(batch, found)
        finally:
            if ready:
                self._ready -= 1
            if child is not None:
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(child.close)

    def _fail(self, error: str) -> None:
        """A lane's child failed to start or died: its chains are built here from now on."""
        self._live -= 1
        self.child_errors.append(error)

    async def _resolve(self, batch: list[Chain], found: list[ChainVerdict]) -> None:
        for chain, answer in zip(batch, found, strict=True):
            verdict = self._verifier.adopt(chain, answer)
            self._verifier.remember(chain, verdict)
            for target, row in self._waiting.pop(chain):
                _apply(row, self._verifier.judge(verdict, _served_name(row)))
                target.missing -= 1
                if not target.missing:
                    await self._on_verified(target.rows)


def _served_name(row: Endpoint) -> str | None:
    return row.sni or row.ip


def _apply(row: Endpoint, verdict: Verdict) -> None:
    row.verified = verdict.verified
    row.verify_error = verdict.verify_error
    row.verify_detail = verdict.verify_detail
    row.trust_store = verdict.trust_store
    row.hostname_match = verdict.hostname_match
    row.days_to_expiry = verdict.days_to_expiry
    row.verified_chain = list(verdict.chain)
    row.store_paths = list(verdict.store_paths)


__all__ = ["ChildError", "VerifyPool", "VerifyProcess", "default_processes"]
