# SPDX-License-Identifier: Apache-2.0
"""Name resolution for a scan: every IPv4 and IPv6 address of a name, looked up once per scan.

Behind one name a fleet often has backends that serve different keys, and a pin audit must see
each of them, so :meth:`Resolver.resolve` returns every address the system resolver gives (without
``AI_ADDRCONFIG``: IPv6 addresses are scanned even from a host without IPv6, where their rows say
``unreachable`` rather than the audit silently skipping them).

One :class:`Resolver` serves all the tasks of a scan on one event loop; it is not thread-safe.
Answers, and the answer that a name has no address (NXDOMAIN, no A or AAAA), are kept for the
resolver's life. Tasks that ask for a name while it is being looked up wait for that one query. Any
other failure (``EAI_AGAIN``, a timeout) is given to the tasks waiting for it, then forgotten, so
that later targets ask again. If the task whose lookup the others wait for is cancelled (its
target's deadline), a waiting task takes the lookup over.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
from dataclasses import dataclass
from typing import Any

import anyio

from pinscan.errors import ResolveError

#: Lookups in flight at once. The event loops' own getaddrinfo runs on small shared pools (libuv's
#: 4 threads under uvloop, min(32, cores + 4) under asyncio): a scan of many distinct names would
#: wait on DNS, at tens of milliseconds a name, rather than on its handshakes.
LOOKUPS_AT_ONCE = 64

# getaddrinfo's answers that the name has no address. Any other failure (no resolver reachable,
# SERVFAIL, out of file descriptors) may pass, so it is not cached.
_NO_ADDRESS = {
    code
    for code in (
        socket.EAI_NONAME,
        getattr(socket, "EAI_NODATA", None),
        getattr(socket, "EAI_ADDRFAMILY", None),
    )
    if code is not None
}


@dataclass(slots=True)
class _Lookup:
    """One name's query: its waiters wait for ``done``, then read the answer or the failure."""

    done: anyio.Event
    addresses: tuple[str, ...] | None = None
    error: str | None = None
    transient: bool = False


class Resolver:
    """Resolves names to all their addresses, with a cache for the life of a scan.

    Parameters
    ----------
    first_address
        Return only the first address of each name (``--first-address``), instead of all.

    Attributes
    ----------
    lookups
        Queries sent to the system resolver.
    cache_hits
        Answers (and failures) given from the cache, or from another task's query in flight.

    Examples
    --------
    >>> import anyio
    >>> anyio.run(Resolver().resolve, "192.0.2.1", 443)
    ['192.0.2.1']
    >>> anyio.run(Resolver().resolve, "example.com", 443)  # doctest: +SKIP
    ['2600:1406:3a00:21::173e:2e65', ..., '23.192.228.80']
    """

    def __init__(self, *, first_address: bool = False, at_once: int = LOOKUPS_AT_ONCE) -> None:
        self.first_address = first_address
        self.lookups = 0
        self.cache_hits = 0
        self._cache: dict[str, _Lookup] = {}
        self._threads = anyio.CapacityLimiter(at_once)

    async def resolve(self, host: str, port: int, *, timeout: float | None = None) -> list[str]:
        """The addresses of ``host``, in the system resolver's order, without repeats.

        Parameters
        ----------
        host
            A normalised name (as :mod:`pinscan.inventory` gives it) or an IP literal, which is
            returned as it is, without a lookup.
        port
            Passed to ``getaddrinfo``; the answer does not depend on it and is cached per name.
        timeout
            Seconds to wait for the answer. The scanner's per-target deadline bounds the lookup
            anyway; this bounds it alone.

        Returns
        -------
        list[str]
            IPv6 and IPv4 addresses, at least one (only one with ``first_address``).

        Raises
        ------
        ResolveError
            The name has no address, the lookup failed, or ``timeout`` ran out.
        """
        try:
            ipaddress.ip_address(host)
        except ValueError:
            pass
        else:
            return [host]
        with anyio.move_on_after(timeout):
            addresses = await self._addresses(host, port)
            return list(addresses[:1] if self.first_address else addresses)
        msg = f"no answer for {host} within {timeout:g} s"
        raise ResolveError(host, msg, transient=True)

    async def _addresses(self, host: str, port: int) -> tuple[str, ...]:
        while True:
            lookup = self._cache.get(host)
            if lookup is None:
                return await self._query(host, port)
            await lookup.done.wait()
            if lookup.addresses is not None:
                self.cache_hits += 1
                return lookup.addresses
            if lookup.error is not None:
                self.cache_hits += 1
                # A new exception for each task: one raised in many tasks would pile up tracebacks.
                raise ResolveError(host, lookup.error, transient=lookup.transient)
            # The task that was asking was cancelled before the answer came: ask again.

    async def _query(self, host: str, port: int) -> tuple[str, ...]:
        lookup = self._cache[host] = _Lookup(anyio.Event())
        self.lookups += 1
        try:
            lookup.addresses = await _getaddrinfo(host, port, self._threads)
        except ResolveError as exc:
            lookup.error, lookup.transient = exc.message, exc.transient
            if exc.transient:
                del self._cache[host]
            raise
        except BaseException:
            # Cancelled (this task's deadline): let a waiting task, or the next, ask again.
            del self._cache[host]
            raise
        finally:
            lookup.done.set()
        return lookup.addresses


async def _system_getaddrinfo(
    host: str, port: int, *, type: int, limiter: anyio.CapacityLimiter
) -> list[tuple[Any, ...]]:
    """The system resolver, on threads of the resolver's own; a deadline can stop waiting for a
    lookup (the thread then finishes it unobserved)."""
    call = functools.partial(socket.getaddrinfo, host, port, type=type)
    return await anyio.to_thread.run_sync(call, limiter=limiter, abandon_on_cancel=True)


async def _getaddrinfo(host: str, port: int, threads: anyio.CapacityLimiter) -> tuple[str, ...]:
    try:
        answers = await _system_getaddrinfo(host, port, type=socket.SOCK_STREAM, limiter=threads)
    except socket.gaierror as exc:
        reason = exc.strerror or str(exc)
        if exc.errno in _NO_ADDRESS:
            raise ResolveError(host, f"no address for {host} ({reason})") from None
        raise ResolveError(host, f"lookup of {host} failed ({reason})", transient=True) from None
    except UnicodeError as exc:
        # A non-ASCII name is encoded by the idna codec, which refuses some.
        raise ResolveError(host, f"{host} is not a valid name ({exc})") from None
    addresses = tuple(
        dict.fromkeys(
            sockaddr[0]
            for family, _, _, _, sockaddr in answers
            if family in (socket.AF_INET, socket.AF_INET6)
        )
    )
    if not addresses:
        raise ResolveError(host, f"no address for {host}")
    return addresses
