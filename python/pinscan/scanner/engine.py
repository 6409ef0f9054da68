# SPDX-License-Identifier: Apache-2.0
"""The scan engine: targets in, one Parquet dataset out, in bounded memory. It knows nothing of
histories, shards or Dask, which route scans to it (:mod:`pinscan.scanner.router`).

The pipeline, one way::

    read_inventory ==> (``concurrency`` workers) ==> per target: resolve -> per address:
        (rate limit, per-address cap) handshake [retries] ==> verify ==> results ==> DatasetWriter

Every target gives at least one row (one per address), whatever the network does: each endpoint runs
under a hard deadline enforced by cancellation. ``concurrency`` workers each take the next target as
soon as their last one is done. Chains are verified once each, in a child process when there is a
core for it (:mod:`pinscan.scanner.verify_pool`), and results are flushed to part files every
``flush_rows`` rows or ``flush_seconds`` seconds, so memory does not grow with the inventory.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime as dt
import random
import ssl
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Self, TypeVar

import anyio
import anyio.abc

from pinscan import _core
from pinscan.config import ScanConfig
from pinscan.dataset import DatasetWriter
from pinscan.dataset.meta import new_scan_id
from pinscan.dataset.writer import id_bits
from pinscan.errors import ResolveError
from pinscan.records import BadTarget, Endpoint, Handshake, Target
from pinscan.scanner import rustls, starttls
from pinscan.scanner.handshake import client_context, handshake
from pinscan.scanner.resolve import Resolver
from pinscan.scanner.verify import Verifier
from pinscan.scanner.verify_pool import VerifyPool, default_processes

T = TypeVar("T")

#: Seconds past an endpoint's deadline after which its task is cancelled outright.
_BACKSTOP = 1.0

#: Inventory items read at a time, off the event loop.
_CHUNK = 1024

#: Inventories shorter than this verify their chains in-process.
_SMALL_SCAN = 256

#: Statuses worth another attempt: the next one may well succeed.
TRANSIENT = frozenset({"connect_timeout", "handshake_timeout", "reset"})


class TargetFeed(Protocol):
    """What the engine scans: targets (and bad lines) in inventory order, closed when the scan
    ends, with the inventory's counts (``stats.duplicates``, ``stats.bad``) for ``scan.json``: an
    :class:`~pinscan.inventory.Inventory`, or one shard's part of it."""

    name: str

    @property
    def stats(self) -> Any: ...

    def __iter__(self) -> Iterator[Target | BadTarget]: ...

    def __next__(self) -> Target | BadTarget: ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> Any: ...


@dataclass
class ScanStats:
    """Counters a scan keeps as it goes; read by progress displays and the closing summary."""

    targets: int = 0
    endpoints: int = 0
    skipped_done: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    tls_versions: Counter[str] = field(default_factory=Counter)
    #: Endpoints by the TLS engine that gave their result.
    engines: Counter[str] = field(default_factory=Counter)
    #: Endpoints, not certificates (so that shards and resumed runs add up): those whose
    #: presented chain does not verify, and those whose leaf has expired or expires within 30 days.
    unverified: int = 0
    expiring_30d: int = 0
    #: Distinct chains whose path was built in the scanning process and in child processes, and
    #: why children failed, if any did.
    chains_verified: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)

    def record(self, endpoint: Endpoint) -> None:
        self.endpoints += 1
        self.statuses[endpoint.status] += 1
        if endpoint.tls_version:
            self.tls_versions[endpoint.tls_version] += 1
        if endpoint.engine:
            self.engines[endpoint.engine] += 1
        if endpoint.presented and not endpoint.verified:
            self.unverified += 1
        if endpoint.days_to_expiry is not None and endpoint.days_to_expiry < 30:
            self.expiring_30d += 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "targets": self.targets,
            "endpoints": self.endpoints,
            "skipped_already_done": self.skipped_done,
            "statuses": dict(self.statuses),
            "tls_versions": dict(self.tls_versions),
            "engines": dict(self.engines),
            "unverified": self.unverified,
            "expiring_within_30_days": self.expiring_30d,
            "chains_verified": self.chains_verified,
            "seconds": round(time.monotonic() - self.started, 3),
        }


class RateLimiter:
    """A token bucket for new connections across the whole scan (burst of one second's worth)."""

    def __init__(self, rate: float) -> None:
        self._interval = 1.0 / rate
        self._next = time.monotonic()
        self._burst = max(1.0, rate) * self._interval

    async def acquire(self) -> None:
        now = time.monotonic()
        slot = max(self._next, now - self._burst)
        self._next = slot + self._interval
        if slot > now:
            await anyio.sleep(slot - now)


