# SPDX-License-Identifier: Apache-2.0
"""The resolver: all addresses, IP literals untouched, one query per name however many tasks ask,
which failures are cached, timeouts, and the hand-over when the asking task is cancelled.

No test touches the network: `localhost`, IP literals, `.invalid` names (RFC 6761), a fake
lookup that counts its calls, and a `socket.getaddrinfo` that waits for its peers."""

from __future__ import annotations

import doctest
import ipaddress
import socket
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest

import pinscan.scanner.resolve
from pinscan.errors import PinscanError, ResolveError
from pinscan.scanner.resolve import Resolver

pytestmark = pytest.mark.anyio

V4, V6 = socket.AF_INET, socket.AF_INET6
TCP, UDP = socket.SOCK_STREAM, socket.SOCK_DGRAM


def answer(*addresses: str) -> list[tuple[Any, ...]]:
    """A getaddrinfo answer as anyio gives it: IPv6 socket addresses cut to 2-tuples."""
    return [(V6 if ":" in a else V4, TCP, 6, "", (a, 443)) for a in addresses]


class FakeGetaddrinfo:
    """Stands in for the system lookup: each call takes the next behaviour from a script."""

    def __init__(
        self, *script: list[tuple[Any, ...]] | BaseException | Callable[[], Awaitable[Any]]
    ):
        self.script = list(script)
        self.calls: list[tuple[str, int, dict[str, Any]]] = []

    async def __call__(self, host: str, port: int, **kwargs: Any) -> list[tuple[Any, ...]]:
        kwargs.pop("limiter")
        self.calls.append((host, port, kwargs))
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(step, BaseException):
            raise step
        if callable(step):
            return await step()
        await anyio.sleep(0)
        return step


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Callable[..., FakeGetaddrinfo]:
    def install(*script: Any) -> FakeGetaddrinfo:
        getaddrinfo = FakeGetaddrinfo(*script)
        monkeypatch.setattr(pinscan.scanner.resolve, "_system_getaddrinfo", getaddrinfo)
        return getaddrinfo

    return install


def gaierror(code: int) -> socket.gaierror:
    return socket.gaierror(code, {socket.EAI_NONAME: "Name or service not known"}.get(code, "x"))


# --- real lookups, without the network ------------------------------------------------------


async def test_localhost_resolves_to_loopback_addresses() -> None:
    resolver = Resolver()
    addresses = await resolver.resolve("localhost", 443)
    assert addresses
    assert all(ipaddress.ip_address(a.partition("%")[0]).is_loopback for a in addresses)
    assert len(addresses) == len(set(addresses))
    assert await resolver.resolve("localhost", 8443) == addresses
    assert (resolver.lookups, resolver.cache_hits) == (1, 1)


async def test_an_invalid_name_is_a_resolve_error() -> None:
    resolver = Resolver()
    with pytest.raises(ResolveError) as raised:
        # RFC 6761: `.invalid` never resolves. Without DNS in a sandbox the reason may differ
        # (no resolver reachable), so only its shape is checked.
        await resolver.resolve("nosuch.invalid", 443, timeout=30)
    exc = raised.value
    assert isinstance(exc, PinscanError)
    assert exc.host == "nosuch.invalid"
    assert "nosuch.invalid" in exc.message and str(exc) == exc.message


@pytest.mark.parametrize("address", ["192.0.2.1", "::1", "2001:db8::1", "fe80::1%lo"])
async def test_ip_literals_are_returned_without_a_lookup(
    fake: Callable[..., FakeGetaddrinfo], address: str
) -> None:
    getaddrinfo = fake(AssertionError("no lookup for an IP literal"))
    resolver = Resolver(first_address=True)
    assert await resolver.resolve(address, 443) == [address]
    assert getaddrinfo.calls == []
    assert (resolver.lookups, resolver.cache_hits) == (0, 0)


# --- answers --------------------------------------------------------------------------------


async def test_all_addresses_of_both_families_in_order_without_repeats(
    fake: Callable[..., FakeGetaddrinfo],
) -> None:
    got = answer("2001:db8::1", "192.0.2.1", "2001:db8::1", "192.0.2.2", "192.0.2.1")
    got.append((V4, UDP, 17, "", ("192.0.2.3", 443)))
    getaddrinfo = fake(got)
    addresses = await Resolver().resolve("fleet.example", 8443)
    assert addresses == ["2001:db8::1", "192.0.2.1", "192.0.2.2", "192.0.2.3"]
    # Both families (no family, no AI_ADDRCONFIG), stream sockets, the caller's port.
    assert getaddrinfo.calls == [("fleet.example", 8443, {"type": socket.SOCK_STREAM})]