class AddressCaps:
    """At most ``limit`` connections at once to one address; an entry lives only while in use, so
    a scan over a million addresses keeps a handful."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._caps: dict[str, list[Any]] = {}  # ip -> [semaphore, users]

    @contextlib.asynccontextmanager
    async def hold(self, ip: str) -> AsyncIterator[None]:
        entry = self._caps.get(ip)
        if entry is None:
            # fast_acquire: no trip through the event loop when the address has a free slot.
            entry = self._caps[ip] = [anyio.Semaphore(self._limit, fast_acquire=True), 0]
        entry[1] += 1
        try:
            async with entry[0]:
                yield
        finally:
            entry[1] -= 1
            if entry[1] == 0:
                del self._caps[ip]


class Scanner:
    """One scan: shared state (TLS context, resolver cache, trust stores, limits) and its tasks."""

    def __init__(
        self,
        config: ScanConfig,
        *,
        on_endpoint: Callable[[Endpoint], None] | None = None,
    ) -> None:
        # Everything that reads a file (the trust stores) is done here, before :meth:`run` is
        # given its writer: a bad --ca-bundle fails the scan before its dataset is created.
        self.config = config
        self.stats = ScanStats()
        self._on_endpoint = on_endpoint
        #: Each engine's client configuration (see :class:`_Clients`): the scan's ALPN, or per
        #: STARTTLS protocol that protocol's (none for most), built when the scan first meets it.
        self._clients: dict[str | None, _Clients] = {None: _Clients.build(config, config.alpn)}
        self._resolver = Resolver(first_address=config.first_address)
        self._verifier = _verifier(config)
        self._verify_processes = (
            default_processes() if config.verify_processes is None else config.verify_processes
        )
        self._rate = RateLimiter(config.rate) if config.rate else None
        self._caps = AddressCaps(config.per_address)
        self._pending: list[Endpoint] = []
        self._last_flush = time.monotonic()
        self._flush_lock = anyio.Lock()

    async def run(self, items: Iterator[Target | BadTarget], writer: DatasetWriter) -> ScanStats:
        self.writer = writer
        feed = _Feed(items)
        await feed.fill()
        # Workers rather than a task per target: a worker starts its next target as soon as its
        # last one is done, without a task to spawn or a dispatcher to wake up in between.
        workers, processes = self.config.concurrency, self._verify_processes
        if feed.exhausted:
            workers = min(workers, len(feed))
            if len(feed) < _SMALL_SCAN:
                processes = 0  # starting a child would cost more than it saves
        self._verification = VerifyPool(self._verifier, processes, self._finish_target)
        async with anyio.create_task_group() as outer:
            outer.start_soon(self._flush_ticker)
            async with anyio.create_task_group() as verifying:
                verifying.start_soon(self._verification.run)
                async with anyio.create_task_group() as tg:
                    for _ in range(workers):
                        tg.start_soon(self._work, feed)
                self._verification.close()  # the pool returns once its queue is empty
                # The rows verified already go to the dataset while the children build the last
                # chains, rather than after them: the last flush holds only those chains' rows.
                await self._flush()
            outer.cancel_scope.cancel()
        self.stats.chains_verified = {
            "in_process": self._verification.built_here,
            "in_children": self._verification.built_in_children,
            "child_errors": self._verification.child_errors,
        }
        await self._flush(force=True)
        return self.stats

    async def _work(self, feed: _Feed) -> None:
        while (item := await feed.next()) is not None:
            self.stats.targets += 1
            if id_bits(item.target_id) in self.writer.done:
                self.stats.skipped_done += 1
            elif isinstance(item, BadTarget):
                await self._finish_target([_bad_target_row(item)])
            else:
                await self._verification.submit(await self._endpoints_of(item))

    async def _endpoints_of(self, target: Target) -> list[Endpoint]:
        timeouts = self.config.timeouts
        started = time.monotonic()
        if target.ip is not None:
            addresses, resolve_ms = [target.ip], None
        else:
            try:
                with anyio.fail_after(timeouts.deadline):
                    addresses = await self._resolver.resolve(target.host, target.port)
            except ResolveError as exc:
                return [_row(target, None, Handshake("dns_error", exc.message), attempts=1)]
            except TimeoutError:
                msg = f"resolving {target.host} took longer than the deadline"
                return [_row(target, None, Handshake("deadline", msg), attempts=1)]
            resolve_ms = (time.monotonic() - started) * 1000
        remaining = timeouts.deadline - (time.monotonic() - started)
        if len(addresses) == 1:
            # No task group for the common case: it would cost a pass of the event loop.
            return [await self._endpoint(target, addresses[0], remaining, resolve_ms)]
        rows: list[Endpoint] = [None] * len(addresses)  # type: ignore[list-item]

        async def one(i: int, ip: str) -> None:
            rows[i] = await self._endpoint(target, ip, remaining, resolve_ms)

        async with anyio.create_task_group() as tg:
            for i, ip in enumerate(addresses):
                tg.start_soon(one, i, ip)
        return rows

    async def _endpoint(
        self, target: Target, ip: str, budget: float, resolve_ms: float | None
    ) -> Endpoint:
        timeouts = self.config.timeouts
        result = Handshake("deadline", f"no result within the {timeouts.deadline:g} s deadline")
        attempts = 0
        # The instant the target's deadline (seconds) ends, on the event loop's clock.
        stop_at = anyio.current_time() + max(budget, 0.0)
        # The handshake stops itself then and keeps whatever chain arrived; this scope, a moment
        # later, is only the backstop that makes a hang impossible.
        with anyio.CancelScope(deadline=stop_at + _BACKSTOP):
            while True:
                attempts += 1
                async with self._caps.hold(ip):
                    if self._rate is not None:
                        await self._rate.acquire()
                    clients = self._clients_for(target.starttls)
                    result = await handshake(
                        ip, target.port, target.sni, connect_timeout=timeouts.connect,
                        handshake_timeout=timeouts.handshake, engine=self.config.engine,
                        context=clients.context, rustls_engine=clients.rustls_engine,
                        stop_at=stop_at, starttls=target.starttls,
                        domain=target.sni or target.host,
                    )  # fmt: skip
                if result.status not in TRANSIENT or attempts > self.config.retries:
                    break
                # Exponential backoff with jitter, so retries of a fleet do not arrive together.
                pause = random.uniform(0.5, 1.0) * 0.25 * 2 ** (attempts - 1)
                if anyio.current_time() + pause >= stop_at:
                    break
                await anyio.sleep(pause)
        return _row(target, ip, result, attempts=attempts, resolve_ms=resolve_ms)

    def _clients_for(self, protocol: str | None) -> _Clients:
        clients = self._clients.get(protocol)
        if clients is None:
            alpn = starttls.ALPN.get(protocol, ())  # type: ignore[arg-type]
            clients = self._clients[protocol] = _Clients.build(self.config, alpn)
        return clients

    async def _finish_target(self, rows: list[Endpoint]) -> None:
        for row in rows:
            self.stats.record(row)
            if self._on_endpoint is not None:
                self._on_endpoint(row)
        self._pending.extend(rows)
        if len(self._pending) >= self.config.flush_rows:
            await self._flush()

    async def _flush_ticker(self) -> None:
        while True:
            await anyio.sleep(min(1.0, self.config.flush_seconds))
            if time.monotonic() - self._last_flush >= self.config.flush_seconds:
                await self._flush()

    async def _flush(self, *, force: bool = False) -> None:
        if self._flush_lock.locked() and not force:
            return  # a flush is running; these rows go with the next one
        async with self._flush_lock:
            batch, self._pending = self._pending, []
            self._last_flush = time.monotonic()
            if batch:
                # Parquet encoding and fsync off the event loop: handshakes go on meanwhile.
                await anyio.to_thread.run_sync(self.writer.write, batch)


def _verifier(config: ScanConfig) -> Verifier:
    """The scan's verifier. The stores pinscan ships are read when the first chain arrives
    (they cannot be bad, and reading them takes milliseconds that the first connections need
    not wait for); a file the user gave (``--ca-bundle``, ``NAME=FILE``, the system's bundle)
    is read here, so that a bad one fails the scan before its dataset is created."""

    def build() -> Verifier:
        return Verifier.for_scan(
            config.trust_stores, ca_bundle=config.ca_bundle, system_store=config.system_store
        )

    if (
        config.ca_bundle is not None
        or config.system_store
        or any("=" in s for s in config.trust_stores)
    ):
        return build()
    return _Deferred(build)  # type: ignore[return-value]


class _Deferred:
    """An object built at the first use of one of its attributes."""

    def __init__(self, build: Callable[[], Any]) -> None:
        self._build: Callable[[], Any] | None = build
        self._built: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._build is not None:
            self._built, self._build = self._build(), None
        return getattr(self._built, name)


@dataclass(frozen=True, slots=True)
class _Clients:
    """What each engine's connections share, as :func:`handshake` takes it: an OpenSSL context
    and a rustls configuration, each built only when the scan's engine uses it."""

    context: ssl.SSLContext | None
    rustls_engine: _core.TlsEngine | None

    @classmethod
    def build(cls, config: ScanConfig, alpn: tuple[str, ...]) -> _Clients:
        # auto needs both: OpenSSL is its way to the servers rustls cannot reach.
        return cls(
            context=client_context(alpn=alpn) if config.engine != "rustls" else None,
            rustls_engine=rustls.engine(alpn) if config.engine != "openssl" else None,
        )


class _Feed:
    """The inventory for the workers, read in chunks off the event loop (file I/O, Parquet
    decoding) whenever they have taken the last chunk."""

    def __init__(self, items: Iterator[Target | BadTarget]) -> None:
        self._items = items
        self._buffer: deque[Target | BadTarget] = deque()
        self._lock = anyio.Lock(fast_acquire=True)
        self.exhausted = False

    def __len__(self) -> int:
        return len(self._buffer)

    async def next(self) -> Target | BadTarget | None:
        """The next item, in inventory order; ``None`` once the inventory is exhausted."""
        while not self._buffer:
            if self.exhausted:
                return None
            async with self._lock:  # one worker reads; the others wait for its chunk
                if not self._buffer and not self.exhausted:
                    await self.fill()
        return self._buffer.popleft()

    async def fill(self) -> None:
        chunk = await anyio.to_thread.run_sync(self._chunk)
        self._buffer.extend(chunk)
        self.exhausted = len(chunk) < _CHUNK

    def _chunk(self) -> list[Target | BadTarget]:
        out = []
        for item in self._items:
            out.append(item)
            if len(out) >= _CHUNK:
                break
        return out


def _row(
    target: Target,
    ip: str | None,
    result: Handshake,
    *,
    attempts: int,
    resolve_ms: float | None = None,
) -> Endpoint:
    return Endpoint(
        target_id=target.target_id,
        line=target.line,
        target=target.target,
        host=target.host,
        ip=ip,
        port=target.port,
        sni=target.sni,
        status=result.status,
        error=result.error,
        starttls=target.starttls,
        attempts=attempts,
        tls_version=result.tls_version,
        cipher=result.cipher,
        alpn=result.alpn,
        engine=result.engine,
        resolve_ms=resolve_ms,
        connect_ms=result.connect_ms,
        handshake_ms=result.handshake_ms,
        scanned_at=dt.datetime.now(dt.UTC),
        presented=result.chain,
    )


def _bad_target_row(bad: BadTarget) -> Endpoint:
    return Endpoint(
        target_id=bad.target_id,
        line=bad.line,
        target=bad.target,
        host=None,
        ip=None,
        port=None,
        sni=None,
        status="bad_target",
        error=bad.error,
        scanned_at=dt.datetime.now(dt.UTC),
    )


async def scan_dataset(
    items: TargetFeed,
    root: Path,
    *,
    config: ScanConfig,
    resume: bool = False,
    scan_id: str | None = None,
    arguments: dict[str, Any] | None = None,
    on_endpoint: Callable[[Endpoint], None] | None = None,
) -> None:
    """Scans ``items`` into the dataset directory ``root``: a new one (named ``scan_id``, a new id
    by default; ``arguments`` recorded in its ``scan.json``), or with ``resume`` the interrupted
    scan there, whose finished targets are skipped. Closes ``items``. Whatever happens, the end of
    the run is recorded in ``scan.json``, complete or not."""
    with items:
        # The trust stores are read before the dataset is created: a bad one leaves nothing.
        scanner = Scanner(config, on_endpoint=on_endpoint)
        if resume:
            writer = DatasetWriter.resume(root)
        else:
            writer = DatasetWriter.create(
                root,
                scan_id=scan_id or new_scan_id(),
                arguments=arguments or {},
                version=_core.__version__,
            )
        complete = False
        try:
            await scanner.run(items, writer)
            complete = True
        except BaseExceptionGroup as group:
            raise _sole(group) from None  # a full disk is a DatasetError, not nested groups
        finally:
            counts = {
                **scanner.stats.as_dict(),
                "duplicates": items.stats.duplicates,
                "bad_lines": items.stats.bad,
            }
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(lambda: writer.finish(counts, complete=complete))


def run_blocking(function: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
    """``await function(*args, **kwargs)`` on an event loop of its own (uvloop when installed),
    for callers that are not async: the public ``pinscan.scan``, a ``--shard`` run, a Dask task.
    From a thread that already runs a loop (Jupyter), the loop runs on a thread of its own."""

    async def main() -> T:
        return await function(*args, **kwargs)

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _run(main)
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="pinscan") as pool:
        return pool.submit(_run, main).result()


def _run(main: Callable[[], Awaitable[T]]) -> T:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return anyio.run(main)
    return anyio.run(main, backend_options={"use_uvloop": True})


def _sole(group: BaseExceptionGroup) -> BaseException:
    """The one error inside nested task groups (the tasks it stopped were cancelled, which is
    not an error), or the group when several tasks failed."""
    while len(group.exceptions) == 1 and isinstance(group.exceptions[0], BaseExceptionGroup):
        group = group.exceptions[0]
    return group.exceptions[0] if len(group.exceptions) == 1 else group


__all__ = [
    "TRANSIENT",
    "AddressCaps",
    "RateLimiter",
    "ScanStats",
    "Scanner",
    "run_blocking",
    "scan_dataset",
]