async def test_first_address(fake: Callable[..., FakeGetaddrinfo]) -> None:
    fake(answer("2001:db8::1", "192.0.2.1"))
    resolver = Resolver(first_address=True)
    assert await resolver.resolve("fleet.example", 443) == ["2001:db8::1"]
    assert await resolver.resolve("fleet.example", 443) == ["2001:db8::1"]


async def test_callers_get_copies_of_the_cached_answer(
    fake: Callable[..., FakeGetaddrinfo],
) -> None:
    fake(answer("192.0.2.1", "192.0.2.2"))
    resolver = Resolver()
    first = await resolver.resolve("fleet.example", 443)
    first.clear()
    assert await resolver.resolve("fleet.example", 443) == ["192.0.2.1", "192.0.2.2"]


async def test_an_empty_answer_is_an_error(fake: Callable[..., FakeGetaddrinfo]) -> None:
    fake([(socket.AF_UNIX, TCP, 0, "", "/tmp/socket")])
    with pytest.raises(ResolveError, match=r"^no address for empty\.example$"):
        await Resolver().resolve("empty.example", 443)


async def test_names_idna_2008_refuses(fake: Callable[..., FakeGetaddrinfo]) -> None:
    fake(UnicodeError("Codepoint U+1F4A9 not allowed"))
    with pytest.raises(ResolveError, match="is not a valid name"):
        await Resolver().resolve("\U0001f4a9.example", 443)


# --- sharing and caching --------------------------------------------------------------------


async def test_concurrent_lookups_of_one_name_share_one_query(
    fake: Callable[..., FakeGetaddrinfo],
) -> None:
    release = anyio.Event()

    async def slow() -> list[tuple[Any, ...]]:
        await release.wait()
        return answer("192.0.2.1", "2001:db8::1")

    getaddrinfo = fake(slow)
    resolver = Resolver()
    results: list[list[str]] = []

    async def ask() -> None:
        results.append(await resolver.resolve("fleet.example", 443))

    async with anyio.create_task_group() as tg:
        for _ in range(500):
            tg.start_soon(ask)
        await anyio.wait_all_tasks_blocked()
        assert len(getaddrinfo.calls) == 1 and results == []
        release.set()
    assert results == [["192.0.2.1", "2001:db8::1"]] * 500
    assert len(getaddrinfo.calls) == 1
    assert (resolver.lookups, resolver.cache_hits) == (1, 499)
    # Later lookups come from the cache.
    assert await resolver.resolve("fleet.example", 443) == ["192.0.2.1", "2001:db8::1"]
    assert (len(getaddrinfo.calls), resolver.cache_hits) == (1, 500)


async def test_names_are_cached_separately(fake: Callable[..., FakeGetaddrinfo]) -> None:
    getaddrinfo = fake(answer("192.0.2.1"), answer("192.0.2.2"))
    resolver = Resolver()
    assert await resolver.resolve("a.example", 443) == ["192.0.2.1"]
    assert await resolver.resolve("b.example", 443) == ["192.0.2.2"]
    assert await resolver.resolve("a.example", 443) == ["192.0.2.1"]
    assert [host for host, _, _ in getaddrinfo.calls] == ["a.example", "b.example"]


@pytest.mark.parametrize("code", [socket.EAI_NONAME, socket.EAI_NODATA])
async def test_no_address_is_cached(fake: Callable[..., FakeGetaddrinfo], code: int) -> None:
    getaddrinfo = fake(gaierror(code), AssertionError("asked twice"))
    resolver = Resolver()
    errors = []
    for _ in range(3):
        with pytest.raises(ResolveError) as raised:
            await resolver.resolve("nosuch.example", 443)
        errors.append(raised.value)
    assert len(getaddrinfo.calls) == 1
    assert errors[0] is not errors[1]
    assert all(e.message.startswith("no address for nosuch.example") for e in errors)
    assert not any(e.transient for e in errors)
    assert (resolver.lookups, resolver.cache_hits) == (1, 2)


async def test_the_reason_comes_from_getaddrinfo(fake: Callable[..., FakeGetaddrinfo]) -> None:
    fake(gaierror(socket.EAI_NONAME))
    with pytest.raises(ResolveError) as raised:
        await Resolver().resolve("nosuch.invalid", 443)
    assert raised.value.message == "no address for nosuch.invalid (Name or service not known)"


@pytest.mark.parametrize("code", [socket.EAI_AGAIN, socket.EAI_FAIL, socket.EAI_SYSTEM])
async def test_other_failures_are_shared_then_forgotten(
    fake: Callable[..., FakeGetaddrinfo], code: int
) -> None:
    release = anyio.Event()

    async def failing() -> list[tuple[Any, ...]]:
        await release.wait()
        raise gaierror(code)

    getaddrinfo = fake(failing, answer("192.0.2.1"))
    resolver = Resolver()
    errors: list[ResolveError] = []

    async def ask() -> None:
        try:
            await resolver.resolve("flaky.example", 443)
        except ResolveError as exc:
            errors.append(exc)

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(ask)
        await anyio.wait_all_tasks_blocked()
        release.set()
    # The tasks waiting for the failed query share its failure...
    assert len(errors) == 3 and len(getaddrinfo.calls) == 1
    assert all(
        e.transient and e.message.startswith("lookup of flaky.example failed") for e in errors
    )
    # ...and the next lookup asks again.
    assert await resolver.resolve("flaky.example", 443) == ["192.0.2.1"]
    assert len(getaddrinfo.calls) == 2


# --- timeouts and cancellation --------------------------------------------------------------


async def test_timeout_is_a_transient_resolve_error(fake: Callable[..., FakeGetaddrinfo]) -> None:
    getaddrinfo = fake(anyio.sleep_forever, answer("192.0.2.1"))
    resolver = Resolver()
    expected = r"^no answer for slow\.example within 0\.05 s$"
    with pytest.raises(ResolveError, match=expected) as raised:
        await resolver.resolve("slow.example", 443, timeout=0.05)
    assert raised.value.transient
    # The abandoned lookup is not cached: the next one asks again.
    assert await resolver.resolve("slow.example", 443, timeout=5) == ["192.0.2.1"]
    assert len(getaddrinfo.calls) == 2


async def test_a_waiting_task_takes_over_when_the_asking_one_is_cancelled(
    fake: Callable[..., FakeGetaddrinfo],
) -> None:
    getaddrinfo = fake(anyio.sleep_forever, answer("192.0.2.1"))
    resolver = Resolver()
    results: list[list[str]] = []

    async def patient() -> None:
        results.append(await resolver.resolve("fleet.example", 443))

    async with anyio.create_task_group() as tg:
        with anyio.move_on_after(0.05) as deadline:
            tg.start_soon(patient)
            await resolver.resolve("fleet.example", 443)
    assert deadline.cancelled_caught
    assert results == [["192.0.2.1"]]
    assert len(getaddrinfo.calls) == 2


async def test_an_outer_cancellation_is_not_turned_into_an_error(
    fake: Callable[..., FakeGetaddrinfo],
) -> None:
    fake(anyio.sleep_forever)
    with anyio.move_on_after(0.05) as scope:
        await Resolver().resolve("fleet.example", 443, timeout=10)
    assert scope.cancelled_caught


def test_docstring_examples() -> None:
    assert doctest.testmod(pinscan.scanner.resolve).failed == 0


# --- many names at once -----------------------------------------------------------------------

AT_ONCE = 24  # more than libuv's 4 lookup threads, and than asyncio's min(32, cores + 4) here


@pytest.mark.parametrize("uvloop", [False, True])
def test_many_names_are_looked_up_at_once(monkeypatch: pytest.MonkeyPatch, uvloop: bool) -> None:
    """Each lookup waits until AT_ONCE of them run together (a barrier, bounded by a timeout):
    they all answer only if the resolver really runs that many at once, on either loop."""
    barrier = threading.Barrier(AT_ONCE, timeout=10)

    def slow_system_resolver(host: Any, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        barrier.wait()
        return answer("192.0.2.7")

    monkeypatch.setattr(socket, "getaddrinfo", slow_system_resolver)
    resolver = Resolver()
    found: dict[str, list[str]] = {}

    async def main() -> None:
        async def one(name: str) -> None:
            found[name] = await resolver.resolve(name, 443)

        async with anyio.create_task_group() as tg:
            for i in range(AT_ONCE):
                tg.start_soon(one, f"n{i}.fleet.example")

    anyio.run(main, backend_options={"use_uvloop": uvloop})
    assert len(found) == AT_ONCE and set(map(tuple, found.values())) == {("192.0.2.7",)}
    assert resolver.lookups == AT_ONCE
